"""The local API and the pools against the in-package fake jail (no root): every way a
child can end, jail deaths and restarts, cancellation, capacity, close. The same behaviours
through real jails are in tests/integration and tests/security."""

from __future__ import annotations

import threading
import time

import pytest

from runtimes.outcome import Status
from sandbox import PoolConfig, Sandbox
from sandbox.jail import fake as fakejail


def fake(size: int = 2, **config) -> Sandbox:
    return Sandbox(PoolConfig(size=size, cgroup="off", **config), launcher=fakejail.launch)


@pytest.fixture(scope="module")
def sb():
    with fake() as sandbox:
        yield sandbox


@pytest.mark.parametrize("script, status, message", [
    ("ok 42", Status.OK, "ok"),
    ("error ValueError boom", Status.ERROR, "ValueError: boom"),
    ("sleep", Status.TIMEOUT, "exceeded the wall-clock timeout of 0.3 s"),
    ("spin", Status.TIMEOUT, "exceeded the wall-clock timeout of 0.3 s"),
    ("sigsys", Status.VIOLATION, "killed for a forbidden operation (seccomp: SIGSYS): os.fork"),
    ("oom", Status.MEMORY_LIMIT, "killed by the kernel for exceeding the jail's memory cap"),
    ("exit 3", Status.CRASHED, "the sandboxed process exited with code 3 without a result"),
    ("closefds", Status.CRASHED,
     "the snippet closed its result channel without a result; the runner killed it"),
    ("garbage", Status.CRASHED, "the sandboxed process sent a malformed result"),
    ("huge 999999999", Status.OUTPUT_LIMIT,
     "result of 999999999 bytes exceeds the limit of 17891328 bytes"),
])
def test_every_way_a_child_ends_has_its_status_and_message(sb, script, status, message):
    r = sb.run("python", script, timeout_s=0.3)
    assert (r.status, r.message) == (status, message)


def test_the_next_task_runs_after_each_failure(sb):
    for script in ("sigsys", "oom", "closefds", "garbage", "exit 1"):
        sb.run("python", script, timeout_s=0.3)
        assert sb.run("python", "ok 1").value == 1


def test_a_jail_that_dies_mid_task_says_so_and_is_restarted():
    with fake() as sb:
        r = sb.run("python", "vanish", timeout_s=2)
        assert r.status is Status.CRASHED
        assert r.message.startswith("the python jail died while running the task: "
                                    "the fake jail exited with code 137")
        assert sb.run("python", "ok 7", timeout_s=2).value == 7


def test_a_killed_jail_process_ends_its_tasks_naming_the_kill():
    with fake(size=1) as sb:
        jail_pid = sb.snapshot()["python"]["jail_pid"]
        results = []
        t = threading.Thread(target=lambda: results.append(sb.run("python", "sleep", timeout_s=5)))
        t.start()
        time.sleep(0.3)
        import os
        import signal

        os.kill(jail_pid, signal.SIGKILL)
        t.join()
        assert (results[0].status, results[0].message) == (
            Status.CRASHED, "the python jail died while running the task: "
                            "the fake jail was killed by SIGKILL")
        assert sb.run("python", "ok 1").value == 1


def test_a_task_that_finds_no_idle_child_in_time_is_rejected():
    with fake(size=1, acquire_timeout_s=0.3) as sb:
        t = threading.Thread(target=sb.run, args=("python", "sleep"), kwargs={"timeout_s": 2})
        t.start()
        time.sleep(0.1)
        r = sb.run("python", "ok 1")
        t.join()
        assert (r.status, r.message) == (Status.REJECTED, "no idle python sandbox within 0.3 s "
                                                          "(pool of 1, all busy)")


def test_close_ends_a_running_task_as_crashed():
    sb = fake()
    results = []
    t = threading.Thread(target=lambda: results.append(sb.run("python", "sleep", timeout_s=5)))
    t.start()
    time.sleep(0.3)
    sb.close()
    t.join()
    assert (results[0].status, results[0].message) == (
        Status.CRASHED, "the sandbox was closed while the task ran")


def test_back_to_back_tasks_survive_channel_numbers_being_reused():
    """Each finished child's channel is closed and its replacement's channel gets the same
    number: a task must never be matched to the wrong channel (or dropped) because of it."""
    with fake(size=1, recycle_delay_ms=0) as sb:
        values = [sb.run("python", f"ok {i}", timeout_s=2).value for i in range(60)]
        assert values == list(range(60))


def test_many_threads_each_get_their_own_answers():
    with fake(size=2) as sb:
        got: dict[int, list] = {}

        def worker(n: int) -> None:
            got[n] = [sb.run("python", f"ok {n * 1000 + i}", timeout_s=5).value for i in range(25)]

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert got == {n: [n * 1000 + i for i in range(25)] for n in range(4)}


def test_a_lone_surrogate_in_the_code_is_rejected_and_leaks_nothing():
    with fake(size=2) as sb:
        for _ in range(3):
            r = sb.run("python", "return '\ud800'")
            assert r.status is Status.REJECTED
            assert r.message == "code is not valid Unicode text (surrogates not allowed at position 8)"
        assert [sb.run("python", "ok 1").value for _ in range(4)] == [1, 1, 1, 1]


def test_bad_data_is_named_as_data_not_as_the_result(sb):
    r = sb.run("python", "ok 1", data=object())
    assert r.status is Status.REJECTED
    assert r.message == ("data cannot be sent to the sandbox: data: object of type 'object' "
                         "is not serializable")


def test_a_closed_sandbox_refuses_to_run():
    from sandbox import ClosedError

    sb = fake()
    sb.close()
    with pytest.raises(ClosedError):
        sb.run("python", "ok 1")


def test_what_was_printed_before_a_timeout_comes_back(sb):
    r = sb.run("python", "printsleep started", timeout_s=0.3)
    assert (r.status, r.stdout) == (Status.TIMEOUT, "started\n")
