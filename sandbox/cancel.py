"""A cancellation token a waiting thread can poll on: set() from any thread wakes it at once."""

from __future__ import annotations

import os


class CancelToken:
    """One-shot: once set, stays set. ``fileno()`` becomes readable when it is set."""

    def __init__(self) -> None:
        self._fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._set = False

    def set(self) -> None:
        if not self._set:
            self._set = True
            try:
                os.eventfd_write(self._fd, 1)
            except OSError:
                pass  # closed: nobody is waiting any more

    def is_set(self) -> bool:
        return self._set

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
