"""The pyodide runtime: each test names a capability it denies and asserts the exact outcome.

Python in WebAssembly has no system calls; what it could reach is the JavaScript side, so
the JS tests come first (CVE-2025-68668 and its variants), then the limits, then the layers
underneath (the jail, seccomp), then what a task can and cannot learn about the previous
tasks of the same worker (the python runtime's state-leak tests, with the outcomes here).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from one_runtime import PYODIDE_GRACE_S, OneRuntime
from sandbox import PoolConfig, PyodideConfig, Sandbox, Status

pytestmark = pytest.mark.jail


# -- the JavaScript side exposes nothing -------------------------------------------------------


def test_cant_reach_node_process_through_js(pyodide):
    """CVE-2025-68668: n8n's Python Code node reached Node's process with `from js import`."""
    r = pyodide.run("from js import process\nreturn process.pid")
    assert r.status is Status.ERROR
    assert r.error.type == "ImportError"


@pytest.mark.parametrize("name", ["process", "require", "Buffer", "fetch", "setTimeout",
                                  "setInterval", "globalThis", "WebAssembly"])
def test_cant_reach_host_globals_through_the_js_module(pyodide, name):
    r = pyodide.run(f"import js\nreturn str(js.{name})")
    assert r.status is Status.ERROR
    assert r.error.type == "AttributeError"


def test_cant_turn_a_string_into_js_code(pyodide):
    """The variant through any JS function's constructor: Function('return process')()."""
    code = ("from pyodide.ffi import to_js\n"
            "return to_js([]).constructor.constructor('return process')().pid")
    r = pyodide.run(code)
    assert r.status is Status.ERROR
    assert r.error.type == "JsException"
    assert "Code generation from strings disallowed" in r.error.message


def test_cant_run_js_through_pyodide_code(pyodide):
    r = pyodide.run("from pyodide.code import run_js\nreturn run_js('process.pid')")
    assert r.status is Status.ERROR
    assert r.error.type == "ImportError"


def test_cant_reach_the_pyodide_api(pyodide):
    """pyodide_js is Pyodide's JS API (its FS, loadPackage, the Emscripten module)."""
    r = pyodide.run("import pyodide_js\nreturn 1")
    assert r.status is Status.ERROR
    assert r.error.type == "ModuleNotFoundError"


def test_cant_find_host_capabilities_anywhere_in_the_js_object_graph(pyodide):
    """Every JS object reachable from the js module, converted values and the intrinsics,
    property by property: no Node global, no Pyodide API, no timer, no file system."""
    code = '''
import js
from pyodide.ffi import to_js, JsProxy, JsException
Object = to_js([]).constructor.prototype.__proto__.constructor
seeds = [js, to_js({}), to_js([]), to_js(b"x"), Object]
try:
    Object.constructor("1")
except JsException as e:
    seeds.append(e.js_error)
wanted = {"process", "require", "Buffer", "fetch", "setTimeout", "setInterval", "setImmediate",
          "_module", "FS", "loadPackage", "mountNodeFS", "WebAssembly", "globalThis", "global",
          "Worker", "WebSocket", "child_process"}
seen, queue, found = set(), list(seeds), set()
while queue and len(seen) < 3000:
    obj = queue.pop()
    if obj.js_id in seen:
        continue
    seen.add(obj.js_id)
    try:
        names = list(Object.getOwnPropertyNames(obj))
        proto = Object.getPrototypeOf(obj)
    except JsException:
        continue
    if isinstance(proto, JsProxy):
        queue.append(proto)
    for name in names:
        found |= {name} & wanted
        try:
            value = getattr(obj, name)
        except Exception:
            continue
        if isinstance(value, JsProxy):
            queue.append(value)
return [len(seen) > 50, sorted(found)]
'''
    r = pyodide.run(code, timeout_s=20)
    assert r.status is Status.OK, r.message
    assert r.value == [True, []]


def test_cant_spawn_processes(pyodide):
    """os.system is Node's child_process underneath: refused before it gets there."""
    r = pyodide.run("import os\nreturn os.system('id')")
    assert r.status is Status.ERROR
    assert r.error.type == "PermissionError"
    r = pyodide.run("import subprocess\nreturn subprocess.run(['id']).returncode")
    assert r.status is Status.ERROR
    assert r.error.type == "OSError"


def test_cant_open_network_connections(pyodide):
    """Emscripten's sockets are WebSockets through Node's `ws`: require is refused."""
    r = pyodide.run("import socket\ns = socket.socket()\ns.connect(('127.0.0.1', 80))\nreturn 1")
    assert r.status is Status.ERROR
    assert r.error.type == "OSError"


# -- the file system ---------------------------------------------------------------------------


