"""n8n's JavaScript Code node on our QuickJS runtime.

A JavaScript task arrives without data: the runner asks for what the code uses (parsed
here, the way n8n's own runner decides), then runs the user's code once ("Run Once for All
Items") or once per item of n8n's chunk ("Run Once for Each Item", every item of the chunk
even when the code asked for no input), in one child, with the Code node API of
``runtimes/javascript/library/n8n.js``, bound as globals as n8n's ``vm`` context binds them
(so the code may declare its own ``items``): ``$input``, ``$json``, ``$binary``, ``items``, ``item``,
``$itemIndex``, ``$('Node')``, ``$node``, ``$workflow``, ``$execution`` (``customData``
goes back in ``taskdone``), ``$getWorkflowStaticData`` (sent back when changed), ``$now``,
``$today``, ``$env`` (blocked as n8n blocks it), ``$prevNode``, ``$runIndex``, ``$mode``,
``$parameter``, ``$vars``, ``console.log`` as ``logNodeOutput``, luxon's ``DateTime``,
``Duration`` and ``Interval`` with ``$now`` and ``$today`` in n8n's time zone
(``CodeOptions.timezone``), ``$jmespath``, and ``require()`` of the built-in modules the
operator allows (``CodeOptions``; crypto, buffer, url), refused as n8n refuses them. What it
cannot build (``helpers.*``, which are rpc calls back into n8n, npm packages that need Node
itself) throws an error naming it.

The snippet is ``return __n8nRun(data, async function VmCodeWrapper() {<user code>
});``: the user's code starts on line 1, so stack line numbers are the user's own.
``__n8nRun`` is the JavaScript runtime's ``n8n`` library module
(runtimes/javascript/library/n8n.js), compiled once in the runner's zygote (see
``backend.ZYGOTE_PRELOAD``), not per task. The task's data goes in as one JSON text, made
once here from what n8n sent and parsed once in the child; the items come back as JSON text,
made in the child as n8n's runner makes its JSON (undefined keys dropped); errors come back
as parts that ``v8_errors`` words as n8n's runner does. Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from runtimes import codec
from runtimes.javascript import executor, v8_words
from runtimes.outcome import Status
from sandbox.config import Limits
from sandbox.n8n import v8_errors
from sandbox.n8n.protocol import RPC_HELPERS, Settings
from sandbox.n8n.task import Finished, Job, JobError, fail, jsonable, limit_error
from sandbox.result import Result

#: Code that throws or rejects with null itself (else a thrown null is the engine's memory)
_THROWS_NULL = re.compile(r"\bthrow\s+null\b|\breject\s*\(\s*null\s*\)")

#: n8n's GENERIC_TIMEZONE when none is set (its runner's and n8n-workflow's default)
DEFAULT_TIMEZONE = "America/New_York"

_NODE_LITERAL = re.compile(r"""\$\(\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"|`([^`$\\]*)`)\s*\)""")
_ANY_NODE_CALL = re.compile(r"\$\(")
_NEEDS_ALL = re.compile(r"\$node\b|\$item\s*\(|\$items\s*\(|"
                        r"\$\([^()]*\)\s*\.\s*(?:item|pairedItem|itemMatching)\b")
#: The names for which n8n's runner asks for the input (its BuiltInsParser): not $binary nor
#: $itemIndex, so code that reads $binary alone gets no items, and its $binary is undefined
_NEEDS_INPUT = re.compile(r"\$input\b|\$json\b|\bitems\b|\bitem\b")


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


#: What precedes the user's code on its first line: n8n's names are globals (library/n8n.js
#: binds them), not parameters, so the code may declare its own ``items`` as in n8n.
_PREFIX = "return __n8nRun(data, async function VmCodeWrapper() {"


def snippet(code: str) -> str:
    """The QuickJS snippet for the user's ``code``: line 1 is the user's line 1."""
    return f"{_PREFIX}{code}\n}});"


def _line1_offset(code: str) -> int:
    """How many columns of the snippet's first line precede the user's code: the executor's
    own wrapper (it shares the line, see runtimes.javascript.executor) and ours."""
    return executor.line1_offset(snippet(code)) + len(_PREFIX)


@dataclass(frozen=True)
class CodeOptions:
    """What the operator set for JavaScript Code nodes, as n8n's runner reads it: the modules
    ``require()`` may load (NODE_FUNCTION_ALLOW_BUILTIN, NODE_FUNCTION_ALLOW_EXTERNAL: names,
    or ``"*"`` for any) and the instance's time zone (GENERIC_TIMEZONE: ``$now``, ``$today``
    and luxon's default zone, unless the workflow's settings name another), and the runner's
    own TZ, which is ``Date``'s local time zone as a Node process's."""

    allow_builtin: tuple[str, ...] = ()
    allow_external: tuple[str, ...] = ()
    timezone: str = DEFAULT_TIMEZONE
    tz: str = ""  # the runner's TZ: Date's local time zone, as Node's process zone ("": UTC)

    def as_task(self) -> dict[str, Any]:
        def names(allowed: tuple[str, ...]) -> list[str] | str:
            return "*" if "*" in allowed else list(allowed)

        task: dict[str, Any] = {"modules": {"builtin": names(self.allow_builtin),
                                            "external": names(self.allow_external)},
                                "timezone": self.timezone}
        if self.tz:
            task["tz"] = self.tz
        return task


