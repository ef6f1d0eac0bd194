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

import re
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
    if isinstance(v, (JsObject, JsArray)):
        v = v._v
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


# -- n8n 1.x's Python API (its Pyodide runner): the JavaScript Code node's names with "_" for
# "$", whose values were JavaScript objects seen through Pyodide's proxies: item.json.x and
# item["json"]["x"] both read, assignments write through to the item, to_py() copies out


def js(v):
    if isinstance(v, dict):
        return JsObject(v)
    if isinstance(v, list):
        return JsArray(v)
    return v


def py(v):
    # a proxy's own data (proxies deeper inside are unwrapped by plain() at the end)
    return v._v if isinstance(v, (JsObject, JsArray)) else v


def returned(r):
    # what the code returned, with the proxies of its items' level unwrapped
    r = py(r)
    if isinstance(r, (list, tuple)):
        return [py(x) for x in r]
    return r


def copied(v):
    if isinstance(v, dict):
        return {k: copied(x) for k, x in v.items()}
    if isinstance(v, list):
        return [copied(x) for x in v]
    return v


class JsObject:
    __slots__ = ("_v",)

    def __init__(self, v):
        object.__setattr__(self, "_v", v)

    def __getattr__(self, name):
        if name in self._v:
            return js(self._v[name])
        raise AttributeError(name)

    def __setattr__(self, name, value):
        self._v[name] = py(value)

    def __delattr__(self, name):
        if name not in self._v:
            raise AttributeError(name)
        del self._v[name]

    def __getitem__(self, key):
        return js(self._v[key])

    def __setitem__(self, key, value):
        self._v[key] = py(value)

    def __delitem__(self, key):
        del self._v[key]

    def __contains__(self, key):
        return key in self._v

    def __iter__(self):
        return iter(self._v)

    def __len__(self):
        return len(self._v)

    def __eq__(self, other):
        return self._v == py(other)

    def __repr__(self):
        return repr(self._v)

    def keys(self):
        return self._v.keys()

    def values(self):
        return [js(x) for x in self._v.values()]

    def items(self):
        return [(k, js(x)) for k, x in self._v.items()]

    def get(self, key, default=None):
        return js(self._v[key]) if key in self._v else default

    def to_py(self, *args, **kwargs):
        return copied(self._v)

    def as_object_map(self, *args, **kwargs):
        return self


class JsArray:
    __slots__ = ("_v",)

    def __init__(self, v):
        object.__setattr__(self, "_v", v)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return JsArray(self._v[index])
        return js(self._v[index])

    def __setitem__(self, index, value):
        self._v[index] = py(value)

    def __delitem__(self, index):
        del self._v[index]

    def __len__(self):
        return len(self._v)

    def __iter__(self):
        return (js(x) for x in self._v)

    def __contains__(self, value):
        return py(value) in self._v

    def __eq__(self, other):
        return self._v == py(other)

    def __repr__(self):
        return repr(self._v)

    @property
    def length(self):
        return len(self._v)

    def append(self, value):
        self._v.append(py(value))

    def push(self, *values):
        self._v.extend(py(v) for v in values)
        return len(self._v)

    def extend(self, values):
        self._v.extend(py(v) for v in values)

    def pop(self, index=-1):
        return js(self._v.pop(index))

    def insert(self, index, value):
        self._v.insert(index, py(value))

    def index(self, value):
        return self._v.index(py(value))

    def count(self, value):
        return self._v.count(py(value))

    def to_py(self, *args, **kwargs):
        return copied(self._v)


class Input:
    # n8n 1.x's _input: all(), first(), last(), item, params
    def __init__(self, items, current):
        self._items = items
        self._current = current

    def all(self, branch_index=0, run_index=0):
        return JsArray(self._items)

    def first(self, branch_index=0, run_index=0):
        return js(self._items[0]) if self._items else None

    def last(self, branch_index=0, run_index=0):
        return js(self._items[-1]) if self._items else None

    @property
    def item(self):
        return js(self._current)

    @property
    def params(self):
        return JsObject({})


