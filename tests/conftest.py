"""Shared fixtures. Integration and security tests use real jails through one sandbox.

Tests that need a real jail (root or unprivileged user namespaces, nsjail, cgroups) carry
the ``jail`` marker: every test under ``tests/integration`` and ``tests/security`` gets it,
and unit tests that also run against the real jail name it. Where a jail cannot start here,
they are skipped with the reason.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from one_runtime import PYODIDE_GRACE_S, OneRuntime  # the suite's own module (tests/)

# Set before any jail starts: tests assert that the jail never sees it.
HOST_SECRET = "host-secret-7d1f0c"
os.environ["SANDBOX_TEST_HOST_SECRET"] = HOST_SECRET

_NEEDS_JAIL = ("integration", "security")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.path)).parent.name in _NEEDS_JAIL:
            item.add_marker(pytest.mark.jail)


@functools.cache
def _why_no_jail() -> str | None:
    """None when a real jail starts here; else the reason it does not."""
    from sandbox import PoolConfig, Sandbox
    from sandbox.errors import SandboxError

    try:
        with Sandbox(PoolConfig(size=1)):
            return None
    except SandboxError as exc:
        return f"a jail cannot start on this host: {exc}"


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("jail") is not None:
        why = _why_no_jail()
        if why:
            pytest.skip(why)


@pytest.fixture(scope="session")
def sandbox():
    """Every import allowed: the language layer is opened so that the contract and security
    tests exercise the kernel layers on their own (each layer must hold by itself)."""
    from sandbox import PoolConfig, Sandbox

    with Sandbox(PoolConfig(size=2, stdlib_allow=("*",), external_allow=("*",))) as sb:
        yield sb


@pytest.fixture(scope="session")
def default_sandbox():
    """The defaults an operator gets: the curated import allow-list."""
    from sandbox import PoolConfig, Sandbox

    with Sandbox(PoolConfig(size=2)) as sb:
        yield sb


# -- the pyodide runtime (its workers load Pyodide for seconds: one sandbox per session) --------


@pytest.fixture(scope="session")
def pyodide():
    """Pyodide workers in a real jail, every import allowed (as ``sandbox``): the JS
    lockdown, the worker filter and the jail are exercised on their own."""
    from sandbox import PoolConfig, PyodideConfig, Sandbox

    with Sandbox(PoolConfig(size=2, stdlib_allow=("*",), external_allow=("*",),
                            pyodide=PyodideConfig(kill_grace_s=PYODIDE_GRACE_S)),
                 runtimes=("pyodide",)) as sb:
        yield OneRuntime(sb, "pyodide")


@pytest.fixture(scope="session")
def default_pyodide():
    """Pyodide workers with the operator's defaults: the curated import allow-list."""
    from sandbox import PoolConfig, PyodideConfig, Sandbox

    with Sandbox(PoolConfig(size=1, pyodide=PyodideConfig(kill_grace_s=PYODIDE_GRACE_S)),
                 runtimes=("pyodide",)) as sb:
        yield OneRuntime(sb, "pyodide")


@pytest.fixture(scope="session")
def n8n():
    """A real n8n 2.41.1 in external-runner mode, once per session (installed into the
    machine's cache on first use: about 3-6 minutes). Its own task timeout is 8 s."""
    from benchmarks.n8n_peer.peer import N8n

    with N8n.start(task_timeout_s=8) as peer:
        yield peer


class RunnerSlot:
    """The one ``sandbox n8n-runner`` serving the session's n8n, restarted when a test needs
    other flags (so that no other runner takes its tasks)."""

    DEFAULT = ("--max-concurrency", "4", "--task-timeout", "30", "--memory", "128")

    def __init__(self, n8n) -> None:
        from benchmarks.n8n_peer.peer import RunnerProcess

        self.n8n = n8n
        self.current: RunnerProcess | None = None

    def use(self, *flags: str):
        from benchmarks.n8n_peer.peer import RunnerProcess

        flags = flags or self.DEFAULT
        if self.current is None or self.current.flags != flags or self.current.proc.poll() is not None:
            self.stop()
            self.current = RunnerProcess(self.n8n, *flags).wait_registered()
        return self.current

    def stop(self) -> None:
        if self.current is not None:
            self.current.stop()
            self.current = None


@pytest.fixture(scope="session")
def n8n_runners(n8n):
    slot = RunnerSlot(n8n)
    yield slot
    slot.stop()


@pytest.fixture
def n8n_runner(n8n_runners):
    """Our runner with the default flags, registered with the session's n8n."""
    return n8n_runners.use()


@pytest.fixture
def ipc_dir() -> Iterator[str]:
    """A private directory with a short path for ipc:// sockets (a socket's path must fit
    in 107 bytes, which pytest's tmp_path of a long test name does not)."""
    directory = tempfile.mkdtemp(prefix="sbx-", dir="/tmp")
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def pytest_terminal_summary(terminalreporter) -> None:
    """The differential test's agreement report, when it ran (tests/n8n/differential)."""
    import sys

    differential = sys.modules.get("tests.n8n.differential")
    for text in getattr(differential, "SUMMARY", ()):
        terminalreporter.write_sep("-", "n8n differential report")
        terminalreporter.write_line(text)
