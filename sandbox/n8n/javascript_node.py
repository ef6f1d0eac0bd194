"""n8n's JavaScript Code node on our QuickJS runtime.

A JavaScript task arrives without data: the runner asks for what the code uses (parsed
here, the way n8n's own runner decides), then runs the user's code once ("Run Once for All
Items") or once per item of n8n's chunk ("Run Once for Each Item"), in one child, with the
Code node API of ``code_node.js``: ``$input``, ``$json``, ``$binary``, ``items``, ``item``,
``$itemIndex``, ``$('Node')``, ``$node``, ``$workflow``, ``$execution`` (``customData``
goes back in ``taskdone``), ``$getWorkflowStaticData`` (sent back when changed), ``$now``,
``$today``, ``$env`` (blocked as n8n blocks it), ``$prevNode``, ``$runIndex``, ``$mode``,
``$parameter``, ``$vars``, and ``console.log`` as ``logNodeOutput``. What it cannot build
(``helpers.*``, which are rpc calls back into n8n, ``require``, luxon's ``DateTime``,
``$jmespath``, paired items across branches) throws an error naming it.

The snippet is ``return __n8nRun(data, async function VmCodeWrapper(...) {<user code>
});`` followed by ``code_node.js``: the user's code starts on line 1, so stack line
numbers are the user's own. Pure: no I/O.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Any

from runtimes import codec
from runtimes.outcome import Status
from sandbox.config import Limits
from sandbox.n8n.protocol import Settings
from sandbox.n8n.task import Finished, Job, JobError, fail, jsonable, limit_error
from sandbox.result import Result

#: The names the user's code sees, in the order ``context()`` in code_node.js passes them.
PARAMS = (
    "$input", "$json", "$binary", "items", "item", "$itemIndex", "$", "$node", "$workflow",
    "$execution", "$getWorkflowStaticData", "$now", "$today", "$env", "$prevNode", "$runIndex",
    "$mode", "$parameter", "$vars", "require", "helpers", "DateTime", "Duration", "Interval",
    "$jmespath", "$evaluateExpression", "$fromAI", "$item", "$items", "console",
)

_NODE_LITERAL = re.compile(r"""\$\(\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"|`([^`$\\]*)`)\s*\)""")
_ANY_NODE_CALL = re.compile(r"\$\(")
_NEEDS_ALL = re.compile(r"\$node\b|\$item\s*\(|\$items\s*\(|"
                        r"\$\([^()]*\)\s*\.\s*(?:item|pairedItem|itemMatching)\b")
_NEEDS_INPUT = re.compile(r"\$input\b|\$json\b|\$binary\b|\bitems\b|\bitem\b|\$itemIndex\b")


@cache
def _runtime_js() -> str:
    return resources.files("sandbox.n8n").joinpath("code_node.js").read_text(encoding="utf-8")


def data_request(settings: Settings) -> dict[str, Any]:
    """The ``requestParams`` of the task's data request: what its code uses."""
    code = settings.code
    literal = [next(g for g in m.groups() if g is not None) for m in _NODE_LITERAL.finditer(code)]
    nodes: list[str] | str = sorted(set(literal))
    if _NEEDS_ALL.search(code) or len(_ANY_NODE_CALL.findall(code)) > len(literal):
        nodes = "all"  # paired items, $node, or a node named at run time: everything
    include_input = bool(_NEEDS_INPUT.search(code)) or nodes == "all"
    inp: dict[str, Any] = {"include": include_input}
    if include_input and settings.chunk is not None:
        inp["chunk"] = {"startIndex": settings.chunk.start_index, "count": settings.chunk.count}
    return {"dataOfNodes": nodes, "prevNode": "$prevNode" in code, "input": inp,
            "env": "$env" in code}


def snippet(code: str) -> str:
    """The QuickJS snippet for the user's ``code``: line 1 is the user's line 1."""
    return (f"return __n8nRun(data, async function VmCodeWrapper({', '.join(PARAMS)}) {{{code}\n"
            f"}}, {code.count(chr(10)) + 1});\n{_runtime_js()}")


