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

Streams: every write names its stream (``STDOUT`` or ``STDERR``). The shared file holds them
merged, in order (what a task reports by default, and what survives a child that died). A
task that asks for them apart (``separate_stderr``) also has the spans of each stream
recorded, in the child's memory, so its result carries each stream's own text. A task that
asks for streaming (``stream``) has what it accepts handed to the sink the child set
(``stream_to``): a frame on its task channel (``runtimes.protocol.encode_output``), line by
line as a terminal's stdout is (at each newline, at a switch of stream, at ``flush()`` and at
the task's end), so that a ``print`` is one frame and not one per piece it writes. The cap
binds all of it: what is cut is neither kept nor streamed.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Callable

HEADER = struct.Struct("<QB7x")
STDOUT = 1
STDERR = 2
STREAM_NAMES = {STDOUT: "stdout", STDERR: "stderr"}

Sink = Callable[[int, bytes], None]
_sink: Sink | None = None  # set by the child for a task that streams (``stream_to``)


def stream_to(sink: Sink | None) -> None:
    """Where the next buffer made with ``streaming=True`` sends what it accepts (None: no
    more streaming)."""
    global _sink
    _sink = sink


_PROGRESS = struct.Struct("<QB")  # what a write updates: the attempt's byte after it stays


class OutputBuffer:
    """The first ``cap`` bytes written, and whether more came."""

    def __init__(self, cap: int, shared: mmap.mmap | None = None, *,
                 separate: bool = False, streaming: bool = False) -> None:
        self._shared = shared
        # (stream, start, end) of each run of writes to one stream, when kept apart
        self._spans: list[list[int]] | None = [] if separate else None
        self._sink = _sink if streaming else None
        self._pending: list[bytes] = []  # accepted, not streamed yet (no newline yet)
        self._pending_stream = STDOUT
        if shared is not None:
            cap = min(cap, len(shared) - HEADER.size)
            HEADER.pack_into(shared, 0, 0, 0)
        self.cap = max(0, cap)
        self._parts: list[bytes] = []
        self.size = 0
        self.truncated = False

    def write(self, data: bytes, stream: int = STDOUT) -> None:
        room = self.cap - self.size
        if len(data) > room:
            data, self.truncated = data[:room], True
        if data:
            if self._spans is not None:
                last = self._spans[-1] if self._spans else None
                if last is not None and last[0] == stream:
                    last[2] += len(data)
                else:
                    self._spans.append([stream, self.size, self.size + len(data)])
            if self._sink is not None:
                if self._pending and self._pending_stream != stream:
                    self.flush()
                self._pending.append(data)
                self._pending_stream = stream
                if b"\n" in data:
                    self.flush()
            if self._shared is not None:
                start = HEADER.size + self.size
                self._shared[start:start + len(data)] = data
            else:
                self._parts.append(data)
            self.size += len(data)
        if self._shared is not None:
            _PROGRESS.pack_into(self._shared, 0, self.size, self.truncated)

    def flush(self) -> None:
        """Stream what is accepted and not streamed yet (nothing for a task that does not
        stream)."""
        if self._pending and self._sink is not None:
            data = b"".join(self._pending)
            self._pending.clear()
            self._sink(self._pending_stream, data)

    def mark_truncated(self) -> None:
        if not self.truncated:
            self.truncated = True
            if self._shared is not None:
                _PROGRESS.pack_into(self._shared, 0, self.size, 1)

    def _raw(self) -> bytes:
        if self._shared is not None:
            return self._shared[HEADER.size:HEADER.size + self.size]
        return b"".join(self._parts)

    def getvalue(self) -> str:
        """Everything written, both streams merged in order."""
        return self._raw().decode("utf-8", "ignore")

    def streams(self) -> tuple[str, str]:
        """(stdout, stderr), each stream's own text; both merged in the first when the
        streams were not kept apart."""
        if self._spans is None:
            return self.getvalue(), ""
        raw = self._raw()
        parts: dict[int, list[bytes]] = {STDOUT: [], STDERR: []}
        for stream, start, end in self._spans:
            parts[stream].append(raw[start:end])
        return (b"".join(parts[STDOUT]).decode("utf-8", "ignore"),
                b"".join(parts[STDERR]).decode("utf-8", "ignore"))


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
