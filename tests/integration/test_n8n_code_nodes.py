"""Code node semantics in real jails, without n8n: the wrapper snippets of ``python_node`` and
``javascript_node`` run through the runner's own port to the pools exactly as the runner runs them, and their
answers are compared with what n8n's own runners answered (the captures) or with n8n's rules.
"""

from __future__ import annotations

import json

import pytest

from sandbox import PoolConfig
from sandbox.config import Limits
from sandbox.n8n import javascript_node, python_node
from sandbox.n8n import protocol as p
from sandbox.n8n.task import Finished, Job
from sandbox.result import Result
from tests.n8n import captures
from tests.n8n.jobs import Jobs

pytestmark = pytest.mark.jail

LIMITS = Limits(timeout_s=10.0, memory_mb=128)
EACH, ALL = "runOnceForEachItem", "runOnceForAllItems"


@pytest.fixture(scope="module")
def sb():
    with Jobs(PoolConfig(size=2), runtimes=("python", "javascript")) as box:
        yield box


def execute(sb: Jobs, job: Job) -> Result:
    return sb.run(job)


def settings(code: str, mode: str = ALL, items=None, cof: bool = False, **extra) -> p.Settings:
    return p.Settings(code=code, node_mode=mode, workflow_mode="manual", continue_on_fail=cof,
                      items=items, **extra)


def run_py(sb, code, mode=ALL, items=None, cof=False, query=None) -> Finished:
    s = settings(code, mode, [{"json": i} for i in (items or [{}])], cof, query=query)
    return python_node.finish(s, execute(sb, python_node.job(s, LIMITS)), LIMITS)


# -- Python ----------------------------------------------------------------------------------

PY_RESULTS = [
    ("top-level return, plain dicts wrapped", ALL,
     "x = 1\nreturn [{'a': x}, {'json': {'b': 2}, 'binary': {'f': {'data': 'QQ=='}}}]",
     [{"json": {"a": 1}}, {"json": {"b": 2}, "binary": {"f": {"data": "QQ=="}}}]),
    ("one dict is one item", ALL, "return {'n': len(_items)}", [{"json": {"n": 2}}]),
    ("None is no items", ALL, "return None", []),
    ("each item: pairedItem set, None skips", EACH,
     "return None if _item['json']['x'] == 2 else {'y': _item['json']['x']}",
     [{"json": {"y": 1}, "pairedItem": {"item": 0}}]),
    ("each item: fresh globals per call", EACH,
     "global seen\nprev = 'seen' in globals()\nseen = 1\nreturn {'prev': prev}",
     [{"json": {"prev": False}, "pairedItem": {"item": 0}},
      {"json": {"prev": False}, "pairedItem": {"item": 1}}]),
    ("values n8n's JSON cannot hold become text, NaN null", ALL,
     "import datetime\nreturn [{'b': b'hi', 'd': datetime.date(2024, 1, 2), 's': {1}, 'nan': float('nan'), "
     "'big': 2**70}]",
     [{"json": {"b": "b'hi'", "d": "2024-01-02", "s": "{1}", "nan": None, "big": 2**70}}]),
]


@pytest.mark.parametrize("why,mode,code,expected", PY_RESULTS, ids=[r[0] for r in PY_RESULTS])
def test_python_results(sb, why, mode, code, expected):
    done = run_py(sb, code, mode, items=[{"x": 1}, {"x": 2}])
    assert done.error is None and done.done == {"result": expected}


def test_python_query_of_the_ai_code_tool(sb):
    done = run_py(sb, "return [{'q': _query, 'n': len(_items)}]", query="what is 2+2")
    assert done.done == {"result": [{"json": {"q": "what is 2+2", "n": 1}}]}


def test_python_prints_are_formatted_as_n8ns_runner_does_and_capped_at_100(sb):
    done = run_py(sb, "print('s', 1, 2.5, None, True, {'a': [1]}, [1, 'x'])\n"
                      "for i in range(150):\n    print(i)\nreturn []")
    assert done.logs[0] == ["'s'", "1", "2.5", "None", "True", '{"a": [1]}', '[1, "x"]']
    assert len(done.logs) == 101 and done.logs[99] == ["98"]
    assert done.logs[100] == ["[Output truncated - 51 more print statements]"]


def test_python_error_names_the_users_line_and_frames(sb):
    done = run_py(sb, "def helper(v):\n    return 1 / v\n\nreturn [{'r': helper(0)}]")
    err = done.error
    assert err is not None
    assert err["message"] == "division by zero" and err["description"] == "ZeroDivisionError"
    assert err["lineNumber"] == 2
    assert err["stack"] == (
        "Traceback (most recent call last):\n"
        '  File "<all_items_task_execution>", line 4, in _user_function\n'
        "    return [{'r': helper(0)}]\n"
        '  File "<all_items_task_execution>", line 2, in helper\n'
        "    return 1 / v\n"
        "ZeroDivisionError: division by zero\n")


def test_python_syntax_error_names_its_line(sb):
    err = run_py(sb, "x = 1\nif x\n    return []").error
    assert err is not None and err["description"] == "SyntaxError" and err["lineNumber"] == 2


@pytest.mark.parametrize("code,message", [
    ("return [1]", "Code doesn't return items properly: item 0 is a int, not a dict"),
    ("a = {}\na['self'] = a\nreturn [a]", "Circular reference detected"),
    ("return 'text'", "Code doesn't return items properly: return a list of dicts, not a str"),
])
def test_python_results_n8n_cannot_take_are_errors(sb, code, message):
    err = run_py(sb, code).error
    assert err is not None and err["message"] == message