def test_cant_read_host_files(pyodide):
    for path in ("/etc/passwd", "/proc/1/environ", "/sandbox/pyodide/pyodide.asm.js"):
        r = pyodide.run(f"return open({path!r}).read()")
        assert r.status is Status.ERROR, path
        assert r.error.type == "FileNotFoundError", path


def test_cant_write_outside_tmp(pyodide):
    r = pyodide.run("open('/lib/python311.zip', 'ab').write(b'x')")
    assert r.status is Status.ERROR
    assert r.error.type == "PermissionError"
    r = pyodide.run("open('/sandbox/runtimes/codec.py', 'w').write('x')")
    assert r.status is Status.ERROR
    assert r.error.type == "PermissionError"


def test_cant_make_files_writable_again(pyodide):
    r = pyodide.run("import os\nos.chmod('/lib/python311.zip', 0o666)")
    assert r.status is Status.ERROR
    assert r.error.type == "PermissionError"


def test_cant_see_host_environment(pyodide):
    secret = os.environ["SANDBOX_TEST_HOST_SECRET"]
    r = pyodide.run("import os\nreturn dict(os.environ)")
    assert r.status is Status.OK
    assert secret not in repr(r.value)
    assert r.value["PATH"] == "/"  # Emscripten's own defaults, not the host's


# -- limits ------------------------------------------------------------------------------------


def test_cant_outlive_timeout_by_swallowing_the_interrupt(pyodide):
    code = ("while True:\n    try:\n        while True:\n            pass\n"
            "    except BaseException:\n        pass")
    r = pyodide.run(code, timeout_s=0.5)
    assert r.status is Status.TIMEOUT


def test_cant_outlive_timeout_sleeping(pyodide):
    """Emscripten's sleep waits in JavaScript, deaf to the interrupt: the host kills it."""
    r = pyodide.run("import time\ntime.sleep(60)", timeout_s=0.3)
    assert r.status is Status.TIMEOUT
    assert "killed from outside" in r.message


def test_cant_allocate_beyond_memory_limit(pyodide):
    r = pyodide.run("x = bytearray(1024 ** 3)\nreturn len(x)", memory_mb=128)
    assert r.status is Status.MEMORY_LIMIT


def test_cant_fill_memory_little_by_little(pyodide):
    """The budget holds for many small allocations too, and the state is still put back."""
    r = pyodide.run("x = []\nwhile True:\n    x.append(list(range(1000)))", memory_mb=64)
    assert r.status is Status.MEMORY_LIMIT


# A snippet that takes all of its budget, then lets go of it (the MemoryError caught).
_EXHAUST = ("hold = []\ntry:\n    while True:\n        hold.append(bytearray(1 << 20))\n"
            "except MemoryError:\n    pass\nhold = None\n")
# ... and an interpreter failure underneath the executor (its error report replaced)
_FAIL_UNDERNEATH = ("import runtimes.python.executor as executor\n"
                    "def fail(*args):\n    raise SystemError('underneath')\n"
                    "executor.describe = fail\nraise ValueError('reported by fail')\n")


def test_an_interpreter_error_after_the_budget_refused_memory_is_the_memory_limit(pyodide):
    """CPython in WebAssembly loses some MemoryErrors of a failed grow (a C path that returns
    an error without one: SystemError); after a refusal, that is the task's memory_limit."""
    r = pyodide.run(_EXHAUST + "raise SystemError('error return without exception set')",
                    memory_mb=64)
    assert r.status is Status.MEMORY_LIMIT


def test_a_failure_underneath_the_executor_after_the_budget_refused_memory_is_the_memory_limit(
        pyodide):
    r = pyodide.run(_EXHAUST + _FAIL_UNDERNEATH, memory_mb=64)
    assert r.status is Status.MEMORY_LIMIT


def test_a_failure_underneath_the_executor_without_a_refusal_is_a_crash(pyodide):
    r = pyodide.run(_FAIL_UNDERNEATH, memory_mb=64)
    assert r.status is Status.CRASHED


def test_a_snippet_that_caught_its_memory_error_keeps_its_own_error(pyodide):
    r = pyodide.run(_EXHAUST + "raise ValueError('mine')", memory_mb=64)
    assert (r.status, r.error.type) == (Status.ERROR, "ValueError")


def test_cant_grow_webassembly_memory_beyond_its_maximum(pyodide):
    """memory_mb above the worker's cap: the engine's maximum (wasm_max_mb) still holds."""
    r = pyodide.run("x = bytearray(1536 * 1024 ** 2)\nreturn len(x)", memory_mb=4096)
    assert r.status is Status.MEMORY_LIMIT


def test_cant_grow_the_javascript_heap_beyond_its_limit(pyodide):
    """Python's only way to JS memory is conversion: a huge one aborts Node at heap_mb."""
    r = pyodide.run("from pyodide.ffi import to_js\nx = to_js(list(range(30_000_000)))\nreturn 1",
                    memory_mb=1000, timeout_s=30)
    assert r.status is Status.CRASHED
    assert "JavaScript heap limit (96 MB)" in r.message


