"""The pools serving a runtime whose children are workers (pyodide), against the fake
jail (no root): a child is handed tasks only once it said ready, serves its reuse key again,
never another's, is killed from outside a grace after a timeout it did not answer, and its
exit codes mean what the runtime says. The same through real jails and Pyodide:
tests/integration/test_pyodide_contract.py, tests/security/test_pyodide_isolation.py."""

from __future__ import annotations

import pytest

from runtimes.outcome import Status
from sandbox import PoolConfig, PyodideConfig, Sandbox
from sandbox.jail import fake as fakejail


def fake(size: int = 1, **pyodide) -> Sandbox:
    config = PoolConfig(size=size, cgroup="off", pyodide=PyodideConfig(kill_grace_s=0.2, **pyodide))
    return Sandbox(config, runtimes=("pyodide",), launcher=fakejail.launch)


def workers(sb: Sandbox) -> dict[int, str]:
    return {pid: state for pid, (state, _) in sb.snapshot()["pyodide"]["children"].items()}


@pytest.fixture(scope="module")
def sb():
    with fake() as sandbox:
        yield sandbox


def test_a_worker_is_idle_once_it_said_ready_and_serves_its_key_again(sb):
    before = workers(sb)
    assert list(before.values()) == ["idle"]
    assert sb.run("pyodide", "ok 1", reuse_key="tenant-a").value == 1
    assert sb.run("pyodide", "ok 2", reuse_key="tenant-a").value == 2
    assert workers(sb) == before  # the same worker, idle again


def test_a_worker_never_serves_another_key(sb):
    sb.run("pyodide", "ok 1", reuse_key="tenant-a")
    first = set(workers(sb))
    assert sb.run("pyodide", "ok 2", reuse_key="tenant-b").value == 2
    assert not first & {pid for pid, state in workers(sb).items() if state == "idle"}


def test_an_error_keeps_the_worker_and_a_violation_retires_it(sb):
    sb.run("pyodide", "ok 1")
    before = set(workers(sb))
    assert sb.run("pyodide", "error ValueError boom").status is Status.ERROR
    assert set(workers(sb)) == before
    assert sb.run("pyodide", "sigsys").status is Status.VIOLATION
    assert sb.run("pyodide", "ok 3").value == 3
    assert not before & set(workers(sb))


def test_a_timeout_the_worker_did_not_answer_is_killed_after_the_grace(sb):
    r = sb.run("pyodide", "sleep", timeout_s=0.3)
    assert (r.status, r.message) == (Status.TIMEOUT, "exceeded the wall-clock timeout of 0.3 s "
                                                     "(killed from outside 0.2 s later: the "
                                                     "interrupt did not end it)")


@pytest.mark.parametrize("script, message", [
    ("exit 71", "the Pyodide runtime failed during the task (a fatal error inside the "
                "WebAssembly interpreter)"),
    ("exit 3", "the sandboxed process exited with code 3 without a result"),
])
def test_a_workers_exit_code_means_what_the_runtime_says(sb, script, message):
    r = sb.run("pyodide", script, timeout_s=2)
    assert (r.status, r.message) == (Status.CRASHED, message)
