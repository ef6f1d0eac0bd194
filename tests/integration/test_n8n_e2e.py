"""End to end: a real n8n 2.41.1 runs workflows whose Code nodes our runner serves.

Each test stores a workflow through n8n's REST API, runs it, and asserts what n8n itself
recorded for the execution (its node outputs and node errors, decoded from its flatted
storage). n8n is started once per session (tests/conftest.py); the runner is
``sandbox n8n-runner`` as a user starts it, configured by n8n's own variables.
"""

from __future__ import annotations

import http.server
import json
import signal
import threading
import time
import uuid

import pytest

from benchmarks.n8n_peer.peer import Execution, N8n, code_node, workflow
from tests.n8n import python_v1

pytestmark = pytest.mark.jail


def run(n8n: N8n, *nodes: dict, timeout_s: float = 60.0) -> Execution:
    return n8n.run(n8n.create_workflow(workflow(f"e2e {uuid.uuid4().hex[:6]}", list(nodes))),
                   timeout_s)


def py(name: str, code: str, **kw) -> dict:
    return code_node(name, code, "python", **kw)


def js(name: str, code: str, **kw) -> dict:
    return code_node(name, code, "javascript", **kw)


EACH = "runOnceForEachItem"


# -- both languages, both modes, chained ---------------------------------------------------


def test_chained_workflow_of_python_and_javascript_nodes_in_both_modes(n8n, n8n_runner):
    ex = run(n8n,
             js("Seed", "return [1, 2, 3].map((x) => ({ json: { x } }));"),
             js("JS Each", "return { json: { x: $json.x, doubled: $json.x * 2, "
                           "seedCount: $('Seed').all().length } };", mode=EACH),
             py("Py Each", 'x = _item["json"]["x"]\nreturn {"json": {"x": x, "sq": x * x}}', mode=EACH),
             py("Py All", 'return [{"json": {"sum": sum(i["json"]["x"] for i in _items), '
                          '"sumSq": sum(i["json"]["sq"] for i in _items)}}]'))
    assert ex.status == "success"
    assert ex.json("JS Each") == [{"x": 1, "doubled": 2, "seedCount": 3},
                                  {"x": 2, "doubled": 4, "seedCount": 3},
                                  {"x": 3, "doubled": 6, "seedCount": 3}]
    assert [i["pairedItem"] for i in ex.output("Py Each")] == [{"item": 0}, {"item": 1}, {"item": 2}]
    assert ex.json("Py All") == [{"sum": 6, "sumSq": 14}]


def test_python_results_are_normalised_as_n8n_expects(n8n, n8n_runner):
    ex = run(n8n,
             py("Seed", 'return [{"a": 1}, {"json": {"b": 2}}, {"c": None}]'),
             py("Each", 'return None if _item["json"].get("c", 1) is None '
                        'else dict(_item["json"], seen=True)', mode=EACH),
             py("One", 'return {"n": len(_items)}'))
    assert ex.status == "success"
    assert ex.json("Seed") == [{"a": 1}, {"b": 2}, {"c": None}]
    assert ex.output("Each") == [{"json": {"a": 1, "seen": True}, "pairedItem": {"item": 0}},
                                 {"json": {"b": 2, "seen": True}, "pairedItem": {"item": 1}}]
    assert ex.json("One") == [{"n": 2}]


def test_javascript_code_node_api(n8n, n8n_runner):
    code = """
const s = $getWorkflowStaticData('global');
s.runs = (s.runs || 0) + 1;
$execution.customData.set('tag', 'e2e');
const first = $('Seed').first().json.x;
return [{ json: {
  n: $input.all().length, first: $input.first().json.x, last: $input.last().json.x,
  json0: $json.x, seedFirst: first, executed: $('Seed').isExecuted,
  wf: $workflow.name, exec: $execution.id, mode: $execution.mode, prev: $prevNode.name,
  now: typeof $now.toISO === 'function', zone: $now.zoneName,
  env: (() => { try { return $env.HOME } catch (e) { return e.message } })(),
  req: (() => { try { require('fs') } catch (e) { return e.message } })(),
  luxon: DateTime.fromISO('2024-07-01T12:00:00Z').setZone('Europe/Berlin').hour,
} }];"""
    ex = run(n8n, js("Seed", "return [{json: {x: 1}}, {json: {x: 2}}];"), js("API", code))
    assert ex.status == "success"
    (out,) = ex.json("API")
    assert out["n"] == 2 and out["first"] == 1 and out["last"] == 2 and out["json0"] == 1
    assert out["seedFirst"] == 1 and out["executed"] is True
    assert out["wf"].startswith("e2e ") and out["exec"] == ex.id and out["mode"] == "test"
    assert out["prev"] == "Seed" and out["now"] is True
    assert out["env"] == "access to env vars denied"
    assert out["req"] == "Module 'fs' is disallowed"  # as n8n words it (no allow list here)
    assert out["luxon"] == 14 and out["zone"] == "America/New_York"  # n8n's default zone
    assert n8n.custom_data(ex.id) == {"tag": "e2e"}


