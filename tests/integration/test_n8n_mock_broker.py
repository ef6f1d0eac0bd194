"""The mock n8n broker drives both runners it is for, and the harness's n8n systems work.

Well-formedness only, never a speed: n8n's own JavaScript runner (``@n8n/task-runner`` from
the cached n8n install, started as n8n's launcher starts it) and our ``sandbox n8n-runner``
(in both isolation modes) each take tasks through a mock broker of their own: the trivial
task of the benchmark, one that asks for its input and prints, one that throws; then a short
closed loop as the harness runs it.
"""

from __future__ import annotations

import pytest

from benchmarks import harness
from benchmarks.n8n_mock import TaskSpec
from benchmarks.n8n_mock.runners import EXPECTED, OURS, OURS_WORKER, THEIRS, TRIVIAL, MockSystem

PRINTS = TaskSpec("console.log('n', $input.all().length);\nreturn $input.all();",
                  items=({"json": {"a": 1}},))
THROWS = TaskSpec("throw new Error('boom');")


@pytest.fixture(scope="module")
def n8n_install():
    from benchmarks.n8n_peer.install import ensure_installed

    return ensure_installed()  # the cached install (about 6 minutes when the cache is empty)


def _start(which: str, install, directory: str) -> MockSystem:
    if which == THEIRS:
        return MockSystem.theirs(install.node, install.task_runner_start, 2, directory)
    return MockSystem.ours(2, directory, "worker" if which == OURS_WORKER else "process")


@pytest.mark.parametrize("which,name", [(THEIRS, "JS Task Runner"), (OURS, "snippet-sandbox"),
                                        (OURS_WORKER, "snippet-sandbox")])
def test_tasks_through_the_mock_broker_to_each_runner(which, name, n8n_install, tmp_path):
    system = _start(which, n8n_install, str(tmp_path))
    try:
        assert system.runner["name"] == name and system.runner["types"] == ["javascript"]
        assert system.runner["offers"] == 2  # N8N_RUNNERS_MAX_CONCURRENCY open offers
        trivial = system.broker.run(TRIVIAL)
        assert (trivial.status, trivial.result) == ("done", EXPECTED)
        printed = system.broker.run(PRINTS)
        assert printed.status == "done"
        assert printed.result == [{"json": {"a": 1}, "pairedItem": {"item": 0}}]
        assert printed.logs == (("'n'", "1"),)
        thrown = system.broker.run(THROWS)
        assert (thrown.status, thrown.message) == ("error", "boom [line 1]")
        assert thrown.value["lineNumber"] == 1
        done, wall = harness._sweep(system.call, 2, 0.3)  # the harness's closed loop
        assert done > 0 and wall > 0
        assert system.broker.counters() == {"malformed": 0, "stray": 0, "unanswered": 0}
    finally:
        system.close()
    # n8n's runner leaves when its broker drains and closes; ours stops on SIGTERM
    assert system.proc.returncode == 0, system.log()[-2000:]


def test_without_an_install_quick_mode_skips_n8ns_runner_with_the_reason(tmp_path, monkeypatch):
    from benchmarks.n8n_mock import runners

    monkeypatch.setenv("SANDBOX_N8N_CACHE", str(tmp_path / "empty-cache"))
    systems, skipped = runners.start(2, str(tmp_path), install=False)
    try:
        assert [s.name for s in systems] == [OURS, OURS_WORKER]
        assert skipped == {THEIRS: "n8n is not installed and --quick does not install it "
                                   "(python -m benchmarks.n8n_peer.install, about 6 minutes, or a full run)"}
    finally:
        for s in systems:
            s.close()
