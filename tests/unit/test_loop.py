"""The poll loop every host process runs: handlers, timers, hand-ins from other threads."""

from __future__ import annotations

import os
import socket
import threading
import time

from sandbox.loop import Loop


class Timer:
    def __init__(self, at: float) -> None:
        self.at: float | None = at
        self.fired: list[float] = []

    def wake_at(self) -> float | None:
        return self.at

    def on_time(self, now: float) -> None:
        self.fired.append(now)
        self.at = None


def test_a_readable_fd_calls_its_handler():
    loop = Loop()
    r, w = os.pipe()
    seen = []
    loop.watch(r, lambda events: seen.append(os.read(r, 10)))
    os.write(w, b"hi")
    loop.run_once(max_wait_s=1)
    assert seen == [b"hi"]
    loop.unwatch(r)
    for fd in (r, w):
        os.close(fd)
    loop.close()


def test_an_fd_number_reused_after_unwatch_and_close_reaches_only_its_new_handler():
    loop = Loop()
    a, b = socket.socketpair()
    number = a.fileno()
    old = []
    loop.watch(number, lambda events: old.append(events))
    loop.unwatch(number)
    a.close()
    c, d = socket.socketpair()  # the lowest free number: the one just closed
    assert c.fileno() == number
    new = []
    loop.watch(c.fileno(), lambda events: new.append(c.recv(10)))
    d.send(b"x")
    loop.run_once(max_wait_s=1)
    assert (old, new) == ([], [b"x"])
    for s in (b, c, d):
        s.close()
    loop.close()


def test_a_timer_fires_at_its_time_and_not_before():
    loop = Loop()
    timer = Timer(time.monotonic() + 0.05)
    loop.add_timed(timer)
    started = time.monotonic()
    while not timer.fired:
        loop.run_once()
    assert timer.fired[0] >= started + 0.05
    loop.close()


def test_a_call_from_another_thread_wakes_a_sleeping_loop():
    loop = Loop()
    done = []
    threading.Timer(0.05, lambda: loop.call_soon_threadsafe(lambda: done.append(1))).start()
    started = time.monotonic()
    loop.run(lambda: bool(done))
    assert done == [1]
    assert time.monotonic() - started < 5  # woken, not timed out (it had no timeout at all)
    loop.close()


def test_a_failing_handler_costs_its_event_not_the_loop():
    loop = Loop()
    r, w = os.pipe()

    def broken(events: int) -> None:
        os.read(r, 10)
        raise RuntimeError("bug")

    loop.watch(r, broken)
    os.write(w, b"x")
    loop.run_once(max_wait_s=1)
    ran = []
    loop.call_soon_threadsafe(lambda: ran.append(1))
    loop.run_once(max_wait_s=1)
    assert ran == [1]
    loop.unwatch(r)
    for fd in (r, w):
        os.close(fd)
    loop.close()
