"""The jail-wide layer on its own: a cold nsjail with the jail policy but no child filter.

Each layer must hold even if the one inside it fails; here the per-child filter and limits
are absent, and the jail's allow-list and namespaces still deny.
"""

from __future__ import annotations

import os
import subprocess

import seccomp
from sandbox.jail import launch, mounts


def run_in_bare_jail(code: str) -> subprocess.CompletedProcess[str]:
    argv = launch.nsjail_argv(
        launch.locate_nsjail(None),
        [mounts.JAIL_PYTHON, "-I", "-S", "-B", "-c", code],
        seccomp_policy=seccomp.jail_policy(),
        cgroup_args=(),
        mounts=mounts.mounts_for("python", mounts.interpreter()),
        as_root=os.geteuid() == 0,
    )
    argv[argv.index("--time_limit") + 1] = "20"
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, env={})


def test_cant_open_sockets_even_without_the_child_filter() -> None:
    r = run_in_bare_jail(
        "import socket\n"
        "try:\n    socket.socket()\nexcept PermissionError:\n    print('EPERM')"
    )
    assert r.stdout.strip() == "EPERM", r.stderr


def test_cant_ptrace_or_mount_even_without_the_child_filter() -> None:
    r = run_in_bare_jail(
        "import ctypes, os\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "print(libc.ptrace(16, 1, 0, 0), ctypes.get_errno())\n"  # PTRACE_ATTACH to pid 1
        "print(libc.mount(b'none', b'/', b'tmpfs', 0, None), ctypes.get_errno())"
    )
    assert r.stdout.split() == ["-1", "1", "-1", "1"], r.stderr


def test_runs_as_an_unprivileged_user_with_no_host_view() -> None:
    r = run_in_bare_jail("import os\nprint(os.getuid(), os.getpid(), ','.join(sorted(os.listdir('/'))),"
                         " ','.join(sorted(os.listdir('/etc'))))")
    uid, pid, root, etc = r.stdout.split()
    assert pid == "1"
    if os.geteuid() == 0:
        assert uid == "1000"
    assert "proc" not in root.split(",") and "root" not in root.split(",")
    # /etc holds only the jail's own user database (sandbox/jail/launch.py), nothing of the host's
    assert etc.split(",") == ["group", "nsswitch.conf", "passwd"]
