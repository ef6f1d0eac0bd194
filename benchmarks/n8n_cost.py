"""What a trivial Code node task costs our runner, one source tree against another, in one run.

    python -m benchmarks.n8n_cost BEFORE AFTER [--runs 4] [--tasks 400] [--modes process,worker]

BEFORE and AFTER are checkouts of this project (``git worktree add`` or ``git archive``):
each run starts ``sandbox n8n-runner --types javascript`` from one of them (``PYTHONPATH``),
behind a mock of n8n's broker of its own (``benchmarks/n8n_mock``), sends 30 tasks to warm
it up, then ``--tasks`` trivial tasks one after another, and stops it; the trees take turns,
the order flipping every run, so a shared machine's noise falls on both alike. Per run: the
runner's own CPU per task (its whole process tree, the runner, nsjail, the zygote and every
child, reaped ones included, so other processes' load stays out of it), the machine's busy
CPU per task (everything, the mock broker and this process included), p50 and p99 from the
broker having a task to its answer, and tasks/s; then the medians of the runs and their
ratios, after / before.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import procs
from benchmarks.n8n_mock import runners
from benchmarks.n8n_mock.server import MockBroker

_TICK = os.sysconf("SC_CLK_TCK")
WARM_UP = 30
SLOTS = 4


def tree_cpu_s(root: int) -> float:
    """CPU seconds of ``root``'s live process tree, with what its reaped children used."""
    ticks = 0
    for pid in procs.tree(root):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return ticks / _TICK


def _start(tree: Path, isolation: str, directory: str) -> runners.MockSystem:
    broker = MockBroker(task_timeout_s=runners.TASK_TIMEOUT_S, heartbeat_s=runners.HEARTBEAT_S)
    env = {**os.environ, "PYTHONPATH": str(tree), "N8N_RUNNERS_TASK_BROKER_URI": broker.uri,
           "N8N_RUNNERS_AUTH_TOKEN": broker.auth_token, "N8N_RUNNERS_MAX_CONCURRENCY": str(SLOTS),
           "N8N_RUNNERS_TASK_TIMEOUT": str(runners.TASK_TIMEOUT_S)}
    args = [sys.executable, "-m", "sandbox", "n8n-runner", "--types", "javascript",
            "--isolation", isolation]
    return runners.MockSystem._start(f"{tree.name}-{isolation}", broker, args, env, SLOTS, directory)


def one_run(tree: Path, isolation: str, tasks: int, directory: str) -> dict[str, float]:
    system = _start(tree, isolation, directory)
    try:
        for _ in range(WARM_UP):
            system.call()
        times = []
        busy0, cpu0, t0 = procs.machine_busy_seconds(), tree_cpu_s(system.proc.pid), time.perf_counter()
        for _ in range(tasks):
            started = time.perf_counter()
            system.call()
            times.append(time.perf_counter() - started)
        wall = time.perf_counter() - t0
        cpu, busy = tree_cpu_s(system.proc.pid) - cpu0, procs.machine_busy_seconds() - busy0
    finally:
        system.close()
    times.sort()
    return {"runner_cpu_ms": cpu * 1000 / tasks, "machine_cpu_ms": busy * 1000 / tasks,
            "p50_ms": times[len(times) // 2] * 1000, "p99_ms": times[int(len(times) * 0.99)] * 1000,
            "tasks_per_s": tasks / wall}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.n8n_cost", description=__doc__.split("\n")[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--tasks", type=int, default=400)
    ap.add_argument("--modes", default="process,worker")
    args = ap.parse_args(argv)
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    modes = [m for m in args.modes.split(",") if m]
    rows: dict[tuple[str, str], list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as directory:
        for run in range(args.runs):
            for mode in modes:
                order = ["before", "after"] if run % 2 == 0 else ["after", "before"]
                for label in order:
                    row = one_run(trees[label], mode, args.tasks, directory)
                    rows.setdefault((mode, label), []).append(row)
                    print(run, mode, label, {k: round(v, 2) for k, v in row.items()}, flush=True)
    print()
    for mode in modes:
        med: dict[str, dict[str, Any]] = {}
        for label in ("before", "after"):
            runs = rows[(mode, label)]
            med[label] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            print(f"{mode} {label}: " + ", ".join(f"{k} {v:.2f}" for k, v in med[label].items()))
        print(f"{mode} after/before: " + ", ".join(
            f"{k} {med['after'][k] / med['before'][k]:.2f}" for k in med["after"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
