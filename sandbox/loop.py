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

import logging
import math
import os
import select
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger("sandbox.loop")

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


class SharedLoop:
    """A loop driven by the threads that wait on it, and by a background thread between them.

    A caller hands its work in and waits for its own answer. If no thread is running the loop,
    the caller runs it itself while it waits (it leads): its task is sent, and its result read,
    in its own thread, with no hand-off between threads on the way. A caller that finds the
    loop led by another thread hands its work in through the loop's queue and wake pipe and
    waits; when the leader leaves before the follower's answer came, the follower leads. The
    background thread leads only between callers, briefly, for what is due then (a frozen
    child's release, a refill's report, a jail that died: the fds marked urgent wake it).
    At most one thread runs the loop at any moment: the loop's state has one owner at a time.
    """

    def __init__(self, loop: Loop) -> None:
        self.loop = loop
        self._cond = threading.Condition()
        self._leader: int | None = None  # the thread running the loop now, if any
        self._stopping = False
        self._idle = select.epoll()
        self._kick_r, self._kick_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._idle.register(self._kick_r, select.EPOLLIN)
        loop.on_urgent = self._on_urgent
        for source in loop.urgent():
            self._on_urgent(source, True)
        self._thread = threading.Thread(target=self._background, name="sandbox-loop", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def run_until(self, hand_in: Callable[[], None], done: Callable[[], bool],
                  timeout_s: float | None = None) -> bool:
        """Run ``hand_in`` in the loop, then wait until ``done()`` (checked in the loop's
        thread after each event, and here); False if ``timeout_s`` passed first."""
        end = None if timeout_s is None else time.monotonic() + timeout_s
        me = threading.get_ident()
        with self._cond:
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
            with self._cond:
                while not done() and self._leader is not None:
                    left = None if end is None else end - time.monotonic()
                    if left is not None and left <= 0:
                        return False
                    self._cond.wait(left)
                if done():
                    return True
                self._leader, lead = me, True
                hand_in = None  # type: ignore[assignment]  # handed in through the queue

    def changed(self) -> None:
        """Call in the loop's thread when something a waiter waits for has happened."""
        with self._cond:
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._kick()
        if self._thread.is_alive():
            self._thread.join()
        self._idle.close()
        for fd in (self._kick_r, self._kick_w):
            os.close(fd)

    def _leave(self) -> None:
        with self._cond:
            self._leader = None
            self._cond.notify_all()
        self._kick()  # the background thread looks at what became due meanwhile

    def _kick(self) -> None:
        try:
            os.write(self._kick_w, b"\0")
        except OSError:
            pass

    def _on_urgent(self, source: Any, add: bool) -> None:
        fd = source if isinstance(source, int) else source.fileno()
        try:
            if add:
                self._idle.register(fd, select.EPOLLIN)
            else:
                self._idle.unregister(fd)
        except (OSError, ValueError):
            pass  # already gone

    def _background(self) -> None:
        while True:
            with self._cond:
                while self._leader is not None and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                self._leader = threading.get_ident()
            try:
                self.loop.run_once(max_wait_s=0)
                due = self.loop.next_due()
            finally:
                with self._cond:
                    self._leader = None
                    self._cond.notify_all()
            timeout = -1.0 if due is None else max(0.0, due - time.monotonic())
            for fd, _ in self._idle.poll(timeout):
                if fd == self._kick_r:
                    try:
                        while os.read(self._kick_r, 4096):
                            pass
                    except BlockingIOError:
                        pass
