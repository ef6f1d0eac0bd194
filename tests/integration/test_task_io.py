"""A task's stdin, stdout and stderr apart, streamed output and usage, through real jails: the
local API (``sandbox`` fixture, every import allowed) and the clients over a real broker."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from sandbox import PoolConfig, Status
from sandbox.client.aio import AsyncClient
from sandbox.client.sync import Client
from sandbox.result import OutputChunk

POOL = PoolConfig(size=2, stdlib_allow=("*",))


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with Client(pool=POOL, queue_timeout_s=60) as c:
        yield c


# -- stdin ---------------------------------------------------------------------------------------


def test_stdin_is_what_input_reads(sandbox):
    r = sandbox.run("python", "return [input(), input()]", stdin="first\nsecond\n")
    assert (r.status, r.value) == (Status.OK, ["first", "second"])


def test_stdin_bytes_are_sys_stdin_buffer(sandbox):
    r = sandbox.run("python", "import sys\nreturn sys.stdin.buffer.read()", stdin=b"\x00\xff")
    assert (r.status, r.value) == (Status.OK, b"\x00\xff")


def test_without_stdin_input_meets_end_of_file(sandbox):
    r = sandbox.run("python", "return input()")
    assert (r.status, r.error.type) == (Status.ERROR, "EOFError")


def test_a_worker_gives_each_task_its_own_stdin(sandbox):
    got = [sandbox.run("python", "import sys\nreturn sys.stdin.read()", stdin=text,
                       isolation="worker", reuse_key="stdin").value for text in ("a", "b", "")]
    assert got == ["a", "b", ""]


# -- stdout and stderr ---------------------------------------------------------------------------

MIXED = "import sys\nprint('out 1')\nprint('err 1', file=sys.stderr)\nprint('out 2')"


def test_by_default_stdout_holds_both_streams_in_order(sandbox):
    r = sandbox.run("python", MIXED)
    assert (r.stdout, r.stderr) == ("out 1\nerr 1\nout 2\n", "")


def test_apart_stdout_and_stderr_each_hold_their_own(sandbox):
    r = sandbox.run("python", MIXED, separate_stderr=True)
    assert (r.stdout, r.stderr) == ("out 1\nout 2\n", "err 1\n")


def test_javascript_console_error_and_warn_are_stderr(sandbox):
    r = sandbox.run("javascript", "console.log('a'); console.warn('w'); console.error('e'); "
                    "console.info('i')", separate_stderr=True)
    assert (r.stdout, r.stderr) == ("a\ni\n", "w\ne\n")


def test_an_error_traceback_does_not_land_in_stderr(sandbox):
    r = sandbox.run("python", "raise ValueError('x')", separate_stderr=True)
    assert (r.status, r.stderr) == (Status.ERROR, "")


# -- usage -----------------------------------------------------------------------------------------


def test_cpu_time_counts_what_the_snippet_ran(sandbox):
    code = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass"
    r = sandbox.run("python", code, timeout_s=10)
    assert r.status is Status.OK and r.cpu_ms is not None and r.cpu_ms >= 250, r


def test_peak_memory_counts_what_the_snippet_touched(sandbox):
    r = sandbox.run("python", "b = bytearray(64 * 1024 * 1024)\nreturn len(b)", memory_mb=256)
    assert r.status is Status.OK and r.peak_memory_kb is not None
    assert r.peak_memory_kb >= 64 * 1024, r


def test_a_timeout_still_reports_its_usage(sandbox):
    r = sandbox.run("python", "while True: pass", timeout_s=0.3)
    assert r.status is Status.TIMEOUT and r.cpu_ms is not None and r.cpu_ms > 0, r


def test_javascript_reports_usage_too(sandbox):
    r = sandbox.run("javascript", "return 1")
    assert (r.status, r.cpu_ms is not None, r.peak_memory_kb is not None) == (Status.OK, True, True)


# -- streaming -------------------------------------------------------------------------------------

SLOW = "import time\nprint('first')\ntime.sleep(2)\nprint('second')\nreturn 7"


def test_output_arrives_while_the_task_runs(client):
    handle = client.submit("python", SLOW, stream=True, timeout_s=30)
    seen: list[tuple[OutputChunk, bool]] = [(chunk, handle.done()) for chunk in handle.output()]
    r = handle.result()
    assert seen[0] == (OutputChunk("stdout", "first\n"), False)  # the task was still running
    assert ("".join(c.text for c, _ in seen), r.status, r.value, r.stdout) == (
        "first\nsecond\n", Status.OK, 7, "first\nsecond\n")


def test_the_callback_sees_each_stream_in_order(client):
    chunks: list[OutputChunk] = []
    r = client.run("python", MIXED, on_output=chunks.append)
    joined = {s: "".join(c.text for c in chunks if c.stream == s) for s in ("stdout", "stderr")}
    assert (r.status, joined) == (Status.OK, {"stdout": "out 1\nout 2\n", "stderr": "err 1\n"})


def test_a_task_that_does_not_stream_yields_no_output(client):
    handle = client.submit("python", "print('x')\nreturn 1")
    assert (list(handle.output()), handle.result().stdout) == ([], "x\n")


def test_the_output_cap_binds_the_stream(client):
    chunks: list[OutputChunk] = []
    r = client.run("python", "print('x' * 10000)", stdout_bytes=100, on_output=chunks.append)
    assert (sum(len(c.text) for c in chunks), r.truncated, len(r.stdout)) == (100, True, 100)


def test_a_timeout_ends_the_stream_with_the_timeout(client):
    chunks: list[OutputChunk] = []
    r = client.run("python", "print('before')\nwhile True: pass", timeout_s=0.5,
                   on_output=chunks.append)
    assert (chunks, r.status, r.stdout) == ([OutputChunk("stdout", "before\n")], Status.TIMEOUT,
                                            "before\n")


def test_the_async_client_iterates_and_calls_back():
    async def go() -> tuple[list[OutputChunk], list[OutputChunk], int, int]:
        async with AsyncClient(pool=POOL, queue_timeout_s=60) as c:
            handle = await c.submit("python", SLOW, stream=True, timeout_s=30)
            iterated = [chunk async for chunk in handle.output()]
            first = await handle
            called: list[OutputChunk] = []

            async def keep(chunk: OutputChunk) -> None:
                called.append(chunk)

            second = await c.run("javascript", "console.log('js'); return 2", on_output=keep)
            return iterated, called, first.value, second.value

    iterated, called, first, second = asyncio.run(go())
    assert ("".join(c.text for c in iterated), called, first, second) == (
        "first\nsecond\n", [OutputChunk("stdout", "js\n")], 7, 2)


# -- streaming through the local API: Sandbox.run(..., on_output=cb) -----------------------------


def _busy(sb) -> int:
    return sum(state == "busy" for pool in sb.snapshot().values()
               for state, _ in pool["children"].values())


def test_the_local_api_calls_back_while_the_task_runs(sandbox):
    """Each chunk is handed over with the task's child still busy: it came before the result."""
    seen: list[tuple[OutputChunk, int]] = []
    r = sandbox.run("python", SLOW, timeout_s=30,
                    on_output=lambda chunk: seen.append((chunk, _busy(sandbox))))
    assert (seen[0], "".join(c.text for c, _ in seen), r.status, r.value, r.stdout) == (
        (OutputChunk("stdout", "first\n"), 1), "first\nsecond\n", Status.OK, 7, "first\nsecond\n")


