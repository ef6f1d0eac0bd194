"""The zygote: pid 1 of a jail. Imports once, forks children on request, never runs user code.

It talks to the pools over the control channel (``runtimes.framing``,
``runtimes.protocol``) whose fd it is given on the command line: the host sends ``init`` (the
per-child seccomp program, modules to preload), the zygote answers ``ready``; then the host
sends ``spawn`` whenever it wants more children, with a shared output file for each
(``runtimes.output``), which the child inherits. For each child the zygote answers ``spawned``
with the child's end of a fresh task socketpair and a pidfd, and later ``exited`` with the
wait status, which the host needs to tell a seccomp kill (SIGSYS) from an OOM kill or a crash.
When the control channel closes, the zygote kills its children and exits, and nsjail tears the
jail down with it.
"""

from __future__ import annotations

import gc
import importlib
import os
import select
import signal
import socket
import sys

from types import ModuleType

from runtimes import attempts, child, files, framing, protocol


def main(runtime: str, control_fd: int) -> None:
    serve(socket.socket(fileno=control_fd), importlib.import_module(f"runtimes.{runtime}.executor"))


def serve(control: socket.socket, executor: ModuleType) -> None:
    """The zygote's life on an open control channel, with the runtime's executor module."""
    body, fds = framing.recv_control(control)
    framing.close_fds(fds)
    if body is None:
        return
    init = protocol.decode(body, (protocol.Init,))
    configure = getattr(executor, "configure", None)
    if configure is not None:  # a runtime whose children exec a worker program (pyodide)
        configure(init)
    if init.files_bytes:
        files.prepare()  # before the survey: what a child's task directory is made with
    failed = executor.preload(init.preload)
    survey = getattr(executor, "survey", None)
    if survey is not None:  # what a worker of this runtime will watch, found once (python)
        survey()
    setup = child.ChildSetup(executor=executor, seccomp_program=init.seccomp_program,
                             pid_slots=init.pid_slots, files_bytes=init.files_bytes)
    attempts.install()  # inherited by every child: what a violation was about
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
    try:
        framing.send_control(control, protocol.encode(protocol.Ready(os.getpid(), failed or {})))
        _loop(control, setup, poller, children, (wake_r, wake_w))
    except (BrokenPipeError, ConnectionResetError):
        pass  # the runner went away (mid-report, or while this jail started): a closed channel
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # reaped before the zygote goes: without a pid namespace (a pyodide jail on a host
        # that denies namespaces) nothing else would, and nsjail could not remove the cgroups
        for pid in children:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass


def _loop(
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
            body, fds = framing.recv_control(control)
            if body is None:
                framing.close_fds(fds)
                return
            try:
                spawn = protocol.decode(body, (protocol.Spawn,))
                # the host's shared output files, one per child, in spawn order
                for i in range(spawn.count):
                    children.add(_spawn(control, setup, fds[i] if i < len(fds) else -1))
            finally:
                framing.close_fds(fds)


def _spawn(control: socket.socket, setup: child.ChildSetup, output_fd: int) -> int:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:  # the child: never returns
        # a runtime may make the child a worker program of its own (pyodide: an exec of Node)
        getattr(setup.executor, "child_main", child.main)(theirs, setup, output_fd)
    theirs.close()
    pidfd = os.pidfd_open(pid)
    try:
        framing.send_control(control, protocol.encode(protocol.Spawned(pid)), (ours.fileno(), pidfd))
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
        framing.send_control(control, protocol.encode(protocol.Exited(pid, status)))


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
