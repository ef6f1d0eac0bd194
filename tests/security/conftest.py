"""The escape suites through sessions too: a module that sets ``SESSIONS_TOO = True`` runs
each of its tests twice, once as tasks (``sandbox`` as it is) and once with every
``sandbox.run`` a call of a session of its own (opened, called, closed), so every denied
capability and every limit is asserted for session calls as well (not copied: the same
tests)."""

from __future__ import annotations

from typing import Any

import pytest


class ThroughSessions:
    """The ``sandbox`` fixture's surface, each ``run`` a session's call. ``memory_mb`` is
    the session's cap (a session has one, for its whole process)."""

    def __init__(self, sb: Any) -> None:
        self._sb = sb

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sb, name)

    def run(self, runtime: str, code: str, data: Any = None, *, memory_mb: int | None = None,
            **options: Any) -> Any:
        with self._sb.session(runtime, memory_mb=memory_mb) as session:
            return session.run(code, data, **options)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if getattr(metafunc.module, "SESSIONS_TOO", False) and "through" in metafunc.fixturenames:
        metafunc.parametrize("through", ["task", "session"])


@pytest.fixture
def through() -> str:
    return "task"


@pytest.fixture
def sandbox(sandbox: Any, through: str) -> Any:
    return ThroughSessions(sandbox) if through == "session" else sandbox
