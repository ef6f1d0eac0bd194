"""The note of what a child attempted before a seccomp kill: written by an audit hook into
the shared output file's header, never over the output's own bookkeeping."""

from __future__ import annotations

import mmap
import os

from runtimes import attempts, output


def test_output_writes_keep_the_attempt_and_a_new_task_clears_it():
    fd = os.memfd_create("t")
    os.ftruncate(fd, 4096)
    shared = mmap.mmap(fd, 4096)
    try:
        buf = output.OutputBuffer(100, shared)
        shared[attempts.NOTE_AT] = attempts.GUARDED.index("socket.connect") + 1
        buf.write(b"hello")
        buf.mark_truncated()
        kept = attempts.name(output.read_attempt(fd))
        output.OutputBuffer(100, shared)  # the next task's buffer
        assert (kept, output.read_shared(fd, 4096, 100), output.read_attempt(fd)) == (
            "socket.connect", ("", False), 0)
    finally:
        shared.close()
        os.close(fd)


def test_a_code_not_in_use_names_nothing():
    assert [attempts.name(c) for c in (0, len(attempts.GUARDED) + 1, 255)] == [None] * 3
