"""The zygote: pid 1 of a jail. Imports once, forks children on request, never runs user code.

It talks to the runner over the control channel (see ``wire``) whose fd it is given on the
command line. Protocol: the runner sends ``init`` (the runtime's name and the per-child
seccomp program), then ``spawn`` whenever it wants more children. For each child the zygote
answers ``spawned`` with the child's end of a fresh task socketpair and a pidfd, and later
``exited`` with the wait status, which the runner needs to tell a seccomp kill (SIGSYS) from
an OOM kill or a crash. When the control channel closes, the zygote kills its children and
exits, and nsjail tears the jail down with it.
"""

from __future__ import annotations

import gc
import importlib
import os
import select
import signal
import socket
import sys

from runtimes import child, wire


def main(runtime: str, control_fd: int) -> None:
    control = socket.socket(fileno=control_fd)
    init, _ = wire.recv_control(control)
    if init is None or init.get("op") != "init":
        raise SystemExit("zygote: expected an init message")
    executor = importlib.import_module(f"runtimes.{runtime}.executor")
    failed = executor.preload(tuple(init.get("preload") or ()))
    setup = child.ChildSetup(
        executor=executor,
        seccomp_program=wire.field(init, "seccomp_program", bytes),
        pid_slots=tuple(wire.field(init, "pid_slots", list)),
    )
    # Everything imported so far is shared copy-on-write with every child; keep the
    # collector from touching (and so copying) those pages in the children.
    gc.freeze()

    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: set[int] = set()
    poller = select.poll()
    poller.register(control, select.POLLIN)
    poller.register(wake_r, select.POLLIN)
    wire.send_control(control, {"op": "ready", "pid": os.getpid(),
                                "preload_failed": failed or {}})

    try:
        _serve(control, setup, poller, children, (wake_r, wake_w))
    except (BrokenPipeError, ConnectionResetError):
        pass  # the runner went away mid-report: same as a closed channel
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _serve(
    control: socket.socket,
    setup: child.ChildSetup,
    poller: select.poll,
    children: set[int],
    wake: tuple[int, int],
) -> None:
    wake_r = wake[0]
    while True:
        for fd, _events in poller.poll():
            if fd == wake_r:
                _drain(wake_r)
                _reap(control, children)
                continue
            msg, fds = wire.recv_control(control)
            for extra in fds:
                os.close(extra)
            if msg is None:
                return
            if msg.get("op") == "spawn":
                count = wire.field(msg, "count", int)
                for _ in range(max(0, min(count, 64))):
                    pid = _spawn(control, setup, wake)
                    children.add(pid)


def _spawn(control: socket.socket, setup: child.ChildSetup, keep_closed: tuple[int, int]) -> int:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:  # the child: never returns
        child.main(theirs, setup)
    theirs.close()
    pidfd = os.pidfd_open(pid)
    try:
        wire.send_control(control, {"op": "spawned", "pid": pid}, (ours.fileno(), pidfd))
    finally:
        os.close(pidfd)
        ours.close()
    return pid


def _reap(control: socket.socket, children: set[int]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        wire.send_control(control, {"op": "exited", "pid": pid, "status": status})


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
