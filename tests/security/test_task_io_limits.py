"""Each test names what a task cannot do with its stdin, its output stream or its usage, and
asserts the exact outcome. The snippets here write raw frames on their own task channel (every
import allowed: the kernel and the host must hold by themselves)."""

from __future__ import annotations

import struct
from collections.abc import Iterator

import msgpack
import pytest

from broker.protocol import MAX_STDIN_BYTES
from sandbox import PoolConfig, Status
from sandbox.client.sync import Client
from sandbox.result import OutputChunk

# the snippet finds its task channel (the one socket it holds) and writes frames on it
RAW = """
import os, stat
def channel():
    for fd in range(64):
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                return fd
        except OSError:
            pass
fd = channel()
"""


def frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with Client(pool=PoolConfig(size=2, stdlib_allow=("*",)), queue_timeout_s=60) as c:
        yield c


def test_cant_forge_its_usage(sandbox):
    """An envelope the snippet wrote itself, claiming it cost nothing: the host's reading of
    the kernel's accounting is what the result says."""
    forged = msgpack.packb({"status": "ok", "retire": False, "v": 1, "message": "ok",
                            "value": None, "stdout": "", "truncated": False, "error": None,
                            "duration_ms": 0.0, "cpu_ms": 0.0, "peak_memory_kb": 1})
    r = sandbox.run("python", RAW + "os.write(fd, data)\nwhile True: pass", frame(forged),
                    timeout_s=5)
    assert r.status is Status.OK and r.peak_memory_kb is not None and r.peak_memory_kb > 1024, r


def test_cant_stream_beyond_its_output_cap(client):
    """Raw output frames far over ``stdout_bytes``: the host passes on no more than the cap."""
    chunks: list[OutputChunk] = []
    code = RAW + "for _ in range(20):\n    os.write(fd, data)\nreturn 1"
    r = client.run("python", code, frame(b"\x00\x01" + b"x" * 50_000), stdout_bytes=1000,
                   on_output=chunks.append, timeout_s=10)
    assert (r.status, sum(len(c.text) for c in chunks)) == (Status.OK, 1000)


def test_cant_stream_for_a_task_that_did_not_ask(client):
    handle = client.submit("python", RAW + "os.write(fd, data)\nreturn 1",
                           frame(b"\x00\x01leaked"), timeout_s=10)
    assert (list(handle.output()), handle.result().status) == ([], Status.OK)


def test_cant_break_the_host_with_a_malformed_output_frame(client):
    r = client.run("python", RAW + "os.write(fd, data)\nreturn 1", frame(b"\x00\x07bad"),
                   stream=True, timeout_s=10)
    assert (r.status, r.value) == (Status.OK, 1)


def test_cant_pass_a_huge_stdin(client):
    r = client.run("python", "return 1", stdin=b"x" * (MAX_STDIN_BYTES + 1))
    assert (r.status, r.message) == (
        Status.REJECTED, f"stdin is {MAX_STDIN_BYTES + 1} bytes, over the "
                         f"{MAX_STDIN_BYTES}-byte limit")


def test_cant_read_another_tasks_stdin(sandbox):
    """A worker's next task starts from its own stdin: nothing of the one before is left."""
    first = sandbox.run("python", "import sys\nreturn sys.stdin.read(1)", stdin="secret",
                        isolation="worker", reuse_key="stdin-secret")
    second = sandbox.run("python", "import sys\nreturn sys.stdin.read()", isolation="worker",
                         reuse_key="stdin-secret")
    assert (first.value, second.status, second.value) == ("s", Status.OK, "")


def test_cant_hold_the_hosts_loop_with_a_flood_of_output_frames(sandbox):
    """Output frames written as fast as the child can, thousands per write, forever: the host
    reads a bounded number per wake-up, so its clock still runs and the task ends at its
    timeout."""
    r = sandbox.run("python", RAW + "while True:\n    os.write(fd, data)",
                    frame(b"\x00\x01" + b"x" * 16) * 8192, timeout_s=1)
    assert r.status is Status.TIMEOUT
