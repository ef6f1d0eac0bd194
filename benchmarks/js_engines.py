"""What a fresh JavaScript engine per task costs, QuickJS-ng (ours) beside V8 (mini-racer).

    python -m benchmarks.js_engines [--tasks 400]

The question issue 20 asks before any engine change: would V8 in the child close the last
differences from n8n's runner at a bearable cost? mini-racer (V8 for Python) is not a
dependency of the project: install it where you run this (``pip install mini-racer``); without
it only QuickJS-ng is measured.

A parent that imported and warmed each engine (as our zygote does, ``gc.freeze`` included)
forks a child per task; the child makes a fresh context, evaluates a trivial Code node body
(``return [{json: {x: 6*7}}]``), checks the answer and exits. Per engine: the child's CPU
(user + system, ``os.wait4``), the wall time from before the fork to the reap, and the child's
peak memory; then the same without a fork (a context made and used in place). The engines
take turns task by task, so a shared machine's noise falls on all alike; medians.

V8 is initialised ``--single-threaded``: without it a V8 worker thread lives in the parent and
a child that collects garbage aborts. Even so mini-racer runs each context on a thread of its
own, which our child's filter and its process limit deny (the child is killed by SIGABRT),
and V8 reserves terabytes of address space, which our per-task address-space limit refuses:
this measures the cost with those walls down, not a configuration we could ship.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import quickjs

SNIPPET = "return [{json: {x: 6*7}}]"
CODE = "JSON.stringify((function () {\n" + SNIPPET + "\n})())"
EXPECT = '[{"json":{"x":42}}]'


def quickjs_task() -> None:
    ctx = quickjs.Context()
    assert ctx.eval(CODE) == EXPECT


def engines() -> dict[str, Callable[[], None]]:
    out: dict[str, Callable[[], None]] = {"fork and exit only": lambda: None,
                                          "quickjs-ng": quickjs_task}
    try:
        from py_mini_racer import MiniRacer, init_mini_racer  # type: ignore[import-not-found]
    except ImportError:
        return out
    init_mini_racer(flags=["--single-threaded"])

    def v8_task() -> None:
        ctx = MiniRacer()
        try:
            assert ctx.eval(CODE) == EXPECT
        finally:
            ctx.close()

    out["v8 (mini-racer)"] = v8_task
    return out


def forked(task: Callable[[], None]) -> tuple[float, float, float]:
    """(wall ms, child CPU ms, child peak MB) of one task in a fresh child."""
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            task()
            os._exit(0)
        except BaseException:
            os._exit(3)
    _, status, usage = os.wait4(pid, 0)
    assert status == 0, f"the child ended with status {status}"
    return ((time.perf_counter() - started) * 1000, (usage.ru_utime + usage.ru_stime) * 1000,
            usage.ru_maxrss / 1024)


def in_place(task: Callable[[], None]) -> tuple[float, float, float]:
    started, cpu = time.perf_counter(), time.process_time()
    task()
    return (time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000, 0.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.js_engines",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", type=int, default=400)
    args = ap.parse_args(argv)
    tasks = engines()
    for task in tasks.values():  # warmed in the parent, as a zygote is
        for _ in range(3):
            task()
    gc.collect()
    gc.freeze()
    print(f"load average {os.getloadavg()[0]:.1f}; {len(tasks) - 1} engine(s)")
    print(f"{'how':9} {'engine':20} {'wall p50':>9} {'cpu p50':>8} {'peak MB':>8}")
    for how, run in (("fork", forked), ("in place", in_place)):
        rows: dict[str, list[Any]] = {name: [] for name in tasks}
        for _ in range(args.tasks):
            for name, task in tasks.items():
                if how == "fork" or name != "fork and exit only":
                    rows[name].append(run(task))
        for name, got in rows.items():
            if got:
                wall, cpu, peak = (statistics.median(x[i] for x in got) for i in range(3))
                print(f"{how:9} {name:20} {wall:9.2f} {cpu:8.2f} {peak:8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
