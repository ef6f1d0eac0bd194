"""A session's own directory through the local API and a broker, in real jails: it lives from
call to call, files go in with a call or an upload, come back with a call or a download, and a
bad name or too much is refused as a task's would be."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox import PoolConfig, Sandbox, Status


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(PoolConfig(size=2, max_sessions=4, files_mb=1, stdlib_allow=("*",))) as box:
        yield box


def test_the_directory_lives_across_calls(sb):
    with sb.session("python") as s:
        s.run("open('notes.txt', 'w').write('first')")
        r = s.run("import os\nreturn os.getcwd(), open('notes.txt').read()")
        assert (r.status, r.value) == (Status.OK, ["/work", "first"])


def test_a_calls_files_go_in_and_all_the_directory_holds_comes_back(sb):
    with sb.session("python") as s:
        s.run("open('kept', 'w').write('from before')")
        r = s.run("open('out', 'w').write(open('in/a.txt').read().upper())",
                  files={"in/a.txt": "hello"}, return_files=True)
        assert (r.status, r.files, r.files_skipped) == (
            Status.OK, {"in/a.txt": b"hello", "kept": b"from before", "out": b"HELLO"}, {})


def test_upload_then_download(sb):
    with sb.session("python") as s:
        up = s.upload({"data.csv": "a,b\n1,2\n", "raw.bin": bytes(range(4))})
        rows = s.run("import csv\nreturn list(csv.reader(open('data.csv')))")
        s.run("open('sum.txt', 'w').write('3')")
        down = s.download()
        assert (up.status, rows.value, down.status, down.files) == (
            Status.OK, [["a", "b"], ["1", "2"]], Status.OK,
            {"data.csv": b"a,b\n1,2\n", "raw.bin": bytes(range(4)), "sum.txt": b"3"})


def test_an_upload_replaces_a_file_of_the_same_name(sb):
    with sb.session("python") as s:
        s.upload({"a": "one"})
        s.upload({"a": "two"})
        assert s.run("return open('a').read()").value == "two"


def test_an_upload_over_a_directory_of_that_name_is_an_error_and_the_session_lives(sb):
    with sb.session("python") as s:
        s.run("import os\nos.mkdir('d')\nx = 1")
        r = s.upload({"d": "not a directory"})
        assert (r.status, r.error.type, s.run("return x").value) == (Status.ERROR, "FilesError", 1)


def test_a_name_that_escapes_is_rejected(sb):
    with sb.session("python") as s:
        results = [s.upload({name: "x"}) for name in ("../x", "/etc/x", "a\x00b")]
        assert [(r.status, r.message) for r in results] == [
            (Status.REJECTED, "file name '../x' has a '..' component"),
            (Status.REJECTED, "file name '/etc/x' is absolute (names are relative to the "
                              "task's directory)"),
            (Status.REJECTED, "file name 'a\\x00b' holds a NUL")]


def test_files_over_the_directory_are_rejected(sb):
    with sb.session("python") as s:
        r = s.upload({"big": bytes(2 << 20)})
        assert (r.status, r.message) == (
            Status.REJECTED, "files hold 2097152 bytes, over the task's directory of 1048576 "
                             "bytes (files_mb)")


def test_filling_the_directory_across_uploads_is_a_clean_error(sb):
    with sb.session("python") as s:
        first = s.upload({"a": bytes(600 << 10)})
        second = s.upload({"b": bytes(600 << 10)})
        assert (first.status, second.status, "No space left" in second.message) == (
            Status.OK, Status.ERROR, True)


def test_a_download_is_capped_by_result_bytes(sb):
    with sb.session("python") as s:
        s.upload({"a": bytes(1000), "b": bytes(5000)})
        r = s.download(result_bytes=4096)
        assert (r.status, list(r.files), r.files_skipped) == (
            Status.OK, ["a"], {"b": "over the result's size cap (result_bytes)"})


def test_a_session_of_a_runtime_without_files_refuses_them():
    with Sandbox(PoolConfig(size=1, files_mb=1), runtimes=("javascript",)) as box:
        with box.session("javascript") as s:
            r = s.upload({"a": "x"})
    assert (r.status, r.message) == (Status.REJECTED, "files apply to python, not javascript")


def test_session_files_through_a_broker():
    from sandbox.client.sync import Client

    with Client(pool=PoolConfig(size=1, files_mb=1), runtimes=("python",)) as c:
        with c.session("python") as s:
            up = s.upload({"a": "via the broker"})
            r = s.run("open('b', 'w').write(open('a').read() + '!')", return_files=True)
            down = s.download()
    assert (up.status, r.files, down.files) == (
        Status.OK, {"a": b"via the broker", "b": b"via the broker!"},
        {"a": b"via the broker", "b": b"via the broker!"})


def test_session_files_through_the_async_client():
    import asyncio

    from sandbox.client.aio import AsyncClient

    async def go():
        async with AsyncClient(pool=PoolConfig(size=1, files_mb=1), runtimes=("python",)) as c:
            async with await c.session("python") as s:
                up = await s.upload({"a": b"\x00\x01"})
                r = await s.run("return open('a', 'rb').read()", files={"c": "3"},
                                return_files=True)
                down = await s.download()
        return up.status, r.value, r.files, down.files

    assert asyncio.run(go()) == (Status.OK, b"\x00\x01", {"a": b"\x00\x01", "c": b"3"},
                                 {"a": b"\x00\x01", "c": b"3"})