def test_the_local_api_streams_each_stream_apart(sandbox):
    chunks: list[OutputChunk] = []
    r = sandbox.run("python", MIXED, separate_stderr=True, on_output=chunks.append)
    joined = {s: "".join(c.text for c in chunks if c.stream == s) for s in ("stdout", "stderr")}
    assert (r.status, joined, r.stdout, r.stderr) == (
        Status.OK, {"stdout": "out 1\nout 2\n", "stderr": "err 1\n"}, "out 1\nout 2\n", "err 1\n")


def test_a_local_callback_that_raises_kills_its_task(sandbox):
    class Enough(Exception):
        pass

    def stop(chunk: OutputChunk) -> None:
        raise Enough(chunk.text)

    with pytest.raises(Enough, match="before"):
        sandbox.run("python", "print('before')\nwhile True: pass", timeout_s=30, on_output=stop)
    # its child is gone (killed, not left spinning): the next task finds the pool served
    assert (sandbox.run("python", "return 1").value, _busy(sandbox)) == (1, 0)


def test_a_local_timeout_ends_the_stream_with_the_timeout(sandbox):
    chunks: list[OutputChunk] = []
    r = sandbox.run("python", "print('before')\nwhile True: pass", timeout_s=0.5,
                    on_output=chunks.append)
    assert (chunks, r.status) == ([OutputChunk("stdout", "before\n")], Status.TIMEOUT)


def test_a_local_sessions_call_streams_too(sandbox):
    chunks: list[OutputChunk] = []
    with sandbox.session("python") as s:
        s.run("x = 2")
        r = s.run("print(x)\nprint(x * 2)\nreturn x", on_output=chunks.append)
    assert ("".join(c.text for c in chunks), r.value) == ("2\n4\n", 2)


def test_javascript_streams_through_the_local_api():
    from sandbox import Sandbox

    chunks: list[OutputChunk] = []
    with Sandbox(PoolConfig(size=1), runtimes=("javascript",)) as sb:
        r = sb.run("javascript", "console.log('js'); return 2", on_output=chunks.append)
    assert (chunks, r.value) == ([OutputChunk("stdout", "js\n")], 2)