def test_paired_item_through_a_chain_in_each_item_mode(n8n, n8n_runner):
    ex = run(n8n,
             js("Seed", "return [{json: {x: 10}}, {json: {x: 20}}];"),
             py("Mid", 'return {"y": _item["json"]["x"] + 1}', mode=EACH),
             js("Back", "return { json: { y: $json.y, x: $('Seed').item.json.x } };", mode=EACH))
    assert ex.status == "success"
    assert ex.json("Back") == [{"y": 11, "x": 10}, {"y": 21, "x": 20}]


def test_prints_reach_n8n_as_node_output(n8n, n8n_runner):
    push = n8n.push()
    try:
        wf = n8n.create_workflow(workflow("prints", [
            py("Printer", 'print("py says", 42, {"k": [1]})\nreturn [{"x": 1}]'),
            js("Logger", "console.log('js says', 7, {k: [1]}); return [];")]))
        assert n8n.run(wf, push=push).status == "success"
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(push.console()) < 2:
            time.sleep(0.05)
        # n8n parses each pre-formatted argument back for the browser console (a quoted
        # string stays as it is: n8n's own runners show the quotes too)
        assert push.console() == [["'py says'", 42, {"k": [1]}], ["'js says'", 7, {"k": [1]}]], push.messages
    finally:
        push.close()


# -- errors --------------------------------------------------------------------------------


def test_python_error_has_message_type_and_the_users_line(n8n, n8n_runner):
    ex = run(n8n, py("Boom", 'y = 1\nraise ValueError("boom from py")'))
    assert ex.status == "error"
    err = ex.node_error("Boom")
    assert err["message"] == "boom from py"
    assert err["description"] == "ValueError"
    assert err["lineNumber"] == 2


def test_python_syntax_error_names_its_line(n8n, n8n_runner):
    err = run(n8n, py("Syntax", "x = 1\ny = (\nreturn 1")).node_error("Syntax")
    assert err["description"] == "SyntaxError"
    assert err["lineNumber"] == 2


def test_javascript_error_in_each_item_mode_names_its_line(n8n, n8n_runner):
    ex = run(n8n, js("Seed", "return [{json: {x: 1}}, {json: {x: 2}}];"),
             js("Each", "const x = $json.x;\nif (x === 2) throw new TypeError('bad x');\nreturn {json: {x}};",
                mode=EACH))
    err = ex.node_error("Each")
    # as n8n 2.41's own runner words it: no item index (its ExecutionError is given none)
    assert err["message"] == "bad x [line 2]"
    assert err["description"] == "TypeError"
    assert err["lineNumber"] == 2


def test_continue_on_fail_answers_an_error_item(n8n, n8n_runner):
    ex = run(n8n, py("Py Fail", 'raise RuntimeError("soft fail")', on_error="continueRegularOutput"),
             js("JS Fail", "throw new Error('soft js');", on_error="continueRegularOutput"))
    assert ex.status == "success"
    assert ex.json("Py Fail") == [{"error": "soft fail"}]
    assert ex.json("JS Fail") == [{"error": "soft js [line 1]"}]


def test_import_outside_the_allow_list_names_the_n8n_setting(n8n, n8n_runner):
    err = run(n8n, py("Imp", "import os\nreturn []")).node_error("Imp")
    assert err["description"] == "ImportDenied"
    assert err["message"] == ("import of standard-library module 'os' is not allowed here; the "
                              "operator can allow it with N8N_RUNNERS_STDLIB_ALLOW (--stdlib-allow)")