def test_python_continue_on_fail_in_each_item_mode_is_one_error_item(sb):
    # n8n's Python runner fails the whole task and answers one item with the message
    done = run_py(sb, "raise KeyError('k')", EACH, items=[{"x": 1}, {"x": 2}], cof=True)
    assert done.done == {"result": [{"json": {"error": "'k'"}}]}


def test_python_memory_limit_is_the_sandboxes_not_the_users_error(sb):
    done = run_py(sb, "x = bytearray(1024 ** 3)\nreturn []", cof=False)
    assert done.error is not None
    assert done.error["message"] == "Task ran out of memory: this runner allows each task 128 MB"


# -- JavaScript ------------------------------------------------------------------------------


def _replay(sb, capture: str) -> tuple[Finished, list[dict]]:
    msgs = captures.messages(capture)
    s = p.parse(json.dumps(next(m for m in msgs if m["type"] == "broker:tasksettings")))
    response = next(m for m in msgs if m["type"] == "broker:taskdataresponse")["data"]
    assert isinstance(s, p.TaskSettings)
    job = javascript_node.job(s.settings, response, LIMITS)
    return javascript_node.finish(s.settings, execute(sb, job), LIMITS), msgs


@pytest.mark.parametrize("capture", ["02", "03", "07"])
def test_javascript_replays_answer_as_n8ns_runner_did(sb, capture):
    done, msgs = _replay(sb, capture)
    expected = next(m for m in msgs if m["type"] == "runner:taskdone")["data"]
    rpc = [m["params"] for m in msgs if m["type"] == "runner:rpc"]
    assert done.error is None and done.done == expected and done.logs == rpc


def js_settings(code: str, mode: str = ALL, cof: bool = False, count: int = 2) -> p.Settings:
    chunk = p.Chunk(0, count) if mode == EACH else None
    return settings(code, mode, cof=cof, chunk=chunk)


def run_js(sb, code, mode=ALL, cof=False, items=({"x": 1}, {"x": 2}), response=None) -> Finished:
    s = js_settings(code, mode, cof, len(items))
    data = response or json.loads(json.dumps(
        next(m for m in captures.messages("07") if m["type"] == "broker:taskdataresponse")["data"]))
    data["inputData"] = {"main": [[{"json": i, "pairedItem": {"item": n}} for n, i in enumerate(items)]]}
    return javascript_node.finish(s, execute(sb, javascript_node.job(s, data, LIMITS)), LIMITS)


def test_javascript_error_in_each_item_mode_with_line(sb):
    # n8n 2.41's runner words it as V8 does and names no item (its ExecutionError gets none)
    err = run_js(sb, "const x = $json.x;\nif (x === 2) null.boom;\nreturn {json: {x}};", EACH).error
    assert err is not None
    assert err["message"] == "Cannot read properties of null (reading 'boom') [line 2]"
    assert err["description"] == "TypeError" and err["lineNumber"] == 2 and "itemIndex" not in err


def test_javascript_continue_on_fail_per_item(sb):
    done = run_js(sb, "if ($json.x === 1) throw new Error('one');\nreturn {json: {ok: $json.x}};",
                  EACH, cof=True)
    assert done.done == {"result": [
        {"json": {"error": "one [line 1]"}, "pairedItem": {"item": 0}},
        {"json": {"ok": 2}, "pairedItem": {"item": 1}}]}


def test_javascript_static_and_custom_data_go_back_to_n8n(sb):
    done = run_js(sb, "$getWorkflowStaticData('global').n = 3;\n"
                      "$execution.customData.set('k', 5);\nreturn [];")
    assert done.done == {"result": [], "customData": {"k": "5"}, "staticData": {"global": {"n": 3}}}


def test_javascript_unchanged_static_data_is_not_sent(sb):
    done = run_js(sb, "$getWorkflowStaticData('node');\nreturn [];")
    assert done.done is not None and "staticData" not in done.done


def test_javascript_syntax_error_names_its_line_beside_v8s_message(sb):
    # n8n's runner writes no "[line N]" for code that does not parse
    err = run_js(sb, "const a = 1;\nconst b = ;\nreturn [];").error
    assert err is not None and err["description"] == "SyntaxError" and err["lineNumber"] == 2
    assert err["message"] == "Unexpected token ';'"


# errors of n8n's own API come from n8n's realm, which its runner passes on unchanged (no line)
@pytest.mark.parametrize("code,message", [
    ("return [{json: {e: $env.HOME}}];", "access to env vars denied"),
    ("return this.helpers.getSSHClient();",
     'The function "helpers.getSSHClient" is not supported in the Code Node'),
    ("return $('Nope').all();", "Referenced node doesn't exist"),
])
def test_javascript_what_is_not_provided_fails_naming_it(sb, code, message):
    err = run_js(sb, code).error
    assert err is not None and err["message"] == message


def test_javascript_each_item_mode_sends_an_array_as_n8ns_runner_does(sb):
    # n8n itself refuses it ("A 'json' property isn't an object"), as with its own runner
    done = run_js(sb, "return [{json: {}}];", EACH).done
    assert done is not None and done["result"][0]["json"] == [{"json": {}}]


def test_javascript_heap_bomb_is_the_memory_limit(sb):
    err = run_js(sb, "const a = []; while (true) a.push(new Array(1e5).fill(7));").error
    assert err is not None
    assert err["message"] == "Task ran out of memory: this runner allows each task 128 MB"
