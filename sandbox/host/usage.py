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

Either is None when it cannot be read (the child is gone: a crash reaped already).
"""

from __future__ import annotations

import os


def cpu_ns(host_pid: int) -> int | None:
    """Nanoseconds the process has spent on a CPU so far, or None."""
    raw = _read(f"/proc/{host_pid}/schedstat", 128) if host_pid > 0 else None
    if raw is None:
        return None
    try:
        return int(raw.split(None, 1)[0])
    except (ValueError, IndexError):
        return None


def peak_memory_kb(host_pid: int) -> int | None:
    """The process's peak resident set (VmHWM), KiB, or None."""
    raw = _read(f"/proc/{host_pid}/status", 4096) if host_pid > 0 else None
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


def spent(host_pid: int, cpu_start_ns: int | None) -> tuple[float | None, int | None]:
    """(cpu_ms since ``cpu_start_ns``, peak_memory_kb) of a task whose child is still there."""
    now = cpu_ns(host_pid)
    cpu_ms = (now - cpu_start_ns) / 1e6 if now is not None and cpu_start_ns is not None else None
    return (max(cpu_ms, 0.0) if cpu_ms is not None else None), peak_memory_kb(host_pid)


def _read(path: str, size: int) -> bytes | None:
    """One read, no text layer (this runs twice per task)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.read(fd, size)
    except OSError:
        return None
    finally:
        os.close(fd)
