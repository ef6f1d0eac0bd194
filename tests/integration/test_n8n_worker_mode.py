"""``sandbox n8n-runner --isolation worker``: warm workers serve the Code node tasks of one
workflow and never a task of another (the capability denied: a task seeing a worker that an
earlier task of another workflow ran in). Real jails on the runner's own loop."""

from __future__ import annotations

import dataclasses
import time

from runtimes import codec
from runtimes.outcome import Status

from sandbox.config import Limits, PoolConfig
from sandbox.host.loop import Loop
from sandbox.n8n.backend import PoolsBackend
from sandbox.n8n.config import N8nRunnerConfig
from sandbox.n8n.task import Job
from sandbox.result import Result

PID = "import os\nreturn os.getpid()"


def _job(workflow: str) -> Job:
    return Job("python", PID, codec.encode(None), Limits(timeout_s=10), workflow)


def _pids(isolation: str, workflows: list[str], config: PoolConfig | None = None) -> list[int]:
    """Each job run in turn on one child, the pid it ran in."""
    loop = Loop()
    backend = PoolsBackend(config or PoolConfig(size=1, stdlib_allow=("*",)),
                           runtimes=("python",), isolation=isolation)
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


def test_tasks_of_one_workflow_share_a_warm_worker_with_n8ns_own_defaults():
    """The runner's pool as n8n's variables make it (N8N_RUNNERS_ALLOW_TRANSITIVE_IMPORTS
    unset: a package's importlib calls are checked in every task)."""
    n8n = N8nRunnerConfig.load(env={"N8N_RUNNERS_STDLIB_ALLOW": "*",
                                      "N8N_RUNNERS_AUTH_TOKEN": "unused here"})
    config = dataclasses.replace(n8n.pool_config(), size=1)
    assert config.allow_transitive_imports is False
    first, second, third = _pids("worker", ["wf-a", "wf-a", "wf-a"], config)
    assert first == second == third


def test_a_task_of_another_workflow_never_gets_that_worker():
    a1, b, a2 = _pids("worker", ["wf-a", "wf-b", "wf-a"])
    assert b not in (a1, a2)


def test_a_task_naming_no_workflow_gets_a_fresh_process():
    a, anonymous, again = _pids("worker", ["wf-a", "", ""])
    assert len({a, anonymous, again}) == 3


def test_by_default_every_task_gets_a_fresh_process():
    assert len(set(_pids("process", ["wf-a", "wf-a", "wf-a"]))) == 3
