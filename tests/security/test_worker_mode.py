"""Worker mode (isolation="worker"): what a task can and cannot learn about the earlier tasks
of its worker, each outcome asserted. The README's "Worker mode" section says the same."""

from __future__ import annotations

import pytest

from sandbox import PoolConfig, Sandbox, Status
from tests.integration.service_helpers import stop_process

PID = "import os\npid = os.getpid()\n"


@pytest.fixture(scope="module")
def one():
    """One child per runtime, so consecutive tasks of a key land on the same worker."""
    config = PoolConfig(size=1, stdlib_allow=("*",), external_allow=("*",))
    with Sandbox(config, runtimes=("python", "javascript")) as sb:
        yield sb


def worker(sb, code, key="tenant-a", runtime="python", **options):
    r = sb.run(runtime, code, isolation="worker", reuse_key=key, **options)
    assert r.status is Status.OK, r.message
    return r.value


def test_a_worker_is_reused_by_its_key(one):
    pids = [worker(one, PID + "return pid") for _ in range(3)]
    assert len(set(pids)) == 1


def test_a_worker_is_reused_where_library_imports_are_checked():
    """n8n's default (N8N_RUNNERS_ALLOW_TRANSITIVE_IMPORTS unset): each task checks its
    packages' importlib.import_module calls, which must leave nothing behind that retires the
    worker (it rebound importlib's attribute, so every task was a fresh process's)."""
    config = PoolConfig(size=1, stdlib_allow=("*",), external_allow=("*",),
                        allow_transitive_imports=False)
    with Sandbox(config, runtimes=("python",)) as sb:
        pids = [worker(sb, PID + "return pid") for _ in range(3)]
    assert len(set(pids)) == 1


@pytest.mark.parametrize("files_mb", [0, 8], ids=["plain", "with-task-directories"])
def test_a_worker_arms_with_the_zygotes_plan(files_mb):
    """What a worker compares is planned once in the zygote; a worker that had to plan again
    (a module imported or a class made between the zygote's survey and its first task) would
    pay about 5 ms more to start, and nothing else would show it. Its own pool: a worker
    that already served tasks has armed. A task directory is made with ctypes' classes,
    which a child must not make for itself."""
    config = PoolConfig(size=1, stdlib_allow=("*",), external_allow=("*",), files_mb=files_mb)
    with Sandbox(config, runtimes=("python",)) as sb:
        assert worker(sb, "from runtimes.python import leftovers\nreturn leftovers.from_plan")


def test_cant_see_an_earlier_tasks_globals(one):
    worker(one, PID + "global secret\nsecret = 'a'\nreturn pid")
    assert worker(one, "return 'secret' in globals()") is False


@pytest.mark.parametrize("poison, probe", [
    ("import json\njson.LEAKED = 'yes'", "import json\nreturn hasattr(json, 'LEAKED')"),
    ("import json\njson.dumps = lambda *a, **k: 'poisoned'", "import json\nreturn json.dumps(1) != '1'"),
    ("import builtins\nbuiltins.LEAKED = 'yes'", "import builtins\nreturn hasattr(builtins, 'LEAKED')"),
    ("import json\njson.JSONEncoder.item_separator = ';'",
     "import json\nreturn json.JSONEncoder.item_separator != ', '"),
])
def test_cant_leave_module_or_class_changes_for_the_next_task(one, poison, probe):
    """The worker that was changed retires (runtimes/python/leftovers.py): the next task runs
    in a fresh one and sees nothing."""
    before = worker(one, PID + "return pid")
    worker(one, poison + "\nreturn 1")
    assert worker(one, probe) is False
    assert worker(one, PID + "return pid") != before


def test_cant_leave_entries_in_a_module_cache_for_the_next_task(one):
    """re's pattern cache is emptied after every task of a worker (a cache: emptying it is
    always safe), so the worker stays and the next task finds nothing of the earlier one."""
    first = worker(one, PID + "import re\nre.compile(r'secret-\\d{7}')\nreturn pid")
    second = worker(one, PID + "import re\nreturn [pid, any('secret' in str(k) for k in re._cache)]")
    assert second == [first, False]


