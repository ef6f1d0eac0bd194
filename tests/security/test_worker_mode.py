"""Worker mode (isolation="worker"): what a task can and cannot learn about the earlier tasks
of its worker, each outcome asserted. The README's "Worker mode" section says the same."""

from __future__ import annotations

import pytest

from sandbox import PoolConfig, Sandbox, Status

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


def test_can_see_what_an_earlier_task_left_inside_a_module_cache(one):
    """What leaks, stated in the README: items put into module-level containers (here re's
    pattern cache) stay for the next task of the same worker (the same tenant only)."""
    first = worker(one, PID + "import re\nre.compile(r'secret-\\d{7}')\nreturn pid")
    second = worker(one, PID + "import re\nreturn [pid, any('secret' in str(k) for k in re._cache)]")
    assert second == [first, True]


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
