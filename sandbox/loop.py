"""One thread's poll loop: the only place a host process waits.

A process of this service (a runner, the local API's background thread, an n8n runner) owns
all its file descriptors in one loop: sockets and channels are ``watch``ed with a handler,
timed work comes from ``Timed`` sources (``wake_at()`` says when, ``on_time(now)`` does it),
and other threads hand work in with ``call_soon_threadsafe`` (a queue plus a wake pipe, which
is also what a signal handler may write to: ``wake_fd``). The loop sleeps until one of those
is due; it never polls on a fixed interval.

The poller is ``select.poll`` by default; a loop that also waits on ZeroMQ sockets is given a
``zmq.Poller`` (same interface; it accepts plain fds too).
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
        self.thread: threading.Thread | None = None  # the thread running it, once it runs

    def watch(self, source: Any, handler: Callable[[int], None]) -> None:
        """Call ``handler(events)`` whenever ``source`` (an fd or a ZeroMQ socket) is readable."""
        self._poller.register(source, POLLIN)
        self._handlers[source] = handler

    def unwatch(self, source: Any) -> None:
        """Stop watching ``source``: call this BEFORE closing it (its number may be reused)."""
        if self._handlers.pop(source, None) is not None:
            self._poller.unregister(source)

    def watching(self, source: Any) -> bool:
        return source in self._handlers

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

    def run_once(self, max_wait_s: float | None = None) -> None:
        """Wait for the next event or due time (at most ``max_wait_s``) and handle it."""
        wake = None
        for timed in self._timed:
            at = timed.wake_at()
            if at is not None and (wake is None or at < wake):
                wake = at
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
