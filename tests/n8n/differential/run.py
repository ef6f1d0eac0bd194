"""Run the corpus through a real n8n: many Code nodes in few workflows.

Each workflow is a manual trigger, then a chain of pinned nodes every snippet may name
(``Webhook``, ``HTTP Request``, ``Config``), then one pinned node per input set (named after
the set: ``people``, ``orders``, ...), each feeding its snippets' Code nodes side by side. Every
Code node has ``onError: continueRegularOutput``, so one failing snippet does not stop the
others: its error then comes back as items (``[{json: {error: message}}]``, or one such item
per failing item in each-item mode), which is exactly what a user of "continue on fail" gets
downstream. Pinned data makes n8n replay the items without running those nodes, so the only
code that runs is the snippets', on whichever runner serves n8n.

With "continue on fail" n8n keeps only an error's message; what a user without it sees (the
node's error, whose description is the error's type) comes from ``run_stopping``, one
workflow per case, for the cases that fail on n8n's own runner.

The workflows are built alike for both runs (same names, same node ids), so that anything a
snippet reads of its workflow is the same in both.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from tests.n8n.differential.corpus import Case, inputs
from benchmarks.n8n_peer.peer import TRIGGER, Execution, N8n

#: Code nodes per workflow: small enough that a run that goes wrong loses little, large
#: enough that the whole corpus is a handful of executions.
PER_WORKFLOW = 80
NODE_TYPE_PINNED = "n8n-nodes-base.noOp"


def _id(name: str) -> str:
    # The same node id in every run: a snippet that reads $node ids sees the same values.
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"snippet-sandbox/differential/{name}"))


def _node(name: str, type_: str, params: dict[str, Any], x: int, y: int) -> dict[str, Any]:
    return {"id": _id(name), "name": name, "type": type_, "typeVersion": 1, "position": [x, y],
            "parameters": params}


def _link(connections: dict[str, Any], src: str, dst: str) -> None:
    main = connections.setdefault(src, {"main": [[]]})["main"][0]
    main.append({"node": dst, "type": "main", "index": 0})


def build_workflow(name: str, cases: Sequence[Case],
                   on_error: str | None = "continueRegularOutput") -> dict[str, Any]:
    """One workflow running ``cases``, each as a Code node named after its id."""
    doc = inputs()
    nodes = [_node(TRIGGER, "n8n-nodes-base.manualTrigger", {}, 0, 0)]
    connections: dict[str, Any] = {}
    pin: dict[str, list[dict[str, Any]]] = {}
    prev = TRIGGER
    for i, (upstream, items) in enumerate(doc["upstream"].items()):
        nodes.append(_node(upstream, NODE_TYPE_PINNED, {}, 200 * (i + 1), 0))
        pin[upstream] = [{"json": item} for item in items]
        _link(connections, prev, upstream)
        prev = upstream
    x = 200 * (len(doc["upstream"]) + 1)
    sets = sorted({c.input for c in cases})
    for row, set_name in enumerate(sets):
        nodes.append(_node(set_name, NODE_TYPE_PINNED, {}, x, 300 * row))
        pin[set_name] = [{"json": item} for item in doc["inputs"][set_name]]
        _link(connections, prev, set_name)
    for n, case in enumerate(cases):
        code = _node(case.id, "n8n-nodes-base.code",
                     {"mode": case.mode, "language": "javaScript", "jsCode": case.code},
                     x + 200 + 200 * (n % 10), 300 * sets.index(case.input) + 20 * (n // 10))
        code["typeVersion"] = 2
        if on_error:
            code["onError"] = on_error
        nodes.append(code)
        _link(connections, case.input, case.id)
    return {"name": name, "nodes": nodes, "connections": connections, "active": False,
            "pinData": pin, "settings": {"executionOrder": "v1"}}


def build_workflows(cases: Sequence[Case]) -> list[tuple[dict[str, Any], list[Case]]]:
    """The corpus cut into workflows of at most ``PER_WORKFLOW`` Code nodes."""
    out = []
    for start in range(0, len(cases), PER_WORKFLOW):
        part = list(cases[start:start + PER_WORKFLOW])
        out.append((build_workflow(f"differential {start // PER_WORKFLOW + 1}", part), part))
    return out


def node_result(execution: Execution, case: Case) -> dict[str, Any]:
    """What n8n recorded of one Code node: ``{"ran", "items", "node_error"}``, raw."""
    runs = execution.run_data.get(case.id)
    if not runs:
        return {"ran": False, "items": [], "node_error": None}
    run = runs[0]
    error = run.get("error")
    return {"ran": True, "items": execution.output(case.id),
            "node_error": None if error is None else {
                "message": error.get("message"), "description": error.get("description")}}


def run_stopping(n8n: N8n, cases: Sequence[Case], timeout_s: float = 60.0) -> dict[str, Any]:
    """The error each case's node stops its workflow with, when "continue on fail" is off (the
    default a user gets): ``{"message", "description"}`` (n8n shows the description, the
    error's type, under the message), or None when the node did not fail. One workflow per
    case, since the first failure ends a workflow."""
    # Started all at once (n8n runs them side by side, each its own execution), then
    # collected: one case's outcome does not depend on another's.
    started = [(case, n8n.start_run(n8n.create_workflow(
        build_workflow(f"differential stop {case.id}", [case], on_error=None)))) for case in cases]
    return {case.id: node_result(n8n.wait(execution_id, timeout_s), case)["node_error"]
            for case, execution_id in started}


def run_corpus(n8n: N8n, cases: Sequence[Case], timeout_s: float = 600.0) -> dict[str, dict[str, Any]]:
    """Every case's raw node result (``node_result``), by case id."""
    results: dict[str, dict[str, Any]] = {}
    for wf, part in build_workflows(cases):
        execution = n8n.run(n8n.create_workflow(wf), timeout_s=timeout_s)
        for case in part:
            results[case.id] = node_result(execution, case)
    return results