def test_cant_plant_a_compiled_pattern_for_the_next_task(one):
    first = worker(one, PID + "import re\n"
                   "re._cache[(str, 'approved', 0)] = re.compile('forged')\nreturn pid")
    second = worker(one, PID + "import re\nreturn [pid, re.compile('approved').pattern]")
    assert second == [first, "approved"]


def test_another_tenant_never_gets_that_worker(one):
    first = worker(one, PID + "import re\nre.compile(r'other-tenant-\\d{5}')\nreturn pid")
    seen = worker(one, PID + "import re\nreturn [pid, any('other-tenant' in str(k) for k in re._cache)]",
                  key="tenant-b")
    assert seen[0] != first and seen[1] is False


def test_a_worker_retires_after_a_failure(one):
    before = worker(one, PID + "return pid")
    r = one.run("python", "while True: pass", isolation="worker", reuse_key="tenant-a", timeout_s=0.3)
    assert r.status is Status.TIMEOUT
    assert worker(one, PID + "return pid") != before


def test_a_fresh_process_task_never_runs_in_a_worker(one):
    worker_pid = worker(one, PID + "return pid")
    r = one.run("python", PID + "return pid")
    assert r.status is Status.OK and r.value != worker_pid


def test_javascript_tasks_of_a_worker_get_a_fresh_engine_each(one):
    worker(one, "globalThis.leak = 'a'; Object.prototype.polluted = 1; return 1", runtime="javascript")
    assert worker(one, "return [typeof leak, ({}).polluted === undefined]", runtime="javascript") == [
        "undefined", True]


def test_worker_mode_is_refused_with_a_reuse_key_but_no_worker_isolation(one):
    r = one.run("python", "return 1", reuse_key="x")
    assert (r.status, r.message) == (Status.REJECTED, 'reuse_key applies to isolation="worker"')


def test_through_the_broker_a_worker_serves_one_lane_only():
    from sandbox.client import Client

    config = PoolConfig(size=2, stdlib_allow=("*",))
    with Client(pool=config, runtimes=("python",)) as client:
        def pid(lane: str) -> int:
            r = client.run("python", PID + "return pid", isolation="worker", lane=lane)
            assert r.status is Status.OK, r.message
            return r.value

        eval_pids = {pid("eval") for _ in range(3)}
        other = pid("other")
        assert len(eval_pids) == 1 and other not in eval_pids


# Each probe: a task changes state the interpreter keeps (the capability named), then the next
# task of the same key asks what a pristine worker would answer. The worker that was changed
# retired (runtimes/python/leftovers.py), so the next task sees the pristine answer.
APPROVAL = "import json\nreturn json.dumps({'approved': False})"
# The worker's own check, found as a snippet can find it: up the frames of its own traceback to
# the child's loop, where it is a local; then its defaults by name (``names``, ``given``).
FIND_CHECK = (
    "try:\n    raise ValueError\nexcept ValueError as e:\n    f = e.__traceback__.tb_frame\n"
    "check = None\nwhile f is not None and check is None:\n"
    "    check = f.f_locals.get('check')\n    f = f.f_back\n"
    "code = check.__code__\nnames = code.co_varnames[:code.co_argcount]\n"
    "given = dict(zip(names[len(names) - len(check.__defaults__):], check.__defaults__))\n")
