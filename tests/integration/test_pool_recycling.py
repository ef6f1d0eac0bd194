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
    with Sandbox(PoolConfig(size=3, recycle_delay_ms=1000)) as sb:
        pool = sb._pool("python")
        assert sb.run("python", "return 1").value == 1  # the pool is up
        settled = time.monotonic() + 5
        while pool.idle_count() < 3 and time.monotonic() < settled:
            time.sleep(0.02)
        child = pool._idle[0]
        assert sb.run("python", "return 2").value == 2
        # the child that ran it: frozen (SIGSTOP takes effect when it is next scheduled),
        # not exiting, while the result is on its way
        frozen_by = time.monotonic() + 0.5
        while _state(child.host_pid) != "T" and time.monotonic() < frozen_by:
            time.sleep(0.005)
        assert _state(child.host_pid) == "T"
        deadline = time.monotonic() + 3
        while _state(child.host_pid) not in (None, "Z") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _state(child.host_pid) in (None, "Z")
        while pool.idle_count() < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert pool.idle_count() == 3


def test_a_waiting_task_gets_a_replacement_at_once():
    """With every child busy or frozen, a new task does not wait out the recycle delay."""
    with Sandbox(PoolConfig(size=1, recycle_delay_ms=1000)) as sb:
        assert sb.run("python", "return 1").value == 1
        started = time.monotonic()
        assert sb.run("python", "return 2").value == 2
        # the recycle delay is 1 s; the refill starts when the task asks for a child
        assert time.monotonic() - started < 0.8


def test_a_task_keeps_its_channel_number_after_its_child_is_recycled():
    """A poll loop unregisters the number it registered, even once the channel is closed."""
    import select

    from runtimes import codec

    with Sandbox(PoolConfig(size=1)) as sb:
        prepared = sb.prepare("python", "return 1")
        child = prepared.pool.try_acquire()
        while child is None:
            time.sleep(0.01)
            child = prepared.pool.try_acquire()
        task = prepared.pool.begin(child, "return 1", codec.encode(None), prepared.limits)
        fd = task.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while task.envelope is None:
            if poller.poll(1000):
                task.on_readable()
            task.on_time(time.monotonic())
        # no idle child was left, so the child was replaced at once and its channel closed
        assert child.channel.fileno() == -1
        assert task.fileno() == fd