def test_cant_recurse_into_a_crash(pyodide):
    r = pyodide.run("def f(n):\n    return f(n + 1)\nreturn f(0)")
    assert r.status is Status.ERROR
    assert r.error.type == "RecursionError"


# -- the layers underneath ---------------------------------------------------------------------


def _descendants(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found += [int(child), *_descendants(int(child))]
    return found


def _comm(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def _jail_pid(runtime: OneRuntime) -> int:
    return runtime.sandbox.snapshot()[runtime.runtime]["jail_pid"]


def test_workers_are_node_processes_inside_the_jail(pyodide):
    """nsjail -> the zygote (python) -> workers (node), nothing else."""
    assert pyodide.wait_ready()
    procs = _descendants(_jail_pid(pyodide))
    names = sorted(_comm(pid) for pid in procs)
    assert names == sorted(["python3"] + ["node"] * pyodide.sandbox.config.size)


def test_workers_run_under_the_worker_filter(pyodide):
    assert pyodide.wait_ready()
    for pid in _descendants(_jail_pid(pyodide)):
        if _comm(pid) == "node":
            status = Path(f"/proc/{pid}/status").read_text()
            assert "Seccomp:\t2" in status
            assert "Seccomp_filters:\t2" in status  # the jail's and the worker's
            assert "NoNewPrivs:\t1" in status


# -- what a task learns about the previous tasks of its worker ---------------------------------


@pytest.fixture(scope="module")
def one_worker():
    """One worker, so that consecutive tasks meet on it (unless one retires it)."""
    config = PoolConfig(size=1, stdlib_allow=("*",), external_allow=("*",),
                        pyodide=PyodideConfig(kill_grace_s=PYODIDE_GRACE_S))
    with Sandbox(config, runtimes=("pyodide",)) as sb:
        one = OneRuntime(sb, "pyodide")
        assert one.wait_ready()
        yield one


def _same_worker(one: OneRuntime, first: str, second: str):
    """Run two snippets back to back; the second's result (both on the one worker)."""
    r = one.run(first)
    assert r.status is Status.OK, r.message
    return one.run(second)


def test_cant_leak_builtins_and_module_attributes(one_worker):
    """As in the python runtime's test: whatever a task sets is gone for the next."""
    r = _same_worker(
        one_worker,
        "import builtins, json\nbuiltins.LEAKED = 'yes'\njson.LEAKED = 'yes'\n"
        "json.dumps = lambda *a, **k: 'poisoned'\nreturn 'polluted'",
        "import builtins, json\n"
        "return [hasattr(builtins, 'LEAKED'), hasattr(json, 'LEAKED'), json.dumps(1)]")
    assert r.status is Status.OK
    assert r.value == [False, False, "1"]


def test_cant_leak_class_attributes(one_worker):
    r = _same_worker(
        one_worker,
        "import json\njson.JSONEncoder.default = lambda self, o: 'poisoned'\nreturn 1",
        "import json\nreturn json.dumps(object(), default=None) if False else "
        "hasattr(json.JSONEncoder.default, '__name__') and json.JSONEncoder.default.__name__")
    assert r.status is Status.OK
    assert r.value == "default"


def test_cant_leak_a_class_changed_behind_the_audit_hook(one_worker):
    """gc.get_referents reaches a class's namespace without an audit event: all are checked."""
    r = _same_worker(
        one_worker,
        "import gc, json\ngc.get_referents(json.JSONDecoder.__dict__)[0]['LEAK'] = 1\nreturn 1",
        "import json\nreturn hasattr(json.JSONDecoder, 'LEAK')")
    assert r.status is Status.OK
    assert r.value is False


@pytest.mark.parametrize("capability, poison", [
    ("rewrite_a_functions_code",
     "import json\ndef forged(*a, **k):\n    return 'forged'\njson.dumps.__code__ = forged.__code__"),
    ("rewrite_a_functions_keyword_defaults",
     "import json\njson.dumps.__kwdefaults__ = {**json.dumps.__kwdefaults__, 'indent': 4}"),
    ("edit_a_functions_keyword_defaults_in_place",
     "import json\njson.dumps.__kwdefaults__['separators'] = (';', '=')"),
    ("rewrite_a_methods_defaults",
     "import json\njson.JSONEncoder.__init__.__kwdefaults__ = None\n"
     "import textwrap\ntextwrap.fill.__defaults__ = (3,)"),
])
def test_cant_leak_a_rewritten_function(one_worker, capability, poison):
    """A function's code and defaults are put back after each task (runtimes/pyodide/guest.py)."""
    r = _same_worker(one_worker, poison + "\nreturn 1",
                     "import json, textwrap\n"
                     "return [json.dumps({'approved': False}), textwrap.fill('aaa bbb')]")
    assert (r.status, r.value) == (Status.OK, ['{"approved": false}', "aaa bbb"])


def test_cant_leak_imported_modules(one_worker):
    r = _same_worker(
        one_worker,
        "import sys, types, colorsys\nsys.modules['planted'] = types.ModuleType('planted')\n"
        "colorsys.LEAK = 1\nreturn 1",
        "import sys\nreturn ['planted' in sys.modules, 'colorsys' in sys.modules]")
    assert r.status is Status.OK
    assert r.value == [False, False]


def test_cant_leak_files(one_worker):
    r = _same_worker(
        one_worker,
        "open('/tmp/leak', 'w').write('secret')\nreturn 1",
        "import os\nreturn os.listdir('/tmp')")
    assert r.status is Status.OK
    assert r.value == []


def test_cant_leak_environment_cwd_and_import_path(one_worker):
    r = _same_worker(
        one_worker,
        "import os, sys\nos.environ['LEAK'] = '1'\nos.chdir('/tmp')\nsys.path.append('/extra')\n"
        "sys.setrecursionlimit(50)\nreturn 1",
        "import os, sys\nreturn ['LEAK' in os.environ, os.getcwd(), '/extra' in sys.path, "
        "sys.getrecursionlimit() > 50]")
    assert r.status is Status.OK
    assert r.value == [False, "/", False, True]


def test_cant_install_an_audit_hook_to_watch_later_tasks(one_worker):
    r = one_worker.run("import sys\nseen = []\nsys.addaudithook(lambda e, a: seen.append(e))\n"
                       "open('/dev/null').close()\nreturn len(seen)")
    assert r.status is Status.OK
    assert r.value == 0


def test_what_survives_in_place_changes_inside_loaded_modules(one_worker):
    """What can leak, by design of a warm worker (README): a change made inside an object
    that a module loaded before the task holds (here json's __all__ list) is not undone."""
    r = _same_worker(
        one_worker,
        "import json\njson.__all__.append('LEAKED')\nreturn 1",
        "import json\nreturn 'LEAKED' in json.__all__")
    assert r.status is Status.OK
    assert r.value is True


def test_what_survives_codec_search_functions(one_worker):
    """A codec search function lives in the interpreter's C state: it survives (README)."""
    r = _same_worker(
        one_worker,
        "import codecs\ncodecs.register(lambda name: codecs.lookup('utf-8') if name == 'leak' "
        "else None)\nreturn 1",
        "import codecs\nreturn codecs.lookup('leak').name")
    assert r.status is Status.OK
    assert r.value == "utf-8"


def test_a_worker_retires_after_a_timeout(one_worker):
    """Its state after an interrupt is not trusted: the next task meets a fresh worker."""
    one_worker.run("import builtins\nbuiltins.__dict__.setdefault('MARK', [])\nreturn 1")
    r = one_worker.run("import json\njson.__all__.append('BEFORE')\nwhile True: pass", timeout_s=0.3)
    assert r.status is Status.TIMEOUT
    r = one_worker.run("import json\nreturn 'BEFORE' in json.__all__")
    assert r.status is Status.OK
    assert r.value is False


def test_cant_see_what_another_tenant_left_in_its_worker(one_worker):
    """A worker serves one reuse key only: what survives in a worker (an in-place change
    inside a loaded module, above) never reaches another tenant's task."""
    r = one_worker.run("import json\njson.__all__.append('TENANT-A')\nreturn 1", reuse_key="a")
    assert r.status is Status.OK
    r = one_worker.run("import json\nreturn 'TENANT-A' in json.__all__", reuse_key="b")
    assert r.status is Status.OK
    assert r.value is False


def test_cant_see_what_another_lane_left_in_its_worker_through_a_broker():
    """Through a broker the key is "<lane>/<reuse key>": two lanes never share a worker."""
    from sandbox import Client

    config = PoolConfig(size=1, stdlib_allow=("*",), external_allow=("*",),
                        pyodide=PyodideConfig(kill_grace_s=PYODIDE_GRACE_S))
    with Client(pool=config, runtimes=("pyodide",)) as client:
        mark = "import json\njson.__all__.append('LANE-A')\nreturn 1"
        assert client.run("pyodide", mark, lane="a", timeout_s=30).status is Status.OK
        seen = "import json\nreturn 'LANE-A' in json.__all__"
        r = client.run("pyodide", seen, lane="a", timeout_s=30)
        assert (r.status, r.value) == (Status.OK, True)  # its own lane's worker: survives
        r = client.run("pyodide", seen, lane="b", timeout_s=30)
        assert (r.status, r.value) == (Status.OK, False)