FORGE_DUMPS = "import json\njson.dumps = lambda *a, **k: '{\"approved\": true}'\n"
PROBES = {
    "rewrite_a_functions_code": (
        "import json\ndef forged(*a, **k):\n    return '{\"approved\": true}'\n"
        "json.dumps.__code__ = forged.__code__", APPROVAL),
    "rewrite_a_functions_keyword_defaults": (
        "import json\njson.dumps.__kwdefaults__ = {**json.dumps.__kwdefaults__, 'indent': 4}",
        APPROVAL),
    "edit_a_functions_keyword_defaults_in_place": (
        "import json\njson.dumps.__kwdefaults__['separators'] = (';', '=')", APPROVAL),
    "rewrite_a_functions_defaults": (
        "import textwrap\ntextwrap.fill.__defaults__ = (3,)",
        "import json, textwrap\nreturn json.dumps(textwrap.fill('aaa bbb ccc'))"),
    "rewrite_a_closure_cell": (
        "import os\nos.fsencode.__closure__[0].cell_contents = 'latin-1'",
        "import os\nreturn os.fsencode('\\u00e9')"),
    "lower_a_resource_limit": (
        "import resource\nsoft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (soft - 1, hard))",
        "import resource\nreturn resource.getrlimit(resource.RLIMIT_NOFILE)[0]"),
    "change_a_module_level_instance": (
        "import json\njson._default_encoder.item_separator = ';'", APPROVAL),
    "replace_a_module_in_sys_modules": (
        "import sys, types\nfake = types.ModuleType('json')\n"
        "fake.dumps = lambda *a, **k: '{\"approved\": true}'\nsys.modules['json'] = fake",
        APPROVAL),
    # the same module object put back, at another place: sys.modules's own tag moved, so its
    # items are compared one by one again (leftovers part 2) and the order differs
    "move_a_module_in_sys_modules": (
        "import sys\nmodule = sys.modules.pop('json')\nsys.modules['json'] = module", APPROVAL),
    "install_a_trace_hook": (
        "import sys\ndef spy(frame, event, arg):\n"
        "    if frame.f_code.co_name == 'snippet' and event == 'call':\n"
        "        frame.f_locals['data'] = 'watched'\n    return spy\nsys.settrace(spy)",
        "return data"),
    "install_a_profile_hook": (
        "import sys\ndef spy(frame, event, arg):\n"
        "    if frame.f_code.co_name == 'snippet' and event == 'call':\n"
        "        frame.f_locals['data'] = 'watched'\nsys.setprofile(spy)",
        "return data"),
    "install_an_import_spy_on_meta_path": (
        "import sys, types\nclass Spy:\n    @staticmethod\n    def find_spec(name, path, target=None):\n"
        "        if name == 'colorsys':\n"
        "            import importlib.machinery as m\n"
        "            return m.ModuleSpec(name, Spy)\n"
        "    @staticmethod\n    def create_module(spec):\n"
        "        mod = types.ModuleType(spec.name)\n        mod.forged = True\n        return mod\n"
        "    @staticmethod\n    def exec_module(mod):\n        pass\n"
        "sys.meta_path.insert(0, Spy)",
        "import colorsys\nreturn getattr(colorsys, 'forged', False)"),
    "add_a_gc_callback": (
        "import gc, json\ndef spy(phase, info):\n"
        "    json.dumps = lambda *a, **k: '{\"approved\": true}'\ngc.callbacks.append(spy)",
        "import gc\ngc.collect()\n" + APPROVAL),
    "add_an_audit_hook": (
        "import sys\ndef spy(event, args):\n"
        "    if event == 'exec':\n        raise RuntimeError('watched')\n"
        "try:\n    sys.addaudithook(spy)\nexcept Exception:\n    pass",
        "return data"),
    "change_the_decimal_context": (
        "import decimal\ndecimal.getcontext().prec = 3",
        "import decimal\nreturn str(decimal.Decimal(1) / decimal.Decimal(3))"),
    "replace_the_decimal_context": (
        "import decimal\ndecimal.setcontext(decimal.Context(prec=2))",
        "import decimal\nreturn str(decimal.Decimal(1) / decimal.Decimal(3))"),
    "lower_the_recursion_limit": (
        "import sys\nsys.setrecursionlimit(80)", "import sys\nreturn sys.getrecursionlimit()"),
    "change_the_int_digit_limit": (
        "import sys\nsys.set_int_max_str_digits(640)",
        "import sys\nreturn sys.get_int_max_str_digits()"),
    "change_os_environ": (
        "import os\nos.environ['PLANTED'] = 'yes'", "import os\nreturn os.environ.get('PLANTED')"),
    "change_the_c_environment": (
        "import os\nos.putenv('TZ', 'Asia/Tokyo')", "import time\ntime.tzset()\nreturn time.timezone"),
    "install_a_signal_handler": (
        "import signal\nsignal.signal(signal.SIGALRM, lambda *a: None)",
        "import signal\nreturn signal.getsignal(signal.SIGALRM) == signal.SIG_DFL"),
    "arm_an_interval_timer": (
        "import signal\nsignal.signal(signal.SIGVTALRM, signal.SIG_IGN)\n"
        "signal.setitimer(signal.ITIMER_VIRTUAL, 3600)",
        "import signal\nreturn signal.getitimer(signal.ITIMER_VIRTUAL)"),
    "change_the_warnings_filters": (
        "import warnings\nwarnings.simplefilter('error')",
        "import warnings\nwarnings.warn('harmless')\nreturn 'warned'"),
    "disable_the_garbage_collector": ("import gc\ngc.disable()", "import gc\nreturn gc.isenabled()"),
    "change_the_gc_thresholds": (
        "import gc\ngc.set_threshold(1, 1, 1)", "import gc\nreturn gc.get_threshold()"),
    "register_a_type_with_an_abc": (
        "import collections.abc\ncollections.abc.Mapping.register(int)",
        "import collections.abc\nreturn isinstance(1, collections.abc.Mapping)"),
    "change_a_class_attribute": (
        "import json\njson.JSONEncoder.item_separator = ';'", APPROVAL),
    # a list's or a set's storage that did not move, with other items in it
    "replace_an_item_of_a_modules_list_in_place": (
        "import json\njson.__all__[0] = 'forged'", "import json\nreturn json.__all__[0]"),
    "swap_a_member_of_a_modules_set": (
        "import hashlib\nhashlib.algorithms_guaranteed.discard('md5')\n"
        "hashlib.algorithms_guaranteed.add('forged')",
        "import hashlib\nreturn sorted(hashlib.algorithms_guaranteed)"),
    "change_the_working_directory": ("import os\nos.chdir('/usr')", "import os\nreturn os.getcwd()"),
    # the check itself, and what it reads with, reached through frames
    "rewrite_the_workers_check": (
        FIND_CHECK + "check.__code__ = (lambda *a, **k: False).__code__\n"
        "check.__defaults__ = check.__kwdefaults__ = None\n" + FORGE_DUMPS, APPROVAL),
    "rewrite_a_reader_of_the_check": (
        FIND_CHECK + "tags, then = given['_tags'], given['_pristine'][0]\n"
        "if hasattr(tags, '__setstate__'):\n"
        "    tags.__setstate__(((lambda: then), (), {}, None))\n"
        "else:\n"
        "    tags.__code__ = (lambda *a, _v=None: _v).__code__\n"
        "    tags.__kwdefaults__ = {'_v': then}\n" + FORGE_DUMPS, APPROVAL),
    "write_memory_through_the_checks_view": (
        # json's namespace changed, then its version tag written back as it read before
        FIND_CHECK + "import json\nview, at = given['_words'], (id(vars(json)) + 24) >> 3\n"
        "then = view[at]\n" + FORGE_DUMPS + "try:\n    view[at] = then\n"
        "except TypeError:\n    pass\n", APPROVAL),
    # an instance's class is in no dict the check reads
    "swap_the_class_of_a_modules_object": (
        "import json\nclass Forged(json.JSONEncoder):\n    def encode(self, o):\n"
        "        return '{\"approved\": true}'\njson._default_encoder.__class__ = Forged",
        APPROVAL),
    # a slot (``__slots__``) of an object a module holds is in no dict either
    "change_a_slot_of_a_modules_object": (
        "import typing\nobject.__setattr__(typing.Optional, '_getitem', lambda self, p: 'forged')",
        "import typing\nreturn str(typing.Optional[int])"),
    "leave_a_finalizer_for_the_next_task": (
        "import json\nclass Bomb:\n    def __del__(self):\n"
        "        json.dumps = lambda *a, **k: '{\"approved\": true}'\n"
        "b = Bomb()\nb.cycle = b", APPROVAL),
}


