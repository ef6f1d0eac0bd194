"""The task data n8n sends for each Code node of the corpus, kept small on disk.

A recorded ``broker:taskdataresponse`` (``tap.py``) holds the whole workflow (every Code
node's code) and the run data of every node run so far: the same for all nodes of one
workflow but for the nodes run before. Stored here once per workflow: the workflow without
its code (which the corpus gives back), the run data of the pinned nodes only (no snippet
reads another snippet's node) and what n8n sends alike for every task of an execution; per
case only what is the case's own (its node, its input items where they are not the input
node's items paired one to one, its static data). ``response()`` puts a case's message back
together. Pure.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.n8n.differential.corpus import Case

#: Fields of a data response that are the same for every task of one execution.
_SHARED = ("additionalData", "envProviderState")
#: Fields of a data response that are a task's own and small.
_OWN = ("itemIndex", "activeNodeName", "contextNodeName", "defaultReturnRunIndex", "mode",
        "runIndex", "selfData", "siblingParameters", "connectionInputSource")


def _paired_input(run_data: dict[str, Any], source: str) -> list[dict[str, Any]]:
    """The input items n8n sends a node after ``source``: its items, paired by index."""
    items = run_data[source][0]["data"]["main"][0]
    return [{**item, "pairedItem": {"item": i}} for i, item in enumerate(items)]


def compact(messages: list[dict[str, Any]], cases: dict[str, Case]) -> dict[str, Any]:
    """The stored form of recorded data responses of the corpus's ``cases`` (by id)."""
    workflows: dict[str, Any] = {}
    own: dict[str, Any] = {}
    for msg in messages:
        data = msg["data"]
        wf = data["workflow"]
        name = data["node"]["name"]
        if name not in cases:
            continue
        code_nodes = {n["name"] for n in wf["nodes"] if n["type"] == "n8n-nodes-base.code"}
        if wf["name"] not in workflows:
            red = copy.deepcopy(data["runExecutionData"])
            result = red["resultData"]
            result["runData"] = {k: v for k, v in result["runData"].items() if k not in code_nodes}
            result.pop("lastNodeExecuted", None)
            stored = copy.deepcopy(wf)
            for node in stored["nodes"]:
                node["parameters"].pop("jsCode", None)
            stored.pop("staticData", None)
            workflows[wf["name"]] = {"workflow": stored, "runExecutionData": red,
                                     **{k: data[k] for k in _SHARED}}
        run_data = workflows[wf["name"]]["runExecutionData"]["resultData"]["runData"]
        for node_name, runs in data["runExecutionData"]["resultData"]["runData"].items():
            if node_name not in code_nodes:  # an input node first run for this case
                run_data.setdefault(node_name, copy.deepcopy(runs))
        entry: dict[str, Any] = {"workflow": wf["name"], "digest": cases[name].digest,
                                 "staticData": wf.get("staticData") or {},
                                 **{k: data[k] for k in _OWN if k in data}}
        source = data["connectionInputSource"]["main"][0]["previousNode"]
        if data["inputData"] != {"main": [_paired_input(run_data, source)]}:
            entry["inputData"] = data["inputData"]
        own[name] = entry
    return {"workflows": workflows, "cases": own}


def response(doc: dict[str, Any], case: Case) -> dict[str, Any] | None:
    """The data response n8n sent for ``case``; None when n8n sent none (it refused the
    node before asking a runner)."""
    entry = doc["cases"].get(case.id)
    if entry is None:
        return None
    shared = doc["workflows"][entry["workflow"]]
    wf = copy.deepcopy(shared["workflow"])
    wf["staticData"] = entry["staticData"]
    for node in wf["nodes"]:
        if node["type"] == "n8n-nodes-base.code":
            node["parameters"]["jsCode"] = case.code if node["name"] == case.id else ""
    node = next(n for n in wf["nodes"] if n["name"] == case.id)
    red = copy.deepcopy(shared["runExecutionData"])
    source = entry["connectionInputSource"]["main"][0]["previousNode"]
    input_data = entry.get("inputData") or {
        "main": [_paired_input(red["resultData"]["runData"], source)]}
    own = {k: v for k, v in entry.items() if k not in ("workflow", "digest", "staticData", "inputData")}
    return {**own, "workflow": wf, "node": copy.deepcopy(node), "runExecutionData": red,
            "inputData": input_data, **{k: copy.deepcopy(shared[k]) for k in _SHARED}}


def input_items(doc: dict[str, Any], case: Case) -> list[dict[str, Any]]:
    """The input items of ``case``'s node as n8n hands them on (paired by index), also for
    a case n8n sent no data for."""
    entry = doc["cases"].get(case.id)
    if entry is not None and "inputData" in entry:
        return copy.deepcopy(entry["inputData"]["main"][0])
    for shared in doc["workflows"].values():
        names = {n["name"] for n in shared["workflow"]["nodes"]}
        if case.id in names:
            return _paired_input(shared["runExecutionData"]["resultData"]["runData"], case.input)
    raise KeyError(f"no recorded workflow holds {case.id}")
