"""A jail without nsjail, for tests that need no root: the real zygote and child pipeline in
plain processes, running scripted tasks instead of snippets.

``launch`` has the signature of ``sandbox.jail.launch.launch`` and returns a ``JailProcess`` with the
same shape as a real one: a keeper process (standing where nsjail stands) whose only child is
the zygote (``runtimes.zygote.serve``, the real one), which forks children through the real
``runtimes.child`` pipeline: rlimits and the per-child seccomp filter are real, so a scripted
child that opens a socket dies of SIGSYS. What it is NOT is isolation: no namespaces, no
mounts, no cgroup; it runs as the caller. It passes the same contract tests as the real jail
(``tests/unit/test_jail_contract.py``). For a runtime whose children are workers
(``registry``: pyodide), each child says ready first, as a real worker does once loaded.

A task's code is a script, one line:

    ok <json>                 return the value
    error <Type> <message>    raise (status error)
    print <text>              print it, then return None
    printsleep <text>         print it, then block until killed
    sleep | spin              block or burn CPU until killed (timeout)
    sigsys                    make a forbidden system call: the child filter kills it
    oom                       the keeper counts an OOM kill and SIGKILLs the child, as the
                              cgroup's OOM killer would
    exit <code>               exit without a result
    closefds                  close the result channel, then block
    garbage                   write a frame that is not an envelope
    huge <bytes>              announce a frame of that many bytes
    vanish                    the keeper kills the zygote: the jail dies mid-task
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from typing import Any

from runtimes import child, framing, outcome, protocol
from runtimes.outcome import ErrorDetail, Status
from runtimes.protocol import Task
from sandbox import registry
from sandbox.config import PoolConfig
from sandbox.errors import JailError
from sandbox.jail.launch import SetupFor
from sandbox.jail.process import JailProcessBase

_EVENTS = "events"  # the keeper's FIFO: children write "oom <pid>" or "vanish"
_OOM_COUNT = "oom_kills"


def launch(runtime: str, config: PoolConfig, setup_for: SetupFor) -> FakeJail:
    """Start a keeper with a zygote inside; the control channel is ours. Scripted children
    exec nothing, so the runtime's set-up (``setup_for``) is not asked for."""
    directory = tempfile.mkdtemp(prefix="snippet-fakejail-")
    os.mkfifo(os.path.join(directory, _EVENTS), 0o600)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "sandbox.jail.fake", runtime, str(theirs.fileno()), directory],
            pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, env={"PYTHONPATH": root, "PATH": os.environ.get("PATH", "")},
            start_new_session=True,  # as nsjail is started: a terminal's signals are not its
        )
    except OSError as exc:
        ours.close()
        raise JailError(f"cannot start the fake jail: {exc}") from exc
    finally:
        theirs.close()
    return FakeJail(runtime, ours, process, directory)


class FakeJail(JailProcessBase):
    NAME = "the fake jail"
    TAIL_LINES = 1
    LOG_STDERR = False

    def __init__(self, runtime: str, control: socket.socket, process: subprocess.Popen[bytes],
                 directory: str) -> None:
        super().__init__(runtime, control, process)  # scripted children exec nothing
        self.directory = directory

    def oom_kills(self) -> int:
        try:
            with open(os.path.join(self.directory, _OOM_COUNT)) as f:
                return int(f.read() or 0)
        except (OSError, ValueError):
            return 0

    def kill(self) -> None:
        """Kill the keeper, as a ``kill -9`` of nsjail would."""
        try:
            self.process.kill()
        except OSError:
            pass

    def cleanup(self) -> None:
        for name in (_EVENTS, _OOM_COUNT):
            try:
                os.unlink(os.path.join(self.directory, name))
            except OSError:
                pass
        try:
            os.rmdir(self.directory)
        except OSError:
            pass


# -- the scripted executor (runs in the fake zygote's children) -------------------------------

_events_path = ""
_says_ready = False  # the keeper's runtime has worker children: each says ready first


def child_main(channel: socket.socket, setup: child.ChildSetup, output_fd: int = -1) -> None:
    if _says_ready:
        framing.send_frame(channel, protocol.encode(protocol.WorkerReady(python="fake")))
    child.main(channel, setup, output_fd)