@pytest.fixture(scope="module")
def pristine(one):
    """What a fresh process answers each probe: the default mode's answer."""
    answers = {}
    for name, (_, probe) in PROBES.items():
        r = one.run("python", probe, data="mine")
        assert r.status is Status.OK, (name, r.message)
        answers[name] = r.value
    return answers


@pytest.mark.parametrize("capability", PROBES)
def test_cant_persist_to_the_next_task_of_the_same_worker(one, pristine, capability):
    poison, probe = PROBES[capability]
    key = f"probe-{capability}"
    before = worker(one, PID + "return pid", key=key)
    r = one.run("python", poison + "\nreturn 1", isolation="worker", reuse_key=key)
    assert r.status is Status.OK, r.message
    after = one.run("python", probe, data="mine", isolation="worker", reuse_key=key)
    assert (after.status, after.value) == (Status.OK, pristine[capability])
    assert worker(one, PID + "return pid", key=key) != before


def test_cant_predict_the_random_stream_from_a_seed_it_set(one):
    """random is reseeded from the kernel after each task of a worker (its C state only, so
    the worker stays): a seed set by one task does not carry into the next."""
    before = worker(one, PID + "import random\nrandom.seed(42)\nreturn pid", key="seeded")
    after = worker(one, PID + "import random\n"
                   "return [pid, random.random() == random.Random(42).random()]", key="seeded")
    assert after == [before, False]


