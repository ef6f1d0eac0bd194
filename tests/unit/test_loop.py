"""The poll loop every host process runs: handlers, timers, hand-ins from other threads."""

from __future__ import annotations

import os
import socket
import threading
import time

from sandbox.host.loop import Loop


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


# -- SharedLoop: callers drive the loop while they wait ---------------------------------------


def test_a_lone_caller_runs_the_loop_in_its_own_thread():
    from sandbox.host.loop import SharedLoop

    loop = Loop()
    shared = SharedLoop(loop)
    shared.start()
    time.sleep(0.1)  # the background thread's first look at the loop is over by then
    ran_in = []
    assert shared.run_until(lambda: ran_in.append(threading.get_ident()), lambda: bool(ran_in), 5)
    assert ran_in == [threading.get_ident()]  # no hand-off to another thread
    shared.stop()
    loop.close()


def test_a_follower_takes_the_lead_when_the_leader_leaves_first():
    from sandbox.host.loop import SharedLoop

    loop = Loop()
    shared = SharedLoop(loop)
    shared.start()
    r, w = os.pipe()
    arrived = []
    loop.watch(r, lambda events: (arrived.append(os.read(r, 10)), shared.changed()))
    leader_in = threading.Event()
    results = {}

    def leader() -> None:
        results["leader"] = shared.run_until(leader_in.set, lambda: len(arrived) >= 1, 5)

    def follower() -> None:
        leader_in.wait()
        results["follower"] = shared.run_until(lambda: None, lambda: len(arrived) >= 2, 5)

    threads = [threading.Thread(target=leader), threading.Thread(target=follower)]
    for t in threads:
        t.start()
    leader_in.wait()
    os.write(w, b"a")
    time.sleep(0.1)
    os.write(w, b"b")  # only the follower still waits: it must be running the loop now
    for t in threads:
        t.join(5)
    assert results == {"leader": True, "follower": True}
    loop.unwatch(r)
    shared.stop()
    for fd in (r, w):
        os.close(fd)
    loop.close()


def test_the_background_thread_handles_urgent_fds_between_callers():
    from sandbox.host.loop import SharedLoop

    loop = Loop()
    shared = SharedLoop(loop)
    shared.start()
    r, w = os.pipe()
    seen = threading.Event()
    loop.watch(r, lambda events: (os.read(r, 10), seen.set()), urgent=True)
    os.write(w, b"x")  # nobody waits on the loop: the background thread must see this
    assert seen.wait(5)
    loop.unwatch(r)
    shared.stop()
    for fd in (r, w):
        os.close(fd)
    loop.close()


def test_an_urgent_fd_that_fired_while_a_caller_led_is_handled_after_it_leaves():
    """What the background thread sleeps on is one-shot: an event while a caller leads wakes
    it once and disarms it; the leaving caller re-arms it, so what it left unhandled is
    handled then, and later events wake the background thread again."""
    from sandbox.host.loop import SharedLoop

    loop = Loop()
    shared = SharedLoop(loop)
    shared.start()
    time.sleep(0.1)  # the background thread's first look at the loop is over by then
    r, w = os.pipe()
    seen: list[bytes] = []
    handled = threading.Event()
    loop.watch(r, lambda events: (seen.append(os.read(r, 10)), handled.set()), urgent=True)

    def fire_and_leave() -> None:
        os.write(w, b"a")
        time.sleep(0.1)  # the background thread wakes now, sees this caller lead, sleeps on

    # done at once: the caller leaves without polling, so the event is left to the background
    assert shared.run_until(fire_and_leave, lambda: True, 5)
    assert handled.wait(5)
    handled.clear()
    os.write(w, b"b")  # after the background thread's own lead: armed again
    assert handled.wait(5)
    assert seen == [b"a", b"b"]
    loop.unwatch(r)
    shared.stop()
    for fd in (r, w):
        os.close(fd)
    loop.close()


def test_a_wait_that_times_out_says_so():
    from sandbox.host.loop import SharedLoop

    loop = Loop()
    shared = SharedLoop(loop)
    shared.start()
    assert shared.run_until(lambda: None, lambda: False, 0.1) is False
    shared.stop()
    loop.close()
