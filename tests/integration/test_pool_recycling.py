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


def test_a_finished_child_is_stopped_then_killed_and_replaced():
    with Sandbox(PoolConfig(size=2, recycle_delay_ms=400)) as sb:
        pool = sb._pool("python")
        assert sb.run("python", "return 1").value == 1  # the pool is up
        time.sleep(0.6)
        child = pool._idle[0]
        assert sb.run("python", "return 2").value == 2
        # the child that ran it: frozen, not exiting, while the result is on its way
        assert _state(child.host_pid) == "T"
        deadline = time.monotonic() + 3
        while _state(child.host_pid) not in (None, "Z") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _state(child.host_pid) in (None, "Z")
        while pool.idle_count() < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert pool.idle_count() == 2


def test_a_waiting_task_gets_a_replacement_at_once():
    """With every child busy or frozen, a new task does not wait out the recycle delay."""
    with Sandbox(PoolConfig(size=1, recycle_delay_ms=1000)) as sb:
        assert sb.run("python", "return 1").value == 1
        started = time.monotonic()
        assert sb.run("python", "return 2").value == 2
        # the recycle delay is 1 s; the refill starts when the task asks for a child
        assert time.monotonic() - started < 0.8