# JavaScript: every task of a worker runs in a fresh QuickJS runtime and context
# (runtimes/javascript/executor.py, prepare_next), with its own heap; the process's Python
# state is out of a snippet's reach. What one task poisons, the next never sees.
JS_PROBES = {
    "poison_object_prototype": (
        "Object.prototype.toJSON = () => 'forged'; Object.prototype.approved = true",
        "return [JSON.stringify({approved: false}), ({}).approved === undefined]",
        ['{"approved":false}', True]),
    "poison_array_prototype": (
        "Array.prototype.map = function () { return ['forged'] }",
        "return [1, 2].map((x) => x * 2)", [2, 4]),
    "replace_json": (
        "JSON.stringify = () => '{\"approved\":true}'",
        "return JSON.stringify({approved: false})", '{"approved":false}'),
    "define_a_global": (
        "Object.defineProperty(globalThis, 'data', {get() { return 'forged' }, configurable: false})",
        "return [typeof globalThis.data, data]", ["undefined", "mine"]),
    # Math.random is the sandbox's own (seeded per task), not the engine's: what a task set
    # in its place must not be what the next task calls
    "replace_math_random": ("Math.random = () => 0.5",
                            "return [Math.random(), Math.random()].every(x => x !== 0.5)", True),
    "register_a_symbol": ("globalThis[Symbol.for('planted')] = 'forged'",
                          "return globalThis[Symbol.for('planted')] === undefined", True),
    "replace_console_log": ("console.log = () => {}", "console.log('seen'); return 1", 1),
    "leave_a_pending_job": (
        "Promise.resolve().then(() => { globalThis.late = 'forged' }); "
        "Object.prototype.late = 'forged'",
        "await null; return [typeof globalThis.late, ({}).late === undefined]",
        ["undefined", True]),
}


