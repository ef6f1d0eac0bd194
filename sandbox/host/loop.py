"""One thread's poll loop: the only place a host process waits.

A process of this service (a runner, the local API's background thread, an n8n runner) owns
all its file descriptors in one loop: sockets and channels are ``watch``ed with a handler,
timed work comes from ``Timed`` sources (``wake_at()`` says when, ``on_time(now)`` does it),
and other threads hand work in with ``call_soon_threadsafe`` (a queue plus a wake pipe, which
is also what a signal handler may write to: ``wake_fd``). The loop sleeps until one of those
is due; it never polls on a fixed interval.

The poller is ``select.poll`` by default; a loop that also waits on ZeroMQ sockets is given a
``zmq.Poller`` (same interface; it accepts plain fds too).

``SharedLoop`` runs a loop for a process whose callers are threads that each wait for their
own answer (the local API): see there.
"""

from __future__ import annotations

import ctypes
import logging
import math
import os
import select
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger("sandbox.host.loop")

POLLIN = select.POLLIN  # == zmq.POLLIN


class Timed(Protocol):
    def wake_at(self) -> float | None: ...

    def on_time(self, now: float) -> None: ...


class Loop:
    def __init__(self, poller: Any = None) -> None:
        self._poller = poller if poller is not None else select.poll()
        self._handlers: dict[Any, Callable[[int], None]] = {}
        self._timed: list[Timed] = []
        self._calls: deque[Callable[[], None]] = deque()
        self._wake_r, self.wake_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._poller.register(self._wake_r, POLLIN)
        self._handlers[self._wake_r] = self._drain_wake
        self._urgent: set[Any] = set()
        self.on_urgent: Callable[[Any, bool], None] | None = None  # see SharedLoop
        self.thread: threading.Thread | None = None  # the thread running it, once it runs

    def watch(self, source: Any, handler: Callable[[int], None], *, urgent: bool = False) -> None:
        """Call ``handler(events)`` whenever ``source`` (an fd or a ZeroMQ socket) is readable.
        ``urgent``: it must be handled even while no task is waiting (a jail's death)."""
        self._poller.register(source, POLLIN)
        self._handlers[source] = handler
        if urgent:
            self._urgent.add(source)
            if self.on_urgent is not None:
                self.on_urgent(source, True)

    def unwatch(self, source: Any) -> None:
        """Stop watching ``source``: call this BEFORE closing it (its number may be reused)."""
        if self._handlers.pop(source, None) is not None:
            self._poller.unregister(source)
        if source in self._urgent:
            self._urgent.discard(source)
            if self.on_urgent is not None:
                self.on_urgent(source, False)

    def watching(self, source: Any) -> bool:
        return source in self._handlers

    def urgent(self) -> list[Any]:
        return list(self._urgent)

    def add_timed(self, source: Timed) -> None:
        self._timed.append(source)

    def call_soon_threadsafe(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` in the loop's thread, soon; callable from any thread."""
        self._calls.append(fn)
        self.wake()

    def wake(self) -> None:
        try:
            os.write(self.wake_fd, b"\0")
        except (BlockingIOError, OSError):
            pass  # full (a wake is pending anyway) or closed (the loop is gone)

    def run(self, stop: Callable[[], bool]) -> None:
        """Run until ``stop()`` is true (checked after every wake-up)."""
        self.thread = threading.current_thread()
        while not stop():
            self.run_once()

    def next_due(self) -> float | None:
        """The earliest time a ``Timed`` source has work, or None."""
        wake = None
        for timed in self._timed:
            at = timed.wake_at()
            if at is not None and (wake is None or at < wake):
                wake = at
        return wake

    def run_once(self, max_wait_s: float | None = None) -> None:
        """Wait for the next event or due time (at most ``max_wait_s``) and handle it."""
        wake = self.next_due()
        now = time.monotonic()
        if self._calls:
            timeout_ms: int | None = 0
        elif wake is None:
            timeout_ms = None if max_wait_s is None else math.ceil(max_wait_s * 1000)
        else:
            wait = wake - now if max_wait_s is None else min(wake - now, max_wait_s)
            timeout_ms = max(0, math.ceil(wait * 1000))
        for source, events in self._poller.poll(timeout_ms):
            handler = self._handlers.get(source)
            if handler is not None:  # unwatched by an earlier handler of this round
                self._guard(handler, events)
        while self._calls:
            self._guard(self._calls.popleft())
        now = time.monotonic()
        for timed in self._timed:
            at = timed.wake_at()
            if at is not None and at <= now:
                self._guard(timed.on_time, now)

    def close(self) -> None:
        for fd in (self._wake_r, self.wake_fd):
            try:
                os.close(fd)
            except OSError:
                pass

    def _drain_wake(self, events: int) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    @staticmethod
    def _guard(fn: Callable[..., None], *args: Any) -> None:
        # A handler's bug costs that event, never the loop (and so never every other task).
        try:
            fn(*args)
        except Exception:
            log.exception("loop handler %r failed", fn)


class _TimerFd:
    """A timerfd (Linux; through ctypes: Python 3.11 has no binding), armed at an absolute
    ``time.monotonic()`` value: arming it wakes nobody, its firing wakes its reader."""

    _CLOCK_MONOTONIC = 1
    _TFD_NONBLOCK = os.O_NONBLOCK
    _TFD_CLOEXEC = os.O_CLOEXEC
    _TFD_TIMER_ABSTIME = 1

    class _Spec(ctypes.Structure):
        _fields_ = [("interval_s", ctypes.c_long), ("interval_ns", ctypes.c_long),
                    ("value_s", ctypes.c_long), ("value_ns", ctypes.c_long)]

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self._settime = libc.timerfd_settime
        self.fd = libc.timerfd_create(self._CLOCK_MONOTONIC, self._TFD_NONBLOCK | self._TFD_CLOEXEC)
        if self.fd < 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"timerfd_create: {os.strerror(errno)}")
        self.armed: float | None = None

    def arm(self, at: float | None) -> None:
        """Fire at ``at`` (at once if it is past), or never (None)."""
        if at == self.armed:
            return
        self.armed = at
        whole, frac = (0, 0) if at is None else (int(at), int((at % 1) * 1e9))
        if at is not None and whole == 0 and frac == 0:
            frac = 1  # an absolute zero would disarm it
        spec = self._Spec(0, 0, whole, frac)
        if self._settime(self.fd, self._TFD_TIMER_ABSTIME, ctypes.byref(spec), None) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"timerfd_settime: {os.strerror(errno)}")

    def clear(self) -> None:
        try:
            os.read(self.fd, 8)
        except BlockingIOError:
            pass

    def close(self) -> None:
        os.close(self.fd)


class SharedLoop:
    """A loop driven by the threads that wait on it, and by a background thread between them.

    A caller hands its work in and waits for its own answer. If no thread is running the loop,
    the caller runs it itself while it waits (it leads): its task is sent, and its result read,
    in its own thread, with no hand-off between threads on the way. A caller that finds the
    loop led by another thread hands its work in through the loop's queue and wake pipe and
    waits; when the leader leaves before the follower's answer came, the follower leads. The
    background thread leads only between callers, briefly, for what is due then: a timer the
    leaving caller armed (a frozen child's release, say) or an fd marked urgent (a refill's
    report, a jail that died). A caller that leaves wakes no thread unless one waits to lead
    (measured: waking the background thread after every call made each call 0.1-0.2 ms
    slower, the woken thread taking the interpreter's lock on the caller's way out): what the
    background thread sleeps on is one-shot, so an event that comes while a caller leads wakes
    it once, and the caller, which polls the same fds, handles it; the caller re-arms them as
    it leaves. At most one thread runs the loop at any moment: the loop's state has one owner
    at a time.
    """

    def __init__(self, loop: Loop) -> None:
        self.loop = loop
        lock = threading.Lock()
        self._followers = threading.Condition(lock)  # callers waiting for answers or the lead
        self._waiting_followers = 0
        self._leader: int | None = None  # the thread running the loop now, if any
        self._stopping = False
        # What the background thread sleeps on: the timer and the urgent fds, each one-shot
        # (a wake-up disarms it until the next leader leaves: see _background), and the stop.
        self._idle = select.epoll()
        self._idle_fds: set[int] = set()
        self._rearm = False  # the background thread woke while a caller led: re-arm on leaving
        self._timer = _TimerFd()
        self._arm_fd(self._timer.fd)
        self._stop_r, self._stop_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._idle.register(self._stop_r, select.EPOLLIN)
        loop.on_urgent = self._on_urgent
        for source in loop.urgent():
            self._on_urgent(source, True)
        self._thread = threading.Thread(target=self._background, name="sandbox-loop", daemon=True)

    def start(self) -> None:
        self._timer.arm(self.loop.next_due())
        self._thread.start()

    def run_until(self, hand_in: Callable[[], None], done: Callable[[], bool],
                  timeout_s: float | None = None) -> bool:
        """Run ``hand_in`` in the loop, then wait until ``done()`` (checked in the loop's
        thread after each event, and here); False if ``timeout_s`` passed first."""
        end = None if timeout_s is None else time.monotonic() + timeout_s
        me = threading.get_ident()
        with self._followers:
            lead = self._leader is None
            if lead:
                self._leader = me
        if not lead:
            self.loop.call_soon_threadsafe(hand_in)
        while True:
            if lead:
                try:
                    if hand_in is not None:
                        hand_in()
                        hand_in = None  # type: ignore[assignment]
                    while not done():
                        left = None if end is None else end - time.monotonic()
                        if left is not None and left <= 0:
                            return False
                        self.loop.run_once(max_wait_s=left)
                    return True
                finally:
                    self._leave()
            with self._followers:
                self._waiting_followers += 1
                try:
                    while not done() and self._leader is not None:
                        left = None if end is None else end - time.monotonic()
                        if left is not None and left <= 0:
                            return False
                        self._followers.wait(left)
                finally:
                    self._waiting_followers -= 1
                if done():
                    return True
                self._leader, lead = me, True
                hand_in = None  # type: ignore[assignment]  # handed in through the queue

    def changed(self) -> None:
        """Call in the loop's thread when something a waiter waits for has happened."""
        with self._followers:
            if self._waiting_followers:
                self._followers.notify_all()

    def stop(self) -> None:
        with self._followers:
            self._stopping = True
        try:
            os.write(self._stop_w, b"\0")
        except OSError:
            pass
        if self._thread.is_alive():
            self._thread.join()
        self._idle.close()
        self._timer.close()
        for fd in (self._stop_r, self._stop_w):
            os.close(fd)

    def _leave(self) -> None:
        """Give up the lead: arm the timer for what is due next (it wakes nobody now), hand
        the lead to a caller that waits for it, and re-arm what woke the background thread
        while this one led (what is still pending wakes it now: it leads next)."""
        self._timer.arm(self.loop.next_due())
        with self._followers:
            self._leader = None
            rearm, self._rearm = self._rearm, False
            if self._waiting_followers:
                self._followers.notify_all()
        if rearm:
            for fd in list(self._idle_fds):
                self._arm_fd(fd, again=True)

    def _arm_fd(self, fd: int, again: bool = False) -> None:
        try:
            if again:
                self._idle.modify(fd, select.EPOLLIN | select.EPOLLONESHOT)
            else:
                self._idle.register(fd, select.EPOLLIN | select.EPOLLONESHOT)
                self._idle_fds.add(fd)
        except (OSError, ValueError):
            self._idle_fds.discard(fd)  # closed meanwhile: its unwatch follows

    def _on_urgent(self, source: Any, add: bool) -> None:
        fd = source if isinstance(source, int) else source.fileno()
        if add:
            self._arm_fd(fd)
            return
        self._idle_fds.discard(fd)
        try:
            self._idle.unregister(fd)
        except (OSError, ValueError):
            pass  # already gone

    def _background(self) -> None:
        lead = True  # first: whatever is due at the start
        while True:
            with self._followers:
                if self._stopping:
                    return
                if lead and self._leader is None:
                    self._leader = threading.get_ident()
                else:
                    lead = False
            if lead:
                try:
                    self._timer.clear()
                    self.loop.run_once(max_wait_s=0)
                finally:
                    self._leave()
            # the timer, an urgent fd, or the stop; what woke it stays disarmed until a
            # leader leaves: while a caller leads, that caller handles the event (it polls
            # the same fds), and this thread neither waits for it nor is woken by it again
            self._idle.poll()
            with self._followers:
                self._rearm = True
            lead = True
