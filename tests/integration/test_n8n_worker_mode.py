"""``sandbox n8n-runner --isolation worker``: warm workers serve the Code node tasks of one
workflow and never a task of another (the capability denied: a task seeing a worker that an
earlier task of another workflow ran in). Real jails on the runner's own loop."""

from __future__ import annotations

import time

from runtimes import codec
from runtimes.outcome import Status

from sandbox.config import Limits, PoolConfig
from sandbox.host.loop import Loop
from sandbox.n8n.backend import PoolsBackend
from sandbox.n8n.task import Job
from sandbox.result import Result

PID = "import os\nreturn os.getpid()"


def _job(workflow: str) -> Job:
    return Job("python", PID, codec.encode(None), Limits(timeout_s=10), workflow)


def _pids(isolation: str, workflows: list[str]) -> list[int]:
    """Each job run in turn on one child, the pid it ran in."""
    loop = Loop()
    backend = PoolsBackend(PoolConfig(size=1, stdlib_allow=("*",)), runtimes=("python",),
                            isolation=isolation)
    results: dict[str, Result] = {}
    backend.attach(loop, lambda key, result: results.__setitem__(key, result))
    try:
        pids = []
        for i, workflow in enumerate(workflows):
            backend.submit(str(i), _job(workflow))
            end = time.monotonic() + 30
            while str(i) not in results and time.monotonic() < end:
                loop.run_once(0.05)
            result = results[str(i)]
            assert result.status is Status.OK, result.message
            pids.append(result.value)
        return pids
    finally:
        backend.close()
        loop.close()


def test_tasks_of_one_workflow_share_a_warm_worker():
    first, second, third = _pids("worker", ["wf-a", "wf-a", "wf-a"])
    assert first == second == third


def test_a_task_of_another_workflow_never_gets_that_worker():
    a1, b, a2 = _pids("worker", ["wf-a", "wf-b", "wf-a"])
    assert b not in (a1, a2)


def test_a_task_naming_no_workflow_gets_a_fresh_process():
    a, anonymous, again = _pids("worker", ["wf-a", "", ""])
    assert len({a, anonymous, again}) == 3


def test_by_default_every_task_gets_a_fresh_process():
    assert len(set(_pids("process", ["wf-a", "wf-a", "wf-a"]))) == 3
