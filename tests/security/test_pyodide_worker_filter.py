"""The worker filter on a real kernel: one exec through the listener, then none.

A forked process does what a Pyodide worker's launch does (``launch.exec_filtered``) but execs
a small Python program instead of Node.js, which then tries what Node never needs.
"""

from __future__ import annotations

import os
import signal
import sys

import seccomp
from runtimes.pyodide import launch

ENOSYS = 38
EPERM = 1


def exec_under_worker_filter(code: str) -> int:
    """Fork, install the worker filter, exec ``python -c code``; the wait status."""
    f = seccomp.worker_filter()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the forked child
        try:
            launch.exec_filtered(f.program, f.pid_slots, [sys.executable, "-I", "-S", "-c", code], {})
        finally:
            os._exit(70)
    _, status = os.waitpid(pid, 0)
    return status


def exit_code(status: int) -> int | None:
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else None


def test_the_first_exec_goes_through() -> None:
    assert exit_code(exec_under_worker_filter("raise SystemExit(7)")) == 7


def test_cant_exec_a_second_time() -> None:
    code = ("import os\ntry:\n    os.execv('/bin/true', ['true'])\nexcept OSError as e:\n"
            "    raise SystemExit(e.errno)")
    assert exit_code(exec_under_worker_filter(code)) == ENOSYS


def test_cant_fork_after_the_exec() -> None:
    status = exec_under_worker_filter("import os\nos.fork()")
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS


def test_cant_create_sockets_after_the_exec() -> None:
    """As for a child: creating one fails with EPERM (library probes fall back)."""
    code = ("import socket\ntry:\n    socket.socket()\nexcept PermissionError as e:\n"
            "    raise SystemExit(e.errno)")
    assert exit_code(exec_under_worker_filter(code)) == EPERM


def test_cant_connect_after_the_exec() -> None:
    code = ("import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            "libc.connect(0, None, 0)")
    status = exec_under_worker_filter(code)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS


def test_io_uring_setup_fails_with_enosys() -> None:
    code = ("import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            "libc.syscall(425, 8, None)\nraise SystemExit(ctypes.get_errno())")
    assert exit_code(exec_under_worker_filter(code)) == ENOSYS


def test_threads_work_after_the_exec() -> None:
    code = "import threading\nt = threading.Thread(target=lambda: None)\nt.start()\nt.join()"
    assert exit_code(exec_under_worker_filter(code)) == 0
