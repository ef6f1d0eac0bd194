"""n8n's Python Code node ("pythonNative") on our Python runtime.

Semantics, as n8n's native Python runner has them: the user's code is the body of a
function, so a top-level ``return`` works; it sees ``_items`` (all items, "Run Once for All
Items"), ``_item`` (one item, "Run Once for Each Item": all items of the task run in one
child, one call each, each with fresh globals) and ``_query`` (the AI Code Tool's input).
Results are normalised: a dict becomes a one-item list, a plain dict is wrapped in
``json``, ``binary`` is kept, each-item results get ``pairedItem`` and ``None`` skips the
item. ``print`` goes to n8n as ``logNodeOutput`` calls, one per print, at most 100.
Errors carry ``message``, ``description`` (the exception type), ``stack`` and
``lineNumber``, in the user's own line numbers. ``continueOnFail`` answers
``[{"json": {"error": message}}]``.

The wrapper (``runtimes/python/library/n8n_code_node.pysnippet``, compiled once in the
zygote) is the snippet our jail runs. It is trusted host code, but it runs under every layer
a snippet gets (the import guard too), so it imports nothing: it compiles the user's code
through ``compile`` alone (``PyCF_ONLY_AST`` gives the tree without the ``ast`` module) and
formats tracebacks itself. Code that uses n8n 1.x's Python API (``_input``, ``items``,
``_('Node')``, ...) gets those names too, as Pyodide's proxies gave them. Pure: no I/O
(the wrapper's text is read once, at import).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import runtimes.python

from runtimes import codec
from runtimes.outcome import Status
from sandbox.config import Limits
from sandbox.n8n.protocol import Settings
from sandbox.n8n.task import Finished, Job, JobError, fail, format_log_arg, jsonable, limit_error
from sandbox.result import Result

MAX_PRINTS = 100  # n8n's Python runner sends at most this many print calls per task
FILENAMES = {"runOnceForAllItems": "<all_items_task_execution>",
             "runOnceForEachItem": "<per_item_task_execution>"}

#: the snippet our jail runs for every Python task (compiled once in the zygote)
WRAPPER = (Path(runtimes.python.__file__).parent / "library" / "n8n_code_node.pysnippet").read_text()


_NODE_LITERAL = re.compile(r"""(?<![\w.])_\(\s*(?:'((?:[^'\\\n])*)'|"((?:[^"\\\n])*)")\s*\)""")


def data_request(settings: Settings) -> dict[str, Any] | None:
    """n8n 1.x's ``_('Node')`` reads another node's items, which n8n does not send with a
    Python task: the ``requestParams`` that ask for them (as a JavaScript task asks), or None
    when the code names no node (the task's own items come inline)."""
    names = sorted({next(g for g in m.groups() if g is not None)
                    for m in _NODE_LITERAL.finditer(settings.code)})
    if not names:
        return None
    return {"dataOfNodes": names, "prevNode": False, "input": {"include": False}, "env": False}


def nodes_of(settings: Settings, response: dict[str, Any] | None) -> dict[str, Any]:
    """The items of each node the code names, from n8n's data response (its last run's first
    output, as n8n's data proxy reads it), None for a node that has not run."""
    request = data_request(settings)
    if request is None or response is None:
        return {}
    run_data = ((response.get("runExecutionData") or {}).get("resultData") or {}).get("runData") or {}
    nodes: dict[str, Any] = {}
    for name in request["dataOfNodes"]:
        runs = run_data.get(name)
        if not isinstance(runs, list) or not runs or not isinstance(runs[-1], dict):
            nodes[name] = None
            continue
        main = ((runs[-1].get("data") or {}).get("main")) or [[]]
        nodes[name] = (main[0] if main and isinstance(main[0], list) else [])
    return nodes


#: the names that mark code written for n8n 1.x's Python API
_V1_NAMES = re.compile(r"(?<![\w.])(?:_input|items|item|_json|_binary|_itemIndex|_runIndex|_mode|"
                       r"_workflow|_env|_)\b|(?<![\w.])_\(")


def job(settings: Settings, limits: Limits, response: dict[str, Any] | None = None) -> Job:
    """The snippet for a Python task (its items came inline in the settings; ``response``:
    n8n's answer to ``data_request``, when the code names other nodes)."""
    try:
        data = codec.encode({
            "code": settings.code, "filename": FILENAMES[settings.node_mode],
            "each": settings.node_mode == "runOnceForEachItem", "items": settings.items or [],
            "query": settings.query, "max_prints": MAX_PRINTS,
            "workflow_mode": settings.workflow_mode, "workflow_id": settings.workflow_id,
            "workflow_name": settings.workflow_name, "nodes": nodes_of(settings, response),
            "v1": bool(_V1_NAMES.search(settings.code)),
        }, path="data")
    except codec.EncodeError as exc:
        raise JobError(f"the task's items cannot be sent to the sandbox: {exc}") from exc
    return Job("python", WRAPPER, data, limits, settings.workflow_id)


def logs_of(value: dict[str, Any]) -> list[list[str]]:
    prints = value.get("prints") or []
    logs = [[format_log_arg(a) for a in args] for args in prints if isinstance(args, list)]
    dropped = value.get("dropped") or 0
    if dropped:
        logs.append([f"[Output truncated - {dropped} more print statements]"])
    return logs


def finish(settings: Settings, result: Result, limits: Limits) -> Finished:
    """The answer to n8n for a Python task that ended with ``result``."""
    cof = settings.continue_on_fail
    if result.status is not Status.OK or not isinstance(result.value, dict):
        message, description = limit_error(result, limits)
        return fail(message, cof, description=description)
    value = result.value
    logs = logs_of(value)
    error = value.get("error")
    if isinstance(error, dict):
        details = {k: v for k, v in error.items() if k != "message" and v is not None}
        message = str(error.get("message", ""))
        for ours, n8n in _SETTING_NAMES:  # name the settings an n8n operator knows
            message = message.replace(ours, n8n)
        return fail(message, cof, logs, **details)
    return Finished(logs, done={"result": jsonable(value.get("result") or [])})


_SETTING_NAMES = (("stdlib_allow (SANDBOX_STDLIB_ALLOW, --stdlib-allow)",
                   "N8N_RUNNERS_STDLIB_ALLOW (--stdlib-allow)"),
                  ("external_allow (SANDBOX_EXTERNAL_ALLOW, --external-allow)",
                   "N8N_RUNNERS_EXTERNAL_ALLOW (--external-allow)"))