class NodeOutput:
    # n8n 1.x's _('Node'): another node's output items, from the task's data request
    def __init__(self, name, items):
        self._name = name
        self._items = items

    def all(self, branch_index=0, run_index=None):
        return JsArray(self._items)

    def first(self, branch_index=0, run_index=None):
        return js(self._items[0]) if self._items else None

    def last(self, branch_index=0, run_index=None):
        return js(self._items[-1]) if self._items else None

    @property
    def isExecuted(self):
        return True

    @property
    def item(self):
        raise NameError("_(" + repr(self._name) + ").item is not available in this runner for "
                        "Python (paired items are not followed): use _(" + repr(self._name)
                        + ").all()[index] or .first()")

    itemMatching = item


def other_node(name=None, *args):
    nodes = data["nodes"]
    if isinstance(name, str) and name in nodes:
        if nodes[name] is None:
            raise NameError("Node '" + name + "' hasn't been executed")
        return NodeOutput(name, nodes[name])
    raise NameError("_(" + repr(name) + ") is not available in this runner: write the node's "
                    "name as a literal (_('Node')), so that n8n is asked for its items")


class EnvBlocked:
    def __getattr__(self, name):
        raise PermissionError("access to env vars denied")

    def __getitem__(self, name):
        raise PermissionError("access to env vars denied")


def v1_names(scope, items, current, index):
    # the names n8n 1.x's Python Code node had, beside the native ones
    scope["_input"] = Input(items, current)
    scope["_json"] = js(current.get("json")) if isinstance(current, dict) else None
    scope["_binary"] = js(current.get("binary", {})) if isinstance(current, dict) else None
    scope["_itemIndex"] = index
    scope["_runIndex"] = 0
    scope["_mode"] = data["workflow_mode"]
    scope["_workflow"] = JsObject({"id": data["workflow_id"], "name": data["workflow_name"]})
    scope["_env"] = EnvBlocked()
    scope["_"] = other_node
    if each:
        scope["item"] = js(current)
    else:
        scope["items"] = JsArray(items)


def user_print(*args, **kwargs):
    if len(prints) < data["max_prints"]:
        prints.append([shown(a) for a in args])
    else:
        dropped[0] += 1


def build():
    # compile(..., PyCF_ONLY_AST) parses without the ast module; the user's statements go
    # into a function whose def shares their first line, so line numbers stay their own
    # (n8n 1.x ran the code in an async function: a top-level await makes it one here too)
    only_ast, top_level_await = 0x400, 0x2000
    tree = compile(code, filename, "exec", only_ast | top_level_await, True)
    for header in ("def", "async def"):
        shell = compile(header + " _user_function():\n    pass\n", filename, "exec", only_ast, True)
        if tree.body:
            shell.body[0].body = tree.body
        try:
            return compile(shell, filename, "exec", 0, True)
        except SyntaxError as e:
            if header != "def" or "outside async function" not in str(e):
                raise


user_builtins = dict(__builtins__)
user_builtins["print"] = user_print


def awaited(coroutine):
    # a top-level await: asyncio runs it where it may be imported (the default policy allows
    # it); else it is driven by hand, which serves what awaits no event loop
    try:
        asyncio = __import__("asyncio")
    except ImportError:
        try:
            while True:
                coroutine.send(None)
        except StopIteration as done:
            return done.value
    return asyncio.run(coroutine)


def call(compiled, name, value, index):
    scope = {"__builtins__": user_builtins, "__name__": "__main__", name: value}
    if data["query"] is not None:
        scope["_query"] = data["query"]
    v1_names(scope, data["items"], value if each else (data["items"][0] if data["items"] else None),
             index)
    exec(compiled, scope)
    r = scope["_user_function"]()
    if type(r).__name__ == "coroutine":
        r = awaited(r)
    return returned(r)


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
            r = call(compiled, "_item", item, index)
            if r is None:
                continue
            out = item_of(r, "the result for item " + str(index))
            out["pairedItem"] = {"item": index}
            result.append(out)
    else:
        r = call(compiled, "_items", data["items"], 0)
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