def job(settings: Settings, response: dict[str, Any], limits: Limits, frame: str = "",
        options: CodeOptions = CodeOptions()) -> Job:
    """The snippet for a JavaScript task, with what n8n sent in its data response:
    ``response``, and ``frame``, the JSON text of the message that carried it (``{"data":
    response, ...}``) when the shell has it. The child gets two JSON texts: the task (what is
    worked out here, small) and that frame as n8n sent it (made from ``response`` when there
    is none), which the Code node API parses once and joins to the task (``taskData`` in
    library/n8n.js): the items are never encoded again on their way in."""
    each = settings.node_mode == "runOnceForEachItem"
    main = (response.get("inputData") or {}).get("main") or [[]]
    chunk_items = (main[0] if main else None) or []
    start = settings.chunk.start_index if settings.chunk and each else 0
    count = settings.chunk.count if settings.chunk and each else len(chunk_items)
    workflow = response.get("workflow") or {}
    node = response.get("node") or {}
    additional = response.get("additionalData") or {}
    env = response.get("envProviderState") or {}
    execution_id = str(additional.get("executionId", ""))
    task = {
        # each item of the chunk runs even when the code asked for no input (n8n's runner
        # loops over the chunk it was given, whatever data it requested)
        "each": each, "start": start,
        "count": count if settings.chunk and each else len(chunk_items),
        "continueOnFail": settings.continue_on_fail,
        "node": {"name": node.get("name", settings.node_name)},
        "workflow": {"id": workflow.get("id", settings.workflow_id),
                     "name": workflow.get("name", settings.workflow_name),
                     "active": bool(workflow.get("active"))},
        "executionId": execution_id,
        "resumeUrl": f"{additional.get('webhookWaitingBaseUrl', '')}/{execution_id}",
        "workflowMode": response.get("mode", settings.workflow_mode),
        "runIndex": response.get("runIndex", 0),
        "env": {"blocked": bool(env.get("isEnvAccessBlocked", True))},
        **options.as_task(),
    }
    try:
        if not frame:
            frame = json.dumps({"data": response}, allow_nan=False, separators=(",", ":"))
        encoded = codec.encode([json.dumps(task, allow_nan=False, separators=(",", ":")), frame])
    except (ValueError, codec.EncodeError) as exc:
        raise JobError(f"the task's data cannot be sent to the sandbox: {exc}") from exc
    # a JavaScript task's settings name no workflow: its data response does
    workflow_id = workflow.get("id", settings.workflow_id)
    return Job("javascript", snippet(settings.code), encoded, limits,
               workflow_id if isinstance(workflow_id, str) else "", RPC_HELPERS)


def finish(settings: Settings, result: Result, limits: Limits) -> Finished:
    """The answer to n8n for a JavaScript task that ended with ``result``."""
    cof = settings.continue_on_fail
    if result.status is Status.ERROR and result.error is not None and result.error.type == "SyntaxError":
        # the user's code did not compile: the engine names the line in its message; n8n's
        # runner names none (V8's parse error has no frame of the code), in V8's words
        line = re.search(r"\(line (\d+)\)", result.error.message)
        message = re.sub(r"\s*\(line \d+\)$", "", result.error.message)
        lines = settings.code.split("\n")
        text = lines[int(line.group(1)) - 1] if line and 0 < int(line.group(1)) <= len(lines) else None
        message = v8_words.v8_syntax_message(message, text)
        details: dict[str, Any] = {"description": "SyntaxError", "stack": f"SyntaxError: {message}"}
        if line:  # not in the message, as n8n's; still there for the editor to point at
            details["lineNumber"] = int(line.group(1))
        return fail(message, cof, **details)
    if result.status is not Status.OK or not isinstance(result.value, dict):
        message, description = limit_error(result, limits)
        return fail(message, cof, description=description)
    value = result.value
    logs = [[str(a) for a in args] for args in value.get("logs") or [] if isinstance(args, list)]
    code, user_lines = settings.code, settings.code.count("\n") + 1

    def error_of(info: Any) -> dict[str, Any]:
        info = dict(info) if isinstance(info, dict) else {}
        frames = info.get("frames") or []
        # columns on the first line count from the user's code, not from the snippet's
        info["frames"] = [[f[0], f[1], f[2] - _line1_offset(code) if f[1] == 1 else f[2]]
                          for f in frames if isinstance(f, list) and len(f) == 3]
        return v8_errors.execution_error(info, code, user_lines)

    if "error" in value:
        if (value["error"] or {}).get("kind") == "null" and not _THROWS_NULL.search(code):
            # a null thrown where the code throws none: the engine out of memory
            message, description = limit_error(Result(Status.MEMORY_LIMIT, "out of memory"), limits)
            return fail(message, cof, logs, description=description)
        error = error_of(value["error"])
        # an answer n8n's runner could not send fails the node even when it continues on fail
        return fail(str(error.pop("message")), cof and not value.get("unsent"), logs,
                    **{k: v for k, v in error.items() if v is not None})
    done: dict[str, Any] = {}
    text = value.get("result")
    failed = value.get("failed") or []
    if text is not None:  # none: the code returned undefined, and n8n says what it needs
        if not isinstance(text, str):
            return fail("Task result could not be read: not JSON text", cof, logs)
        try:
            # parsed, so that what goes to n8n is one JSON value whatever the child wrote
            # (NaN is not JSON), and sent as this very text when nothing changes it
            items = json.loads(text, parse_constant=_not_json)
        except (TypeError, ValueError) as exc:
            return fail(f"Task result could not be read: {exc}", cof, logs)
        if failed and not isinstance(items, list):
            return fail("Task result could not be read: not a list of items", cof, logs)
        for at, info in failed:
            items[at]["json"]["error"] = error_of(info)["message"]
        done["result"] = items
    if value.get("customData"):
        done["customData"] = jsonable(value["customData"])
    if "staticData" in value:
        done["staticData"] = jsonable(value["staticData"])
    return Finished(logs, done=done, result_json="" if failed or text is None else text)


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