def test_python_code_nodes_written_for_n8n_1x_run_unchanged(n8n, n8n_runner):
    # n8n 2.x's own runner fails all of these (its Python API is _items/_item only)
    ex = run(n8n,
             js("Seed", "return [{json: {name: 'ada', price: 2.5, qty: 4}}, "
                        "{json: {name: 'bob', price: 10, qty: 1}}];"),
             py("Template All", "for item in _input.all():\n  item.json.myNewField = 1\n"
                                "return _input.all()"),
             py("Template Each", "_input.item.json.total = _json.price * _json.qty\n"
                                 "return _input.item", mode=EACH),
             py("Aggregate", "import sqlite3\nfrom zoneinfo import ZoneInfo\n"
                             "db = sqlite3.connect(':memory:')\ndb.execute('create table t (v)')\n"
                             "db.executemany('insert into t values (?)', "
                             "[(i.json.total,) for i in items])\n"
                             "return [{'json': {'sum': db.execute('select sum(v) from t').fetchone()[0], "
                             "'zone': str(ZoneInfo('Europe/Berlin'))}}]"),
             py("Lookup", "return [{'json': {'seedFirst': _('Seed').first().json.name, "
                          "'seedCount': len(_('Seed').all()), 'sum': _input.first().json.sum}}]"))
    nodes = ("Template All", "Template Each", "Aggregate", "Lookup")
    assert ex.status == "success", [ex.node_error(n) for n in nodes]
    assert ex.json("Template All") == [{"name": "ada", "price": 2.5, "qty": 4, "myNewField": 1},
                                       {"name": "bob", "price": 10, "qty": 1, "myNewField": 1}]
    assert [i["total"] for i in ex.json("Template Each")] == [10.0, 10]
    assert ex.json("Aggregate") == [{"sum": 20.0, "zone": "Europe/Berlin"}]
    # _('Node'): the items of another node, which n8n answers a data request with
    assert ex.json("Lookup") == [{"seedFirst": "ada", "seedCount": 2, "sum": 20.0}]


@pytest.mark.parametrize("why,mode,code,expected", python_v1.V1, ids=[c[0] for c in python_v1.V1])
def test_the_n8n_1x_python_corpus_through_a_real_n8n(n8n, n8n_runner, why, mode, code, expected):
    seed = "return " + json.dumps([{"json": o} for o in python_v1.ORDERS]) + ";"
    ex = run(n8n, js("Seed", seed), py("Node", code, mode=mode))
    assert ex.status == "success", ex.node_error("Node")
    assert ex.json("Node") == expected

# -- limits, stops, escapes ----------------------------------------------------------------

ESCAPE = ('real = [c for c in ().__class__.__base__.__subclasses__() '
          'if c.__name__ == "catch_warnings"][0]()._module.__builtins__\n')


def test_memory_limit_says_the_cap_and_how_to_raise_it(n8n, n8n_runner):
    for node in (py("Py Mem", "x = bytearray(1024 ** 3)\nreturn []"),
                 js("JS Mem", "const a = []; while (true) a.push(new Array(1e6).fill(1)); return [];")):
        err = run(n8n, node).node_error(node["name"])
        assert err["message"] == "Task ran out of memory: this runner allows each task 128 MB"
        assert "--memory" in err["description"]


def test_cant_fork_even_past_the_language_layer(n8n, n8n_runner):
    err = run(n8n, py("Fork", ESCAPE + 'real["__import__"]("os").fork()\nreturn []')).node_error("Fork")
    assert err["message"].startswith("Task tried an operation that is not allowed in this runner")


@pytest.fixture
def http_server():
    """A real HTTP server on the loopback, answering each GET with the path it got."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"got": self.path}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_helpers_http_request_is_made_by_n8n_and_its_answer_reaches_the_code(n8n, n8n_runner,
                                                                              http_server):
    """n8n's helpers are calls into n8n (its runner's rpc): the request leaves n8n's process,
    never the jail, which has no network (test_cant_use_network)."""
    code = (f"const r = await this.helpers.httpRequest({{ url: 'http://127.0.0.1:{http_server}"
            f"/hello?x=1', json: true }});\nreturn [{{ json: r }}];")
    assert run(n8n, js("Http", code)).json("Http") == [{"got": "/hello?x=1"}]


def test_binary_helpers_take_and_give_buffers_through_n8n(n8n, n8n_runner):
    code = """
