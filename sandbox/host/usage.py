"""What a task cost, read from the kernel's accounting of its child, from outside the jail.

Where the numbers are true: a task runs alone in its child process, so the kernel's
per-process accounting is the task's (the jail's cgroup, v1 or v2, holds the whole pool: its
CPU and memory figures are every child's together, and a cgroup per task would cost a cgroup
creation per task on the hot path). The host reads them by the child's pid in its own
namespace, never from what the child says of itself (its envelope could be a snippet's):

* CPU time: ``/proc/PID/schedstat``'s first field, the nanoseconds the process has run on a
  CPU (user and system), read when the task is handed over and when it ends; the difference
  is the task's. (``getrusage`` of a child needs its parent, the zygote; the child is not
  reaped until after its result is delivered.)
* peak memory: ``VmHWM`` of ``/proc/PID/status``, the process's high-water resident set in
  KiB. It counts the interpreter's pages shared with the zygote as well as the task's own
  (as ``ru_maxrss`` would), and in worker mode the peak of the worker's life so far.

Either is None when it cannot be read (the child is gone: a crash reaped already). The
files are opened once per child, when it is spawned (``Accounting``); a task's path pays three
``pread``s (measured on the project's loaded VM: about 3 us for schedstat, 38 us for status,
which the kernel renders whole).
"""

from __future__ import annotations

import os


class Accounting:
    """One child's kernel accounting files, opened once when it is spawned (off any task's
    path) and read with one ``pread`` each when asked: an open per read cost as much as the
    read itself. They stay bound to that process (a later process with the same pid is not
    it): reads of a process that is gone give None."""

    __slots__ = ("_schedstat", "_status")

    def __init__(self, host_pid: int) -> None:
        self._schedstat = _open(f"/proc/{host_pid}/schedstat") if host_pid > 0 else -1
        self._status = _open(f"/proc/{host_pid}/status") if host_pid > 0 else -1

    def cpu_ns(self) -> int | None:
        """Nanoseconds the process has spent on a CPU so far, or None."""
        raw = _pread(self._schedstat, 128)
        if raw is None:
            return None
        try:
            return int(raw.split(None, 1)[0])
        except (ValueError, IndexError):
            return None

    def peak_memory_kb(self) -> int | None:
        """The process's peak resident set (VmHWM), KiB, or None."""
        raw = _pread(self._status, 4096)
        if raw is None:
            return None
        at = raw.find(b"\nVmHWM:")
        if at < 0:
            return None
        end = raw.find(b"\n", at + 1)
        try:
            return int(raw[at + 7:end if end > 0 else None].split()[0])
        except (ValueError, IndexError):
            return None

    def spent(self, cpu_start_ns: int | None) -> tuple[float | None, int | None]:
        """(cpu_ms since ``cpu_start_ns``, peak_memory_kb) of a task whose child is still
        there."""
        now = self.cpu_ns()
        cpu_ms = None if now is None or cpu_start_ns is None else max(
            (now - cpu_start_ns) / 1e6, 0.0)
        return cpu_ms, self.peak_memory_kb()

    def close(self) -> None:
        for fd in (self._schedstat, self._status):
            if fd >= 0:
                os.close(fd)
        self._schedstat = self._status = -1


def _open(path: str) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return -1


def _pread(fd: int, size: int) -> bytes | None:
    if fd < 0:
        return None
    try:
        return os.pread(fd, size, 0)
    except OSError:  # the process is gone (ESRCH)
        return None
