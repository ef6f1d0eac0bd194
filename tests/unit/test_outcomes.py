"""How a child's death without a result maps to a status: pure."""

from __future__ import annotations

import signal

import pytest

from sandbox.pool import outcome_of
from sandbox import Status


def killed(sig: int) -> int:
    return sig  # a wait status for "terminated by sig" is the signal number itself


@pytest.mark.parametrize(
    "wait_status, oom, status, fragment",
    [
        (killed(signal.SIGSYS), False, Status.VIOLATION, "forbidden"),
        (killed(signal.SIGXCPU), False, Status.TIMEOUT, "CPU"),
        (killed(signal.SIGKILL), True, Status.MEMORY_LIMIT, "memory"),
        (killed(signal.SIGKILL), False, Status.CRASHED, "SIGKILL"),
        (killed(signal.SIGSEGV), False, Status.CRASHED, "SIGSEGV"),
        (3 << 8, False, Status.CRASHED, "code 3"),
        (None, False, Status.CRASHED, "vanished"),
    ],
)
def test_outcome_of(wait_status, oom, status, fragment):
    got, message = outcome_of(wait_status, oom_killed=oom)
    assert got is status
    assert fragment in message
