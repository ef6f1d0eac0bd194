"""Install a compiled seccomp BPF program on the calling process (inside the jail, no library).

The program arrives compiled from ``seccomp/`` through the zygote's ``init`` message; the child
writes its own pid into the program's pid slots so that ``kill`` may target only itself.
After this call the filter cannot be removed, only stacked with stricter ones.
"""

from __future__ import annotations

import ctypes
import os
import struct

_PR_SET_NO_NEW_PRIVS = 38
_SYS_SECCOMP = 317  # x86_64; the program itself kills every other architecture
_SECCOMP_SET_MODE_FILTER = 1
_SECCOMP_FILTER_FLAG_TSYNC = 1
_SECCOMP_FILTER_FLAG_NEW_LISTENER = 8
_INSTRUCTION_SIZE = 8

_libc = ctypes.CDLL(None, use_errno=True)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install(program: bytes, pid_slots: tuple[int, ...] | list[int], pid: int, *,
            listener: bool = False) -> int:
    """Patch ``pid`` into ``program`` and install it; raise OSError if the kernel refuses.

    With ``listener`` the kernel returns a notification fd (close-on-exec) for the
    program's user-notify rules, and the filter covers the calling thread only (the kernel
    refuses TSYNC with a listener): call it from the thread that will exec (the pyodide
    worker's launch). Returns that fd, else 0."""
    patched = patch_pid(program, pid_slots, pid)
    # the kernel copies the program: it is read where the bytes object holds it, through a
    # type that exists already (a buffer of the program's size would be a new ctypes class,
    # which a worker would then have to survey: runtimes/python/leftovers.py)
    buffer = ctypes.c_char_p(patched)
    prog = _SockFprog(len(patched) // _INSTRUCTION_SIZE, ctypes.cast(buffer, ctypes.c_void_p))
    if _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        _raise("prctl(PR_SET_NO_NEW_PRIVS)")
    # TSYNC: the filter covers every thread of the child, should the interpreter have any.
    flags = _SECCOMP_FILTER_FLAG_NEW_LISTENER if listener else _SECCOMP_FILTER_FLAG_TSYNC
    rc = _libc.syscall(_SYS_SECCOMP, _SECCOMP_SET_MODE_FILTER, flags, ctypes.byref(prog))
    if rc < 0 or (rc != 0 and not listener):
        _raise("seccomp(SET_MODE_FILTER)")
    return int(rc)


def patch_pid(program: bytes, pid_slots: tuple[int, ...] | list[int], pid: int) -> bytes:
    """``program`` with ``pid`` written into the ``k`` field of every pid slot (the one
    patch there is: the host's tests run this very function on the compiled program)."""
    if not program or len(program) % _INSTRUCTION_SIZE:
        raise ValueError("seccomp program is empty or not a whole number of instructions")
    patched = bytearray(program)
    for slot in pid_slots:
        struct.pack_into("=I", patched, slot * _INSTRUCTION_SIZE + 4, pid)
    return bytes(patched)


def _raise(what: str) -> None:
    errno = ctypes.get_errno()
    raise OSError(errno, f"{what} failed: {os.strerror(errno)}")
