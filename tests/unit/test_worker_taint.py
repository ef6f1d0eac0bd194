"""The host's outside read of a worker's tripwire mark (runtimes.protocol.TAINT_RLIMIT): a
process that lowered the limit to 0 can never raise it again, and the host retires it."""

from __future__ import annotations

import os
import resource
import signal

from runtimes import protocol
from sandbox.host.pools import _tainted


def test_a_process_that_kept_its_limit_is_not_marked():
    assert _tainted(os.getpid()) is False


def test_a_process_that_lowered_its_limit_is_marked():
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the marked process: lowers the limit, then waits to be read
        resource.setrlimit(protocol.TAINT_RLIMIT, (0, 0))
        os.write(ready_w, b"x")
        signal.pause()
        os._exit(0)
    try:
        os.read(ready_r, 1)
        assert _tainted(pid) is True
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(ready_r)
        os.close(ready_w)


def test_a_worker_whose_mark_cannot_be_read_is_not_trusted():
    assert _tainted(0) is True
