"""A task's own directory, through real jails: files in, files out, its size cap."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox import PoolConfig, Sandbox, Status


@pytest.fixture(scope="module")
def files_sandbox() -> Iterator[Sandbox]:
    with Sandbox(PoolConfig(size=2, files_mb=2, stdlib_allow=("*",))) as sb:
        yield sb


def test_files_go_in_and_what_the_task_wrote_comes_back(files_sandbox):
    code = ("import os\nopen('out.txt', 'w').write(open('in/a.txt').read().upper())\n"
            "os.makedirs('d')\nopen('d/b.bin', 'wb').write(bytes(3))\nreturn os.getcwd()")
    r = files_sandbox.run("python", code, files={"in/a.txt": "hello"}, return_files=True)
    assert (r.status, r.value, r.files, r.files_skipped) == (
        Status.OK, "/work", {"in/a.txt": b"hello", "out.txt": b"HELLO", "d/b.bin": bytes(3)}, {})


def test_without_return_files_nothing_comes_back(files_sandbox):
    r = files_sandbox.run("python", "open('x', 'w').write('1')")
    assert (r.status, r.files) == (Status.OK, None)


def test_each_task_starts_from_an_empty_directory(files_sandbox):
    files_sandbox.run("python", "open('left-behind', 'w').write('1')")
    r = files_sandbox.run("python", "import os\nreturn os.listdir('.')")
    assert (r.status, r.value) == (Status.OK, [])


def test_a_file_over_the_directorys_size_is_a_clean_error(files_sandbox):
    r = files_sandbox.run("python", "open('big', 'wb').write(bytes(3 << 20))")
    assert (r.status, r.error.type) == (Status.ERROR, "OSError")


def test_many_files_over_the_directorys_size_fill_it_up(files_sandbox):
    code = "for i in range(8):\n    open(f'f{i}', 'wb').write(bytes(1 << 19))"
    r = files_sandbox.run("python", code)
    assert (r.status, r.error.type, "No space left on device" in r.message) == (
        Status.ERROR, "OSError", True)


def test_returned_files_are_capped_by_result_bytes(files_sandbox):
    code = "open('a', 'wb').write(bytes(1000))\nopen('b', 'wb').write(bytes(5000))"
    r = files_sandbox.run("python", code, return_files=True, result_bytes=4096)
    assert (r.status, list(r.files), r.files_skipped) == (
        Status.OK, ["a"], {"b": "over the result's size cap (result_bytes)"})


def test_a_worker_gives_each_task_an_empty_directory(files_sandbox):
    first = files_sandbox.run("python", "open('mine', 'w').write('1')", isolation="worker",
                              reuse_key="files")
    second = files_sandbox.run("python", "import os\nreturn os.listdir('.')",
                               isolation="worker", reuse_key="files")
    assert (first.status, second.status, second.value) == (Status.OK, Status.OK, [])


def test_files_pass_through_a_broker(tmp_path):
    from sandbox.client.sync import Client

    with Client(pool=PoolConfig(size=1, files_mb=1), runtimes=("python",)) as c:
        r = c.run("python", "return open('a').read()", files={"a": "via the broker"},
                  return_files=True)
    assert (r.status, r.value, r.files) == (Status.OK, "via the broker", {"a": b"via the broker"})