def preload(extra: tuple[str, ...] = ()) -> dict[str, str]:
    return {}


def prepare_next() -> None:
    pass


def rehearse() -> None:
    run(Task(code="ok 1", data=b"", as_bytes=1, memory_bytes=1, cpu_s=1, stdout_bytes=64,
             result_bytes=64))


def run(task: Task, shared: Any = None) -> bytes:
    from runtimes import codec
    from runtimes.output import OutputBuffer

    verb, _, rest = task.code.strip().partition(" ")
    if verb == "ok":
        return outcome.encode(Status.OK, "ok", value=codec.encode(json.loads(rest or "null")))
    if verb == "error":
        kind, _, message = rest.partition(" ")
        return outcome.encode(Status.ERROR, f"{kind}: {message}",
                              error=ErrorDetail(kind, message, f"{kind}: {message}\n"))
    if verb in ("print", "printsleep"):
        out = OutputBuffer(task.stdout_bytes, shared)
        out.write((rest + "\n").encode())
        while verb == "printsleep":
            time.sleep(3600)
        return outcome.encode(Status.OK, "ok", value=codec.encode(None), stdout=out.getvalue(),
                              truncated=out.truncated)
    if verb == "sleep":
        while True:
            time.sleep(3600)
    if verb == "spin":
        while True:
            pass
    if verb == "sigsys":
        os.fork()
    if verb in ("oom", "vanish"):
        with open(_events_path, "w") as events:
            events.write(f"oom {os.getpid()}\n" if verb == "oom" else "vanish\n")
        while True:
            time.sleep(3600)
    if verb == "exit":
        os._exit(int(rest or 0))
    if verb == "closefds":
        os.closerange(3, 1 << 16)
        while True:
            time.sleep(3600)
    if verb == "garbage":
        return b"\xc1 this is not an envelope"
    if verb == "huge":
        os.write(_channel_fd(), struct.pack(">I", int(rest)))
        while True:
            time.sleep(3600)
    return outcome.encode(Status.ERROR, f"unknown script {verb!r}",
                          error=ErrorDetail("ScriptError", f"unknown script {verb!r}", ""))


def _channel_fd() -> int:
    # the child keeps only its channel besides stdio (runtimes.child step 1), and the copy of
    # the output file its mapping holds
    import stat

    for fd in range(3, 1 << 16):
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                return fd
        except OSError:
            continue
    raise RuntimeError("no channel")


# -- the keeper (stands where nsjail stands) ---------------------------------------------------


def _keeper(runtime: str, control_fd: int, directory: str) -> None:
    global _events_path, _says_ready
    _events_path = os.path.join(directory, _EVENTS)
    facts = registry.RUNTIMES.get(runtime)
    _says_ready = facts is not None and facts.worker_children
    zygote = os.fork()
    if zygote == 0:
        from runtimes import zygote as zygote_module

        signal.signal(signal.SIGINT, signal.SIG_DFL)
        zygote_module.serve(socket.socket(fileno=control_fd), sys.modules[__name__])
        os._exit(0)
    os.close(control_fd)  # only the zygote holds the jail's end, as inside nsjail
    events = os.open(_events_path, os.O_RDWR | os.O_NONBLOCK)  # RDWR: never sees EOF
    kills = 0
    import select

    poller = select.poll()
    poller.register(events, select.POLLIN)
    pidfd = os.pidfd_open(zygote)
    poller.register(pidfd, select.POLLIN)
    while True:
        for fd, _ in poller.poll():
            if fd == pidfd:
                _, status = os.waitpid(zygote, 0)
                code = os.waitstatus_to_exitcode(status)
                os._exit(128 - code if code < 0 else code)  # as a shell (and nsjail) says it
            for line in os.read(events, 4096).decode().splitlines():
                verb, _, pid = line.partition(" ")
                if verb == "oom":
                    kills += 1
                    with open(os.path.join(directory, _OOM_COUNT), "w") as f:
                        f.write(str(kills))
                    os.kill(int(pid), signal.SIGKILL)
                elif verb == "vanish":
                    os.kill(zygote, signal.SIGKILL)


if __name__ == "__main__":
    _keeper(sys.argv[1], int(sys.argv[2]), sys.argv[3])