def job(settings: Settings, response: dict[str, Any], limits: Limits) -> Job:
    """The snippet for a JavaScript task, with what n8n sent in its data response."""
    each = settings.node_mode == "runOnceForEachItem"
    main = (response.get("inputData") or {}).get("main") or [[]]
    chunk_items = (main[0] if main else None) or []
    start = settings.chunk.start_index if settings.chunk and each else 0
    count = settings.chunk.count if settings.chunk and each else len(chunk_items)
    items: list[Any] = [None] * start + list(chunk_items)
    workflow = response.get("workflow") or {}
    node = response.get("node") or {}
    run_execution = response.get("runExecutionData") or {}
    result_data = run_execution.get("resultData") or {}
    additional = response.get("additionalData") or {}
    env = response.get("envProviderState") or {}
    execution_id = str(additional.get("executionId", ""))
    data = {
        "each": each, "start": start, "count": min(count, max(len(items) - start, 0)),
        "items": items, "continueOnFail": settings.continue_on_fail,
        "node": {"name": node.get("name", settings.node_name),
                 "parameters": node.get("parameters") or {}},
        "workflow": {"id": workflow.get("id", settings.workflow_id),
                     "name": workflow.get("name", settings.workflow_name),
                     "active": bool(workflow.get("active"))},
        "workflowNodes": {n.get("name"): {"parameters": n.get("parameters") or {}}
                          for n in workflow.get("nodes") or [] if isinstance(n, dict)},
        "nodeNames": [n.get("name") for n in workflow.get("nodes") or [] if isinstance(n, dict)],
        "staticData": workflow.get("staticData") or {},
        "runData": result_data.get("runData") or {},
        "customData": result_data.get("metadata") or {},
        "connectionInputSource": response.get("connectionInputSource") or {},
        "executionId": execution_id,
        "resumeUrl": f"{additional.get('webhookWaitingBaseUrl', '')}/{execution_id}",
        "variables": additional.get("variables") or {},
        "workflowMode": response.get("mode", settings.workflow_mode),
        "runIndex": response.get("runIndex", 0),
        "env": {"blocked": bool(env.get("isEnvAccessBlocked", True)),
                "values": env.get("env") or {}},
    }
    try:
        encoded = codec.encode(data, path="data")
    except codec.EncodeError as exc:
        raise JobError(f"the task's data cannot be sent to the sandbox: {exc}") from exc
    # a JavaScript task's settings name no workflow: its data response does
    workflow_id = workflow.get("id", settings.workflow_id)
    return Job("javascript", snippet(settings.code), encoded, limits,
               workflow_id if isinstance(workflow_id, str) else "")


def finish(settings: Settings, result: Result, limits: Limits) -> Finished:
    """The answer to n8n for a JavaScript task that ended with ``result``."""
    cof = settings.continue_on_fail
    if result.status is Status.ERROR and result.error is not None and result.error.type == "SyntaxError":
        # the user's code did not compile: the engine reports the line in its message
        line = re.search(r"\(line (\d+)\)", result.error.message)
        message = re.sub(r"\s*\(line \d+\)$", "", result.error.message)
        details: dict[str, Any] = {"description": "SyntaxError",
                                   "stack": f"SyntaxError: {message}"}
        if line:
            details["lineNumber"] = int(line.group(1))
            message = f"{message} [line {line.group(1)}]"
        return fail(message, cof, **details)
    if result.status is not Status.OK or not isinstance(result.value, dict):
        message, description = limit_error(result, limits)
        return fail(message, cof, description=description)
    value = result.value
    logs = [[str(a) for a in args] for args in value.get("logs") or [] if isinstance(args, list)]
    error = value.get("error")
    if isinstance(error, dict):
        details = {k: v for k, v in error.items() if k != "message" and v is not None}
        return fail(str(error.get("message", "")), cof, logs, **details)
    done: dict[str, Any] = {"result": jsonable(value.get("result") or [])}
    if value.get("customData"):
        done["customData"] = jsonable(value["customData"])
    if "staticData" in value:
        done["staticData"] = jsonable(value["staticData"])
    return Finished(logs, done=done)
