"""A finished child is frozen at once, and killed and replaced a little later."""

from __future__ import annotations

import time

from sandbox import PoolConfig, Sandbox


def _state(host_pid: int) -> str | None:
    try:
        with open(f"/proc/{host_pid}/stat") as f:
            raw = f.read()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2]


def _idle(sb: Sandbox) -> list[int]:
    children = sb.snapshot()["python"]["children"]
    return sorted(host for state, host in children.values() if state == "idle")


def test_a_finished_child_is_stopped_then_killed_and_replaced():
    with Sandbox(PoolConfig(size=3, recycle_delay_ms=1000)) as sb:
        assert sb.run("python", "return 1").value == 1  # the pool is up
        settled = time.monotonic() + 5
        while len(_idle(sb)) < 3 and time.monotonic() < settled:
            time.sleep(0.02)
        before = set(_idle(sb))
        assert sb.run("python", "return 2").value == 2
        (child,) = before - set(_idle(sb))  # the one that ran it
        # frozen (SIGSTOP takes effect when it is next scheduled), not exiting, while the
        # result is on its way
        frozen_by = time.monotonic() + 0.5
        while _state(child) != "T" and time.monotonic() < frozen_by:
            time.sleep(0.005)
        assert _state(child) == "T"
        deadline = time.monotonic() + 3
        while _state(child) not in (None, "Z") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _state(child) in (None, "Z")
        while len(_idle(sb)) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(_idle(sb)) == 3


def test_a_waiting_task_gets_a_replacement_at_once():
    """With every child busy or frozen, a new task does not wait out the recycle delay."""
    with Sandbox(PoolConfig(size=1, recycle_delay_ms=1000)) as sb:
        assert sb.run("python", "return 1").value == 1
        started = time.monotonic()
        assert sb.run("python", "return 2").value == 2
        # the recycle delay is 1 s; the refill starts when the task asks for a child
        assert time.monotonic() - started < 0.8
