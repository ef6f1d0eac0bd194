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

The wrapper below is the snippet our jail runs. It is trusted host code, but it runs under
every layer a snippet gets (the import guard too), so it imports nothing: it compiles the
user's code through ``compile`` alone (``PyCF_ONLY_AST`` gives the tree without the ``ast``
module) and formats tracebacks itself. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from runtimes import codec
from runtimes.outcome import Status
from sandbox.config import Limits
from sandbox.n8n.protocol import Settings
from sandbox.n8n.task import Finished, Job, JobError, fail, format_log_arg, jsonable, limit_error
from sandbox.result import Result

MAX_PRINTS = 100  # n8n's Python runner sends at most this many print calls per task
FILENAMES = {"runOnceForAllItems": "<all_items_task_execution>",
             "runOnceForEachItem": "<per_item_task_execution>"}

WRAPPER = r'''
code = data["code"]
filename = data["filename"]
each = data["each"]
prints = []
dropped = [0]
inf = float("inf")


def plain(v, path):
    # what survives n8n's JSON: anything else as its str(), like json.dumps(default=str)
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return None if v != v or v in (inf, -inf) else v
    if isinstance(v, (dict, list, tuple)):
        if id(v) in path:
            raise ValueError("Circular reference detected")
        if len(path) > 200:
            raise ValueError("Result is nested too deeply")
        path.add(id(v))
        try:
            if isinstance(v, dict):
                return {k if isinstance(k, str) else str(k): plain(x, path) for k, x in v.items()}
            return [plain(x, path) for x in v]
        finally:
            path.discard(id(v))
    if isinstance(v, (bytes, bytearray)):
        return str(bytes(v))
    return str(v)


def shown(v):
    try:
        return plain(v, set())
    except ValueError:
        return "[Circular " + type(v).__name__ + "]"


def user_print(*args, **kwargs):
    if len(prints) < data["max_prints"]:
        prints.append([shown(a) for a in args])
    else:
        dropped[0] += 1


def build():
    # compile(..., PyCF_ONLY_AST) parses without the ast module; the user's statements go
    # into a function whose def shares their first line, so line numbers stay their own
    only_ast = 0x400
    tree = compile(code, filename, "exec", only_ast, True)
    shell = compile("def _user_function():\n    pass\n", filename, "exec", only_ast, True)
    if tree.body:
        shell.body[0].body = tree.body
    return compile(shell, filename, "exec", 0, True)


user_builtins = dict(__builtins__)
user_builtins["print"] = user_print


def call(compiled, name, value):
    scope = {"__builtins__": user_builtins, "__name__": "__main__", name: value}
    if data["query"] is not None:
        scope["_query"] = data["query"]
    exec(compiled, scope)
    return scope["_user_function"]()


def item_of(r, where):
    if not isinstance(r, dict):
        raise TypeError("Code doesn't return items properly: " + where + " is a "
                        + type(r).__name__ + ", not a dict")
    if "json" in r:
        out = {"json": r["json"]}
        for key in ("binary", "pairedItem", "error"):
            if key in r:
                out[key] = r[key]
        return out
    return {"json": r}


def describe(e):
    lines = code.splitlines()
    frames = []
    tb = e.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            frames.append((tb.tb_lineno, tb.tb_frame.f_code.co_name))
        tb = tb.tb_next
    line = frames[-1][0] if frames else None
    if isinstance(e, SyntaxError) and e.filename == filename:
        line = e.lineno
        frames.append((e.lineno or 0, "<module>"))
    stack = ["Traceback (most recent call last):"]
    for n, name in frames:
        stack.append('  File "' + filename + '", line ' + str(n) + ", in " + name)
        if 0 < n <= len(lines) and lines[n - 1].strip():
            stack.append("    " + lines[n - 1].strip())
    stack.append(type(e).__name__ + ": " + str(e))
    return {"message": str(e), "description": type(e).__name__, "stack": "\n".join(stack) + "\n",
            "lineNumber": line}


try:
    compiled = build()
    if each:
        result = []
        for index, item in enumerate(data["items"]):
            r = call(compiled, "_item", item)
            if r is None:
                continue
            out = item_of(r, "the result for item " + str(index))
            out["pairedItem"] = {"item": index}
            result.append(out)
    else:
        r = call(compiled, "_items", data["items"])
        if r is None:
            r = []
        if isinstance(r, dict):
            r = [r]
        if not isinstance(r, (list, tuple)):
            raise TypeError("Code doesn't return items properly: return a list of dicts, not a "
                            + type(r).__name__)
        result = [item_of(x, "item " + str(i)) for i, x in enumerate(r)]
    answer = {"result": plain(result, set())}
except MemoryError:
    raise  # the memory limit: the sandbox reports it, not the user's error handling
except BaseException as e:
    answer = {"error": describe(e)}
answer["prints"] = prints
answer["dropped"] = dropped[0]
return answer
'''


def job(settings: Settings, limits: Limits) -> Job:
    """The snippet for a Python task (its items came inline in the settings)."""
    try:
        data = codec.encode({
            "code": settings.code, "filename": FILENAMES[settings.node_mode],
            "each": settings.node_mode == "runOnceForEachItem", "items": settings.items or [],
            "query": settings.query, "max_prints": MAX_PRINTS,
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