@pytest.mark.parametrize("capability", JS_PROBES)
def test_javascript_cant_persist_to_the_next_task_of_the_same_worker(one, capability):
    poison, probe, pristine = JS_PROBES[capability]
    key = f"js-probe-{capability}"
    assert worker(one, poison + "\nreturn 1", key=key, runtime="javascript") == 1
    r = one.run("javascript", probe, data="mine", isolation="worker", reuse_key=key)
    assert (r.status, r.value) == (Status.OK, pristine)


@pytest.mark.parametrize("capability, code", [
    ("set_and_clear_a_trace_hook", "import sys\nsys.settrace(lambda *a: None)\nsys.settrace(None)"),
    ("read_memory_through_ctypes", "import ctypes\nctypes.string_at(id(1), 8)"),
    ("walk_the_collectors_objects", "import gc\ngc.get_objects()"),
    ("set_a_resource_limit_and_put_it_back",
     "import resource\nsoft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
     "resource.setrlimit(resource.RLIMIT_NOFILE, (soft - 1, hard))\n"
     "resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))"),
])
def test_cant_keep_a_worker_after_tripping_the_wire_even_when_nothing_differs_after(
        one, capability, code):
    """The tripwire marks the process in the kernel when the interpreter announces the event
    (runtimes/python/leftovers.py, part 1); the host reads the mark from outside the process
    (sandbox/worker.py) and retires the worker, though nothing differs once the task is over."""
    key = f"wire-{capability}"
    before = worker(one, PID + "return pid", key=key)
    assert worker(one, code + "\nreturn 1", key=key) == 1
    assert worker(one, PID + "return pid", key=key) != before


def test_cant_take_back_the_tripwires_mark(one):
    """The mark is a hard limit lowered to 0: raising it needs CAP_SYS_RESOURCE in the initial
    user namespace, which a jailed process never has."""
    before = worker(one, PID + "return pid", key="mark")
    raised = worker(one, "import resource, sys\nsys.settrace(None)\n"
                    "try:\n    resource.setrlimit(resource.RLIMIT_MSGQUEUE, (1, 1))\n"
                    "except (ValueError, OSError) as exc:\n    return type(exc).__name__\n"
                    "return 'raised'", key="mark")
    assert raised == "ValueError"
    assert worker(one, PID + "return pid", key="mark") != before


# -- across principals, through `sandbox serve` ------------------------------------------------
# The daemon and its clients as deployed: two CURVE principals over tcp (two keys), and two
# ipc connections (two Client objects). Each names the same lane and reuse key (or none, so
# "default"); the broker scopes every key by the principal the transport names
# (broker/server.py), so a task of one never runs in the other's warm worker.

# A mark a worker keeps on purpose: an attribute set on a function is one of the changes the
# worker check does not see (README, "Worker mode"), so it stays for the worker's next task.
# What one principal's tasks see of it shows whose worker they ran in.
MARK = ("import json\nseen = list(getattr(json.dumps, 'marks', ()))\n"
        "json.dumps.marks = seen + [data]\nreturn seen")


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module", params=["curve-tcp", "ipc"])
def served(request, tmp_path_factory):
    """A real `sandbox serve` and two clients of it, each a principal of its own."""
    import subprocess
    import sys

    from sandbox.client import Client

    directory = tmp_path_factory.mktemp("serve")
    argv = [sys.executable, "-m", "sandbox", "serve", "--http", "", "--runners", "1",
            "--slots", "2", "--runtimes", "python", "--stdlib-allow", "*"]
    if request.param == "curve-tcp":
        keys = str(directory / "keys")
        made = subprocess.run([sys.executable, "-m", "sandbox", "keys", keys, "--client", "alice",
                               "--client", "bob"], capture_output=True, text=True, timeout=60)
        assert made.returncode == 0, made.stderr
        endpoint = f"tcp://127.0.0.1:{_free_port()}"
        argv += ["--bind", endpoint, "--curve-dir", keys,
                 "--runner-bind", f"ipc://{directory}/runners.sock"]
        options = ({"curve_dir": keys, "key": "alice"}, {"curve_dir": keys, "key": "bob"})
    else:
        endpoint = f"ipc://{directory}/s.sock"
        argv += ["--bind", endpoint]
        options = ({}, {})
    daemon = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    try:
        with Client(endpoint, queue_timeout_s=60, **options[0]) as a, \
                Client(endpoint, queue_timeout_s=60, **options[1]) as b:
            up = a.run("python", "return 1")
            assert up.status is Status.OK, up.message
            yield a, b
    finally:
        stop_process(daemon, 60)


