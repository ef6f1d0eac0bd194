"""A started jail's process, as the pools watch it: the plumbing every launcher
shares (``sandbox.jail.launch.NsJail`` for nsjail, ``sandbox.jail.fake.FakeJail`` for the
fake). Our end of the control channel, an fd that is readable when the process exits (a
pidfd), its stderr read without blocking into a tail of lines, how it ended, and a close that
reaps it (killed if it does not end in time). What differs, a launcher's subclass says: how
the zygote's host pid is found, how OOM kills are counted, and what is left to remove.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
from typing import Any

from runtimes import protocol

log = logging.getLogger("sandbox.jail")

CLOSE_WAIT_S = 2.0  # how long a closed jail may take to end before it is killed


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class JailProcessBase:
    """The ``JailProcess`` plumbing (``sandbox.jail.launch.JailProcess`` is the interface)."""

    NAME = "the jail"  # as exit reasons name the process
    TAIL_LINES = 3  # how many of its last stderr lines an exit reason quotes
    LOG_STDERR = True  # log each stderr line (a warning: the jail said something)

    def __init__(self, runtime: str, control: socket.socket, process: subprocess.Popen[Any],
                 worker: protocol.WorkerSpec | None = None) -> None:
        self.runtime = runtime
        self.control = control
        self.process = process
        self.pid = process.pid
        self.worker = worker
        self.zygote_pid = 0  # the jailed zygote's host pid, once ``located``
        # each child's own directory, when the jail was started for it (sandbox.jail.launch)
        self.files_bytes = 0
        self.stderr_tail: list[str] = []
        self._partial = b""
        assert process.stderr is not None
        self._stderr = process.stderr.fileno()
        os.set_blocking(self._stderr, False)
        self._exit_fd = os.pidfd_open(process.pid)

    def exit_fd(self) -> int:
        return self._exit_fd

    def stderr_fd(self) -> int | None:
        return self._stderr if self._stderr >= 0 else None

    def read_stderr(self) -> None:
        if self._stderr < 0:
            return
        while True:
            try:
                chunk = os.read(self._stderr, 65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                chunk = b""
            if not chunk:  # EOF: flush what is left
                if self._partial:
                    self._line(self._partial)
                    self._partial = b""
                return
            *lines, self._partial = (self._partial + chunk).split(b"\n")
            for line in lines:
                self._line(line)

    def _line(self, raw: bytes) -> None:
        line = raw.decode("utf-8", "replace").rstrip()
        if line:
            self.stderr_tail = (self.stderr_tail + [line])[-20:]
            if self.LOG_STDERR:
                log.warning("jail %s: %s", self.runtime, line)

    def located(self) -> None:
        self.zygote_pid = first_child(self.pid)

    def oom_kills(self) -> int:
        return 0

    def exit_reason(self) -> str:
        self.read_stderr()
        code = self.process.poll()
        if code is None:
            what = "the zygote closed its control channel"
        elif code < 0:
            what = f"{self.NAME} was killed by {signal_name(-code)}"
        else:
            what = f"{self.NAME} exited with code {code}"
        tail = "; ".join(self.stderr_tail[-self.TAIL_LINES:])
        return f"{what}: {tail}" if tail else what

    def close(self) -> None:
        """Close the control channel (the zygote exits on EOF, the jail with it), reap the
        process (killed if it does not end in time), and remove what it left."""
        try:
            self.control.close()
        finally:
            try:
                self.process.wait(timeout=CLOSE_WAIT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.read_stderr()
            for fd in (self._exit_fd, self._stderr):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._exit_fd = self._stderr = -1
            if self.process.stderr is not None:
                try:
                    self.process.stderr.close()
                except OSError:
                    pass
            self.cleanup()

    def cleanup(self) -> None:
        """What the launcher removes once the process is reaped."""


def first_child(pid: int) -> int:
    """The first child process of ``pid`` (a jail's keeper has exactly one: the zygote)."""
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found = f.read().split()
            if found:
                return int(found[0])
    except (OSError, ValueError):
        pass
    return 0
