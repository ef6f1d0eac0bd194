"""CPU time and memory of process trees, read from /proc (Linux)."""

from __future__ import annotations

import os

_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds incl. reaped children) of one process, or None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            raw = f.read()
    except OSError:
        return None
    rest = raw[raw.rindex(")") + 2:].split()
    # fields after the name: state ppid ... utime(12) stime(13) cutime(14) cstime(15)
    ppid = int(rest[1])
    cpu = sum(int(x) for x in rest[11:15]) / _TICK
    return ppid, cpu


def tree(root: int) -> list[int]:
    """``root`` and all its live descendants."""
    parents: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None:
                parents.setdefault(st[0], []).append(int(name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += parents.get(pid, [])
    return out


def machine_busy_seconds() -> float:
    """CPU seconds every CPU of the machine spent busy (not idle or waiting on I/O) since boot.

    Deltas of this around a block of calls, on an otherwise quiet machine, give the CPU a
    task costs across every process it touches, short-lived ones included: per-process tick
    accounting charges a process living under a tick either a whole tick or nothing.
    """
    with open("/proc/stat") as f:
        values = [int(x) for x in f.readline().split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / _TICK


def memory_mb(roots: list[int], exclude: tuple[int, ...] = ()) -> dict[str, float]:
    """Resident (RSS), proportional (PSS) and peak resident (sum of VmHWM) memory, in MiB."""
    rss = pss = hwm = 0
    for root in roots:
        for pid in tree(root):
            if pid in exclude:
                continue
            try:
                with open(f"/proc/{pid}/smaps_rollup") as f:
                    for line in f:
                        if line.startswith("Rss:"):
                            rss += int(line.split()[1])
                        elif line.startswith("Pss:"):
                            pss += int(line.split()[1])
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            hwm += int(line.split()[1])
            except OSError:
                continue
    return {"rss_mb": rss / 1024, "pss_mb": pss / 1024, "peak_rss_mb": hwm / 1024}