@pytest.mark.parametrize("lane, reuse_key", [("shared-lane", "shared-key"), (None, None)],
                         ids=["same-lane-and-key", "default"])
def test_cant_see_another_principals_worker_through_serve(served, lane, reuse_key):
    """Alice's mark stays in her worker (her next task sees it) and Bob, naming the same lane
    and key, never sees it: his task ran in a worker of his own."""
    alice, bob = served
    options = {"isolation": "worker", **({"lane": lane} if lane else {}),
               **({"reuse_key": reuse_key} if reuse_key else {})}

    def mark(client, data: str) -> object:
        r = client.run("python", MARK, data=data, timeout_s=10, **options)
        assert r.status is Status.OK, r.message
        return r.value

    seen = (mark(alice, "a1"), mark(alice, "a2"), mark(bob, "b1"), mark(alice, "a3"))
    assert seen == ([], ["a1"], [], ["a1", "a2"])


@pytest.fixture(scope="module")
def served_pristine(served):
    """What a fresh process of the daemon answers each probe."""
    alice, _ = served
    answers = {}
    for name, (_, probe) in PROBES.items():
        r = alice.run("python", probe, data="mine", timeout_s=10)
        assert r.status is Status.OK, (name, r.message)
        answers[name] = r.value
    return answers


@pytest.mark.parametrize("capability", PROBES)
def test_cant_change_another_principals_results_through_serve(served, served_pristine,
                                                              capability):
    """One principal changes what its worker holds; the other, naming the same lane and
    key, gets the answer a fresh process gives."""
    alice, bob = served
    poison, probe = PROBES[capability]
    options = {"isolation": "worker", "lane": "probes", "reuse_key": f"probe-{capability}",
               "timeout_s": 10}
    planted = alice.run("python", poison + "\nreturn 1", **options)
    assert planted.status is Status.OK, planted.message
    after = bob.run("python", probe, data="mine", **options)
    assert (after.status, after.value) == (Status.OK, served_pristine[capability])


# A task runs in its worker's process: whatever the worker's own loop can do with the channel
# to its host, the task can (its traceback's frames lead to the loop, and the descriptor is
# the process's). So it can send results of its own making and read what the host sends next:
# within one principal's worker that is documented (README, "Worker mode"); it never reaches
# another principal, whose tasks run in workers of their own.
FORGE_ON_THE_CHANNEL = (
    "try:\n    raise ValueError\nexcept ValueError as e:\n    f = e.__traceback__.tb_frame\n"
    "codec = None\nwhile f is not None and 'channel' not in f.f_locals:\n"
    "    codec = f.f_globals.get('codec', codec)\n    f = f.f_back\n"
    "loop, names = f.f_locals, f.f_globals\n"
    "for value in ('forged for this task', 'forged for the next'):\n"
    "    names['framing'].send_frame(loop['channel'], names['outcome'].encode(\n"
    "        names['Status'].OK, 'ok', value=codec.encode(value)))\n"
    "return 'genuine'\n")


def test_cant_answer_another_principals_tasks_through_the_workers_channel(served):
    alice, bob = served
    options = {"isolation": "worker", "lane": "channel", "reuse_key": "channel",
               "timeout_s": 10}
    forged = alice.run("python", FORGE_ON_THE_CHANNEL, **options)
    assert (forged.status, forged.value) == (Status.OK, "forged for this task")
    answer = bob.run("python", "return 'bob'", **options)
    assert (answer.status, answer.value) == (Status.OK, "bob")
