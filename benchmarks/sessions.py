"""Sessions through the local API (issue 23's goals), each beside its baseline in one run:

- a session call against a worker-mode task, alternating (one each, ...), trivial code:
  p50 of each and their ratio (goal: the session's at most 1.2x the worker's);
- a new session ready from the pool: ``Sandbox.session()`` with an idle child waiting
  (goal: p50 at most 5 ms), beside a trivial fresh-process task on the same pool;
- ``--idle N`` sessions held at once (goal: 1,000 Python sessions), each with a name bound
  by one call, and the jail's total PSS, RSS and per session once they are all open.

    python -m benchmarks.sessions [--calls 500] [--opens 200] [--idle 1000] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from benchmarks.procs import memory_mb
from benchmarks.stats import summarize
from sandbox import PoolConfig, Sandbox, Status

CODE = "return 6 * 7"
MiB = 1024 * 1024


def _wait(predicate, timeout_s: float = 30.0) -> None:
    end = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > end:
            raise RuntimeError("the pool did not settle")
        time.sleep(0.002)


def calls(sb: Sandbox, n: int) -> dict[str, object]:
    """A session call beside a worker-mode task, alternating."""
    session = sb.session("python")
    worker, call = [], []
    try:
        for i in range(n + 50):
            t = time.perf_counter()
            r = sb.run("python", CODE, isolation="worker", reuse_key="bench")
            w = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            s = session.run(CODE)
            c = (time.perf_counter() - t) * 1000
            if r.status is not Status.OK or s.status is not Status.OK:
                raise RuntimeError(f"{r.status}: {r.message} / {s.status}: {s.message}")
            if i >= 50:
                worker.append(w)
                call.append(c)
    finally:
        session.close()
    out: dict[str, object] = {"worker-mode task": summarize(worker),
                              "session call": summarize(call)}
    out["ratio_p50"] = statistics.median(call) / statistics.median(worker)
    return out


def opens(sb: Sandbox, n: int) -> dict[str, object]:
    """A new session ready, with an idle child waiting in the pool, beside a fresh task."""
    size = sb.config.size
    ready, task = [], []
    for i in range(n + 10):
        _wait(lambda: sb.idle_children() >= size)
        t = time.perf_counter()
        session = sb.session("python")
        o = (time.perf_counter() - t) * 1000
        session.close()
        _wait(lambda: sb.idle_children() >= size)
        t = time.perf_counter()
        r = sb.run("python", CODE)
        f = (time.perf_counter() - t) * 1000
        if r.status is not Status.OK:
            raise RuntimeError(r.message)
        if i >= 10:
            ready.append(o)
            task.append(f)
    return {"new session ready": summarize(ready), "fresh-process task": summarize(task)}


def idle(count: int) -> dict[str, object]:
    """``count`` sessions held at once, each with state of its own; their memory."""
    config = PoolConfig(size=4, max_sessions=count + 8, jail_pids=2 * count + 64,
                        jail_memory_mb=20 * 1024, session_idle_timeout_s=3600)
    with Sandbox(config) as sb:
        _wait(lambda: sb.idle_children() >= config.size)
        jail = sb.snapshot()["python"]["jail_pid"]
        before = memory_mb([jail])
        sessions = []
        started = time.perf_counter()
        for i in range(count):
            s = sb.session("python")
            r = s.run("x = data", data=i)
            if r.status is not Status.OK:
                raise RuntimeError(f"session {i}: {r.status}: {r.message}")
            sessions.append(s)
        opened_s = time.perf_counter() - started
        _wait(lambda: sb.idle_children() >= config.size, 120)
        after = memory_mb([jail])
        check = [s.run("return x").value for s in sessions[:: max(1, count // 10)]]
        held = after["pss_mb"] - before["pss_mb"]
        return {"sessions": count, "opened_and_first_call_s": opened_s,
                "jail_before": before, "jail_with_sessions": after,
                "pss_mb_per_session": held / count, "rss_mb_per_session":
                (after["rss_mb"] - before["rss_mb"]) / count,
                "state_checked": check == list(range(0, count, max(1, count // 10)))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sessions")
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--opens", type=int, default=200)
    parser.add_argument("--idle", type=int, default=1000, help="sessions held at once (0: skip)")
    parser.add_argument("--out", default="")
    args = parser.parse_args(argv)
    doc: dict[str, object] = {"command": " ".join(["python -m benchmarks.sessions", *(argv or sys.argv[1:])])}
    with Sandbox(PoolConfig(size=4)) as sb:
        _wait(lambda: sb.idle_children() >= 4)
        doc["calls"] = calls(sb, args.calls)
        doc["opens"] = opens(sb, args.opens)
    if args.idle:
        doc["idle"] = idle(args.idle)
    text = json.dumps(doc, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
