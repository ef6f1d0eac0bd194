"""Ordinary code must not die, and what a snippet printed survives its failure (issue 14)."""

from __future__ import annotations

import pytest

from sandbox import PoolConfig, Sandbox, Status


@pytest.mark.parametrize("code, value", [
    ("import os\nreturn os.path.expanduser('~')", "/home/sandbox"),
    ("import sysconfig\nreturn sysconfig.get_paths()['stdlib']", "/usr/lib/python3.11"),
    ("import zoneinfo\nreturn str(zoneinfo.ZoneInfo('Europe/Paris'))", "Europe/Paris"),
    ("import getpass\nreturn getpass.getuser()", "sandbox"),
])
def test_library_code_that_looks_the_user_up_runs(sandbox, code, value):
    r = sandbox.run("python", code)
    assert (r.status, r.value) == (Status.OK, value), r.message


def test_uuid1_runs_under_the_default_allow_list(default_sandbox):
    """libuuid asks its daemon over a socket first; the refusal (EPERM) makes it fall back."""
    r = default_sandbox.run("python", "import uuid\nu = uuid.uuid1()\nreturn u.version")
    assert (r.status, r.value) == (Status.OK, 1), r.message


def test_a_snippets_own_socket_is_refused_with_an_error(sandbox):
    r = sandbox.run("python", "import socket\nsocket.socket(socket.AF_INET, socket.SOCK_STREAM)")
    assert (r.status, r.error.type) == (Status.ERROR, "PermissionError")


# -- what was printed survives ------------------------------------------------------------------


@pytest.mark.parametrize("code, status", [
    ("print('started')\nwhile True: pass", Status.TIMEOUT),
    ("print('started')\nimport ctypes\nctypes.string_at(0)", Status.CRASHED),  # SIGSEGV
    ("print('started')\nimport os\nos._exit(3)", Status.CRASHED),
])
def test_python_output_before_a_failure_comes_back(sandbox, code, status):
    r = sandbox.run("python", code, timeout_s=1)
    assert (r.status, r.stdout) == (status, "started\n")


def test_python_output_before_a_cgroup_oom_kill_comes_back():
    with Sandbox(PoolConfig(size=1, jail_memory_mb=256)) as sb:
        r = sb.run("python", "print('started')\nx = b'x' * (400 * 1024 * 1024)", memory_mb=2048,
                   timeout_s=20)
        assert (r.status, r.stdout) == (Status.MEMORY_LIMIT, "started\n")


def test_output_kept_on_a_timeout_is_still_capped(sandbox):
    r = sandbox.run("python", "print('x' * 5000)\nwhile True: pass", timeout_s=0.5, stdout_bytes=1000)
    assert (r.status, len(r.stdout), r.truncated) == (Status.TIMEOUT, 1000, True)


def test_javascript_output_before_a_timeout_comes_back():
    with Sandbox(PoolConfig(size=1), runtimes=("javascript",)) as sb:
        r = sb.run("javascript", "console.log('started'); while (true) {}", timeout_s=1)
        assert (r.status, r.stdout) == (Status.TIMEOUT, "started\n")
        assert r.message == "exceeded the wall-clock timeout of 1 s"
