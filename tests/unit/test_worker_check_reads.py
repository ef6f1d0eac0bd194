"""The reads of a Python worker's check (runtimes/python/leftovers.py) in C
(runtimes/python/_gather.c) and in Python: the same words, and the same decisions."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys

import pytest

from runtimes.python import leftovers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_the_install_built_the_reads_in_c():
    """pip's install of the package compiles runtimes/python/_gather.c (gcc is on this kind of
    machine); were it missing, every worker would pay the slower reads without a word."""
    assert leftovers._gather is not None


def _in_python(monkeypatch):
    monkeypatch.setattr(leftovers, "_gather", None)
    monkeypatch.setattr(leftovers, "_spans", None)


def test_the_words_read_in_c_are_the_words_read_in_python(monkeypatch):
    objects = [{}, {"a": 1}, [1, 2], "text", (1, 2)]
    # past each object's reference count, which the reading itself may move
    addresses = [id(o) + at for o in objects for at in (8, 16, 24)]
    pad = id(leftovers._RAW) + 8
    in_c = leftovers._words(addresses, pad)()
    _in_python(monkeypatch)
    in_python = leftovers._words(addresses, pad)()
    assert struct.unpack(f"{len(addresses)}Q", in_c) == in_python[:-2]


def test_the_spans_read_in_c_are_the_spans_read_in_python(monkeypatch):
    kept = [b"first bytes", b"", b"and the last"]
    spans = [slice(id(b) + 32, id(b) + 32 + len(b)) for b in kept] + [slice(0, 0)]
    in_c = leftovers._span_bytes(spans)()
    _in_python(monkeypatch)
    assert leftovers._span_bytes(spans)() == in_c == b"first bytesand the last"


def test_spans_that_are_not_pairs_are_refused():
    with pytest.raises(ValueError, match="packed"):
        leftovers._spans(b"\x00" * 8)


def test_addresses_that_are_not_whole_words_are_refused():
    with pytest.raises(ValueError, match="packed"):
        leftovers._gather(b"\x00" * 7)


# a worker in a process of its own (arming installs an audit hook for good): a clean task,
# then one that changes a module; what the check said after each
_WORKER = r"""
import json, sys
if sys.argv[1] == "python":
    sys.modules["runtimes.python._gather"] = None  # as if it was never built
from runtimes import codec
from runtimes.protocol import Imports, Task
from runtimes.python import executor, leftovers

def task(code):
    return Task(code=code, data=codec.encode(None), as_bytes=1 << 32, memory_bytes=1 << 32,
                cpu_s=10, stdout_bytes=1024, result_bytes=1 << 20,
                imports=Imports(stdlib=("string",)))

def main():
    executor.preload(("string",))
    executor.survey()
    check = executor.arm()
    said = []
    for code in ("return 1", "return 2", "import string\nstring.ascii_letters = 'x'"):
        executor.run(task(code))
        said.append(check())
    print(json.dumps([leftovers._gather is not None, said]))

main()
"""


@pytest.mark.parametrize("reads", ["c", "python"])
def test_the_check_retires_a_changed_worker_with_either_reads(reads):
    done = subprocess.run([sys.executable, "-c", _WORKER, reads], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [reads == "c", [False, False, True]]


@pytest.mark.jail
def test_a_jailed_worker_checks_with_the_reads_in_c():
    """The build product reaches the jail with the rest of ``runtimes`` (its staging copies the
    package whole) and loads there, under the standard-library view and the child filter."""
    from sandbox import PoolConfig, Sandbox, Status

    code = "import sys\nreturn 'runtimes.python._gather' in sys.modules"
    with Sandbox(PoolConfig(size=1, stdlib_allow=("sys",))) as sb:
        r = sb.run("python", code, isolation="worker", reuse_key="k")
    assert r.status is Status.OK, r.message
    assert r.value is True
