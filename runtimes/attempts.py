"""What a child was attempting when its seccomp filter killed it, for the ``violation``
message ("killed for a forbidden operation (seccomp: SIGSYS): socket.connect").

A filter that kills (SECCOMP_RET_KILL_PROCESS) leaves nothing behind but SIGSYS: not the
system call, and nothing of the Python that made it. Python's audit events come just before
the calls a snippet has no business with (``os.fork``, ``subprocess.Popen``,
``socket.connect``, ``ctypes.dlopen``...). An audit hook, installed once in the zygote and so
inherited by every child, writes the code of the latest such event into a reserved byte of
the child's shared output file (``runtimes.output``): a store into a mapping, no system
call, so it is there when the kernel kills the child on the next instruction. The host reads
it only for a task that ended as a violation.

What it says is the last guarded operation the snippet started, as the snippet's own
process recorded it: a forbidden call without an audit event of its own is reported as the
guarded operation before it, if any (else the message names none). It is a hint in a
message, never a decision: the status comes from the kill alone. Hooks cannot be removed;
the snippet could at most garble the byte, and so the message.
"""

from __future__ import annotations

import mmap
import sys
from typing import Any

# Audit events before calls the child filter kills for (seccomp/policy.py: CHILD_KILL and
# the fork-like clone), by code (index + 1). Append only: the code is what the host reads.
GUARDED = (
    "os.fork", "os.forkpty", "os.exec", "os.posix_spawn", "os.system", "subprocess.Popen",
    "socket.connect", "socket.bind", "os.kill", "os.killpg", "signal.pthread_kill",
    "ctypes.dlopen", "ctypes.dlsym", "ctypes.call_function", "os.chroot", "pty.spawn",
)
_CODES = {event: code for code, event in enumerate(GUARDED, 1)}
NOTE_AT = 9  # the first reserved byte of runtimes.output's header

_target: list[mmap.mmap | None] = [None]


def _hook(event: str, args: tuple[Any, ...]) -> None:
    code = _CODES.get(event)
    if code is not None:
        shared = _target[0]
        if shared is not None:
            shared[NOTE_AT] = code


def install() -> None:
    """In the zygote, once: every child it forks inherits the hook."""
    sys.addaudithook(_hook)


def watch(shared: mmap.mmap | None) -> None:
    """In a child: record into its shared output file from now on."""
    _target[0] = shared


def name(code: int) -> str | None:
    """The guarded operation a note's code stands for (None for 0 or a code not in use)."""
    return GUARDED[code - 1] if 0 < code <= len(GUARDED) else None
