"""Each test names what a task cannot do with its own directory (a pool with files_mb), and
asserts the exact outcome. Every import is allowed: the kernel's walls must hold alone."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from sandbox import PoolConfig, Sandbox, Status


@pytest.fixture(scope="module")
def files_sandbox() -> Iterator[Sandbox]:
    with Sandbox(PoolConfig(size=2, files_mb=1, stdlib_allow=("*",))) as sb:
        yield sb


def test_cant_see_a_concurrent_tasks_files(files_sandbox):
    """Task A writes its secret and waits; task B, running at the same time in the same
    jail, lists its own directory and finds nothing of A's."""
    seen: list[object] = []
    a = threading.Thread(target=lambda: seen.append(files_sandbox.run(
        "python", "import time\nopen('secret', 'w').write('A')\ntime.sleep(1.5)", timeout_s=10)))
    a.start()
    try:
        b = files_sandbox.run("python", "import os, time\ntime.sleep(0.5)\n"
                              "return os.listdir('.'), os.listdir('/work')", timeout_s=10)
    finally:
        a.join()
    assert (b.status, b.value) == (Status.OK, [[], []])


def test_cant_write_outside_its_directory(files_sandbox):
    r = files_sandbox.run("python", "open('/sandbox/x', 'w')")
    assert (r.status, r.error.type) == (Status.ERROR, "OSError")


def test_cant_make_a_symlink_to_smuggle_a_file_out(files_sandbox):
    r = files_sandbox.run("python", "import os\nos.symlink('/etc/passwd', 'p')",
                          return_files=True)
    assert (r.status, r.error.type, r.files) == (Status.ERROR, "PermissionError", {})


def test_cant_hard_link_either(files_sandbox):
    r = files_sandbox.run("python", "import os\nos.link('/etc/passwd', 'p')")
    assert (r.status, r.error.type) == (Status.ERROR, "PermissionError")


def test_cant_mount_even_in_a_jail_that_lets_children_mount(files_sandbox):
    r = files_sandbox.run("python", "import ctypes\nlibc = ctypes.CDLL(None)\n"
                          "libc.mount(b'tmpfs', b'/work', b'tmpfs', 0, None)")
    assert r.status is Status.VIOLATION


def test_cant_unshare_a_namespace(files_sandbox):
    r = files_sandbox.run("python", "import ctypes\nctypes.CDLL(None).unshare(0x20000)")
    assert r.status is Status.VIOLATION


def test_holds_no_capability(files_sandbox):
    code = ("import ctypes\nlibc = ctypes.CDLL(None)\nheader = (ctypes.c_uint32 * 2)(0x20080522, 0)\n"
            "data = (ctypes.c_uint32 * 6)()\nassert libc.capget(header, data) == 0\n"
            "return list(data)")
    r = files_sandbox.run("python", code)
    assert (r.status, r.value) == (Status.OK, [0] * 6)


@pytest.mark.parametrize("name, message", [
    ("../escape", "file name '../escape' has a '..' component"),
    ("/etc/passwd", "file name '/etc/passwd' is absolute (names are relative to the task's "
                    "directory)"),
    ("a/../../b", "file name 'a/../../b' has a '..' component"),
    ("a\x00b", "file name 'a\\x00b' holds a NUL"),
])
def test_cant_pass_a_file_named_outside_its_directory(files_sandbox, name, message):
    r = files_sandbox.run("python", "return 1", files={name: "x"})
    assert (r.status, r.message) == (Status.REJECTED, message)


def test_cant_pass_more_than_its_directory_holds(files_sandbox):
    r = files_sandbox.run("python", "return 1", files={"big": bytes(2 << 20)})
    assert (r.status, r.message) == (
        Status.REJECTED, "files hold 2097152 bytes, over the task's directory of 1048576 bytes "
                         "(files_mb)")


# -- sessions: one directory per session, for its whole life, seen by no other -----------------

def test_cant_see_another_sessions_files(files_sandbox):
    """Session A keeps a secret in its directory; session B, open at the same time in the
    same jail, finds its own directory empty, and no other process's root to look through."""
    with files_sandbox.session("python") as a, files_sandbox.session("python") as b:
        a.upload({"secret": "A"})
        a.run("open('written', 'w').write('A')")
        r = b.run("import glob, os\n"
                  "return os.listdir('.'), glob.glob('/proc/*/root/work/*'), "
                  "glob.glob('/proc/*/cwd/*')", return_files=True)
        assert (r.status, r.value, r.files) == (Status.OK, [[], [], []], {})


def test_cant_see_a_sessions_files_from_a_task(files_sandbox):
    with files_sandbox.session("python") as s:
        s.upload({"secret": "S"})
        r = files_sandbox.run("python", "import os\nreturn os.listdir('/work')")
        assert (r.status, r.value) == (Status.OK, [])


def test_cant_upload_a_file_named_outside_the_sessions_directory(files_sandbox):
    with files_sandbox.session("python") as s:
        results = [s.upload({name: "x"}) for name in ("../escape", "/etc/passwd", "a/../../b")]
        assert [r.status for r in results] == [Status.REJECTED] * 3


def test_cant_make_a_link_in_a_session_to_download_a_host_file(files_sandbox):
    with files_sandbox.session("python") as s:
        made = s.run("import os\nos.symlink('/etc/passwd', 'p')")
        down = s.download()
        assert (made.status, made.error.type, down.files, down.files_skipped) == (
            Status.ERROR, "PermissionError", {}, {})
