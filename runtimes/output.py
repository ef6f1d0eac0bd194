"""A snippet's captured output, kept where the host can still read it if the child dies.

The child keeps what the snippet prints in a buffer of at most the task's ``stdout_bytes``
(UTF-8). When the host hands a shared memory file in with the child's spawn (a memfd, as
SCM_RIGHTS), that buffer is the child's mapping of it: every write lands in the file, with
no system call, and a task that ends without a result (timeout, an OOM kill, a crash) still
comes back with what it printed up to then. Otherwise the buffer is the child's own memory.

Layout of the shared file: a header (the length written so far, 8 bytes little-endian; a
truncated flag, 1 byte; the code of the last guarded operation the snippet started, 1 byte,
``runtimes.attempts``; 6 bytes reserved), then the bytes. The host does not map it: it
reads it with ``pread`` only when a task ended without a result (``read_shared``), as
untrusted, every number clamped to the file and the task's cap; a mapping of its own would
cost the host a page fault per task and a TLB shootdown per child at its unmapping.
"""

from __future__ import annotations

import mmap
import os
import struct

HEADER = struct.Struct("<QB7x")
_PROGRESS = struct.Struct("<QB")  # what a write updates: the attempt's byte after it stays


class OutputBuffer:
    """The first ``cap`` bytes written, and whether more came."""

    def __init__(self, cap: int, shared: mmap.mmap | None = None) -> None:
        self._shared = shared
        if shared is not None:
            cap = min(cap, len(shared) - HEADER.size)
            HEADER.pack_into(shared, 0, 0, 0)
        self.cap = max(0, cap)
        self._parts: list[bytes] = []
        self.size = 0
        self.truncated = False

    def write(self, data: bytes) -> None:
        room = self.cap - self.size
        if len(data) > room:
            data, self.truncated = data[:room], True
        if data:
            if self._shared is not None:
                start = HEADER.size + self.size
                self._shared[start:start + len(data)] = data
            else:
                self._parts.append(data)
            self.size += len(data)
        if self._shared is not None:
            _PROGRESS.pack_into(self._shared, 0, self.size, self.truncated)

    def mark_truncated(self) -> None:
        if not self.truncated:
            self.truncated = True
            if self._shared is not None:
                _PROGRESS.pack_into(self._shared, 0, self.size, 1)

    def getvalue(self) -> str:
        if self._shared is not None:
            raw = self._shared[HEADER.size:HEADER.size + self.size]
        else:
            raw = b"".join(self._parts)
        return raw.decode("utf-8", "ignore")


EMPTY = HEADER.pack(0, 0)


def read_shared(fd: int, size: int, cap: int) -> tuple[str, bool]:
    """What a (possibly dead, possibly hostile) child left in a shared output file of
    ``size`` bytes."""
    header = os.pread(fd, HEADER.size, 0)
    if len(header) < HEADER.size:
        return "", False
    length, flag = HEADER.unpack(header)
    length = max(0, min(length, cap, size - HEADER.size))
    raw = os.pread(fd, length, HEADER.size) if length else b""
    return raw.decode("utf-8", "ignore"), bool(flag)


def read_attempt(fd: int) -> int:
    """The code of the last guarded operation a dead child started (``runtimes.attempts``),
    0 for none."""
    raw = os.pread(fd, 1, _PROGRESS.size)
    return raw[0] if raw else 0
