"""The per-child filter on a real kernel: a forked process installs it, then tries things."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Callable

import pytest

import seccomp
from runtimes import seccomp_filter


def run_filtered(action: Callable[[], None]) -> int:
    """Fork, install the child filter, run ``action``; return the wait status."""
    f = seccomp.child_filter()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the forked child
        code = 3
        try:
            seccomp_filter.install(f.program, f.pid_slots, os.getpid())
            action()
            code = 0
        except OSError:
            code = 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return status


def killed_by_sigsys(status: int) -> bool:
    return os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS


def test_cant_open_sockets() -> None:
    """EPERM, not a kill: library code probes for local services (nscd, uuidd) and must get
    an error it handles (seccomp/policy.py); the code 1 is the OSError it caught."""
    status = run_filtered(lambda: socket.socket().close())
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 1


def test_cant_connect_even_with_a_socket_number() -> None:
    """connect() itself kills: no library calls it without a socket, so only a probe does."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    assert killed_by_sigsys(run_filtered(lambda: libc.connect(0, None, 0)))


def test_cant_fork() -> None:
    assert killed_by_sigsys(run_filtered(lambda: os._exit(0) if os.fork() == 0 else None))


def test_cant_exec() -> None:
    assert killed_by_sigsys(run_filtered(lambda: os.execv("/bin/true", ["true"])))


def test_cant_signal_other_processes() -> None:
    parent = os.getpid()
    assert killed_by_sigsys(run_filtered(lambda: os.kill(parent, 0)))


def test_cant_signal_its_process_group() -> None:
    assert killed_by_sigsys(run_filtered(lambda: os.kill(0, 0)))


def test_can_signal_itself() -> None:
    status = run_filtered(lambda: os.kill(os.getpid(), signal.SIGUSR1))
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGUSR1


def test_ordinary_work_is_allowed() -> None:
    def work() -> None:
        with open("/proc/self/status") as f:
            f.read()
        os.urandom(16)

    status = run_filtered(work)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_rejects_a_malformed_program() -> None:
    with pytest.raises(ValueError):
        seccomp_filter.install(b"\x00" * 7, (), 1)