const b = await this.helpers.prepareBinaryData(Buffer.from('hi there'), 'a.txt', 'text/plain');
return [{ json: { name: b.fileName, mime: b.mimeType, size: b.fileSize,
                  text: await this.helpers.binaryToString(Buffer.from('ok')) } }];"""
    (out,) = run(n8n, js("Bin", code)).json("Bin")
    assert out == {"name": "a.txt", "mime": "text/plain", "size": "8 B", "text": "ok"}


def test_a_helper_n8n_does_not_offer_fails_in_n8ns_words(n8n, n8n_runner):
    err = run(n8n, js("Ssh", "await this.helpers.getSSHClient(); return [];")).node_error("Ssh")
    assert err["message"] == 'The function "helpers.getSSHClient" is not supported in the Code Node'


def test_cant_use_network(n8n, n8n_runner):
    code = ESCAPE + ('s = real["__import__"]("socket")\n'
                     's.create_connection(("127.0.0.1", %d), timeout=2)\nreturn []' % n8n.port)
    err = run(n8n, py("Net", code)).node_error("Net")
    # the jail's seccomp filter refuses to create a socket at all (connect would kill)
    assert (err["description"], err["message"]) == ("PermissionError", "[Errno 1] Operation not permitted")


def test_cant_read_host_files(n8n, n8n_runner):
    code = ESCAPE + 'return [{"p": real["open"]("%s").read()}]' % n8n.log_path
    err = run(n8n, py("Read", code)).node_error("Read")
    assert err["description"] == "FileNotFoundError"


def test_cant_see_another_tasks_data(n8n, n8n_runner):
    writer = py("Writer", "import json\njson.secret = 'task-a'\nreturn [{'set': True}]")
    reader = py("Reader", "import json\nreturn [{'seen': getattr(json, 'secret', None)}]")
    ex = run(n8n, writer, reader)
    assert ex.json("Reader") == [{"seen": None}]


def test_n8n_timeout_ends_the_child_and_the_next_task_runs(n8n, n8n_runner):
    ex = run(n8n, py("Hang", "while True:\n    pass"), timeout_s=60)
    err = ex.node_error("Hang")
    assert "timed out" in err["message"]
    assert "8" in err["message"]  # n8n's own N8N_RUNNERS_TASK_TIMEOUT of the session
    assert run(n8n, py("After", "return [{'ok': 1}]")).json("After") == [{"ok": 1}]


def test_user_stop_ends_the_child_and_the_next_task_runs(n8n, n8n_runner):
    eid = n8n.start_run(n8n.create_workflow(workflow("stop me", [js("Spin", "while (true) {}")])))
    time.sleep(2.0)  # running in its child by now
    n8n.stop_execution(eid)
    ex = n8n.wait(eid, 30)
    assert ex.status == "canceled"
    assert run(n8n, js("After", "return [{json: {ok: 1}}]")).json("After") == [{"ok": 1}]


# last: these restart the runner with other limits


def test_runner_timeout_names_its_own_limit(n8n, n8n_runners):
    n8n_runners.use("--task-timeout", "2", "--memory", "128")
    err = run(n8n, js("Slow", "const t = Date.now(); while (Date.now() - t < 20000) {} return [];")
              ).node_error("Slow")
    assert err["message"] == "Task execution timed out after 2 seconds (this runner's limit)"


def test_output_limit_names_the_cap(n8n, n8n_runners):
    n8n_runners.use("--max-payload", "2097152", "--memory", "128")
    err = run(n8n, py("Big", 'return [{"s": "x" * (3 * 1024 * 1024)}]')).node_error("Big")
    assert err["message"] == "Task result is too large: this runner allows 2 MiB"


# -- n8n's shutdown contract: SIGTERM lets the running task finish ----------------------


def test_sigterm_lets_a_running_code_node_finish_then_the_runner_leaves(n8n, n8n_runners):
    from benchmarks.n8n_peer.peer import RunnerProcess

    n8n_runners.stop()  # ours alone serves this workflow
    runner = RunnerProcess(n8n, "--graceful-shutdown-timeout", "0.5", "--log-level", "debug",
                           "--memory", "128").wait_registered()
    try:
        wf = n8n.create_workflow(workflow("sigterm", [
            py("Slow", "import time\ntime.sleep(2)\nreturn [{'done': True}]")]))
        eid = n8n.start_run(wf)
        deadline = time.monotonic() + 30
        while "started (python)" not in runner.log():
            assert time.monotonic() < deadline, runner.log()[-2000:]
            time.sleep(0.05)
        runner.proc.send_signal(signal.SIGTERM)
        ex = n8n.wait(eid, 30)
        assert ex.status == "success", ex.node_error("Slow")
        assert ex.json("Slow") == [{"done": True}]
        deadline = time.monotonic() + 20
        while runner.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert runner.proc.returncode == 0, runner.log()[-3000:]
    finally:
        runner.stop()
