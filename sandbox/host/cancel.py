"""A cancellation token: ``set()`` from any thread; whoever listens is told at once."""

from __future__ import annotations

import threading
from collections.abc import Callable


class CancelToken:
    """One-shot: once set, stays set. ``on_set(fn)`` calls ``fn`` when it is set (at once if
    it already is), in the thread that sets it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._set = False
        self._listeners: list[Callable[[], None]] = []

    def set(self) -> None:
        with self._lock:
            if self._set:
                return
            self._set = True
            listeners, self._listeners = self._listeners, []
        for fn in listeners:
            fn()

    def is_set(self) -> bool:
        return self._set

    def on_set(self, fn: Callable[[], None]) -> None:
        with self._lock:
            if not self._set:
                self._listeners.append(fn)
                return
        fn()
