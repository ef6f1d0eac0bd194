"""The contract every ``JailProcess`` keeps, run against the in-package fake (no root) and the
real nsjail (marked ``jail``): the pools may rely on exactly this, and nothing else."""

from __future__ import annotations

import os
import select
import signal
import socket

import pytest

import seccomp
from runtimes import codec, framing, outcome, protocol
from runtimes.outcome import Status
from sandbox import PoolConfig
from sandbox.jail import fake as fakejail
from sandbox.host.pools import jail_setup
from sandbox.jail import launch

CONFIG = PoolConfig(size=1)
# (launcher, code that returns 1, code that makes a forbidden system call)
BACKENDS = {
    "fake": (fakejail.launch, "ok 1", "sigsys"),
    "nsjail": (launch.launch, "return 1", "import os\nos.fork()"),
}


@pytest.fixture(params=["fake", pytest.param("nsjail", marks=pytest.mark.jail)])
def backend(request):
    launch, ok_code, forbidden_code = BACKENDS[request.param]
    config = CONFIG if request.param == "nsjail" else PoolConfig(size=1, cgroup="off")
    process = launch("python", config, jail_setup)
    try:
        yield process, ok_code, forbidden_code
    finally:
        process.close()


def _recv(process: launch.JailProcess, accept: tuple[type, ...], timeout_s: float = 10.0):
    ready, _, _ = select.select([process.control], [], [], timeout_s)
    assert ready, "no control message in time"
    body, fds = framing.recv_control(process.control)
    assert body is not None, process.exit_reason()
    return protocol.decode(body, accept), fds


def _handshake(process: launch.JailProcess) -> protocol.Ready:
    program = seccomp.child_filter()
    framing.send_control(process.control, protocol.encode(
        protocol.Init(program.program, tuple(program.pid_slots))))
    ready, fds = _recv(process, (protocol.Ready,))
    assert fds == []
    process.located()
    return ready


def _spawn_one(process: launch.JailProcess) -> tuple[int, socket.socket, int]:
    framing.send_control(process.control, protocol.encode(protocol.Spawn(1)))
    spawned, fds = _recv(process, (protocol.Spawned,))
    assert len(fds) == 2
    return spawned.pid, socket.socket(fileno=fds[0]), fds[1]


def _task(code: str) -> bytes:
    return protocol.encode(protocol.Task(code=code, data=codec.encode(None), as_bytes=1 << 40,
                                         memory_bytes=256 << 20, cpu_s=5, stdout_bytes=1024,
                                         result_bytes=1 << 20, imports=protocol.Imports(("*",))))


def test_it_says_ready_after_init(backend):
    process, _, _ = backend
    assert _handshake(process).pid >= 1


def test_a_spawned_child_runs_one_task_and_its_exit_is_reported(backend):
    process, ok_code, _ = backend
    _handshake(process)
    pid, channel, pidfd = _spawn_one(process)
    with channel:
        framing.send_frame(channel, _task(ok_code))
        env = outcome.decode(framing.recv_frame(channel, 1 << 20), max_bytes=1 << 20)
        assert (env.status, codec.decode(env.value)) == (Status.OK, 1)
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        exited, _ = _recv(process, (protocol.Exited,))
        assert (exited.pid, os.WTERMSIG(exited.status)) == (pid, signal.SIGKILL)
    os.close(pidfd)


def test_a_forbidden_system_call_is_reported_as_sigsys(backend):
    process, _, forbidden = backend
    _handshake(process)
    pid, channel, pidfd = _spawn_one(process)
    with channel:
        framing.send_frame(channel, _task(forbidden))
        exited, _ = _recv(process, (protocol.Exited,))
        assert (exited.pid, os.WTERMSIG(exited.status)) == (pid, signal.SIGSYS)
    os.close(pidfd)


def test_closing_the_control_channel_ends_the_jail(backend):
    process, _, _ = backend
    _handshake(process)
    process.control.close()
    ready, _, _ = select.select([process.exit_fd()], [], [], 10.0)
    assert ready == [process.exit_fd()]


def test_a_killed_jail_says_how_it_ended(backend):
    process, _, _ = backend
    _handshake(process)
    os.kill(process.pid, signal.SIGKILL)
    select.select([process.exit_fd()], [], [], 10.0)
    process.control.close()
    process.close()
    assert process.exit_reason().endswith("was killed by SIGKILL")


def test_no_oom_kill_is_counted_at_rest(backend):
    process, _, _ = backend
    _handshake(process)
    assert process.oom_kills() == 0
