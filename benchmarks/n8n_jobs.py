"""Code node jobs one after another through the n8n runner's port to the pools, one source tree
against another, in one run.

    python -m benchmarks.n8n_jobs BEFORE AFTER [--runs 2] [--tasks 300] [--language python]
                                               [--isolation worker]

BEFORE and AFTER are checkouts of this project: each run is a process of its own with the
tree on ``PYTHONPATH``, the runner's pools as n8n's own variables make them (its import
defaults among them: a package's ``importlib`` calls checked), 2 slots, on a loop of its own
(``sandbox.n8n.backend.PoolsBackend``, what ``sandbox n8n-runner`` drives, without n8n or
its WebSocket). It runs 20 jobs of one workflow to warm up, then ``--tasks`` more, one at a
time; the trees take turns, the order flipping every run. Per run: tasks/s and p50; then the
medians and their ratio, after / before.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

WARM_UP = 20

# What each run executes, inside the tree under test: only the runner's own modules.
_RUN = r"""
import dataclasses, json, sys, time
from runtimes import codec
from sandbox.config import Limits
from sandbox.host.loop import Loop
from sandbox.n8n.backend import PoolsBackend
from sandbox.n8n.config import N8nRunnerConfig
from sandbox.n8n.task import Job

language, isolation, tasks, warm = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
code = {"python": "return [{'json': {'x': 6 * 7}}]",
        "javascript": "return [{json: {x: 6 * 7}}]"}[language]
config = dataclasses.replace(
    N8nRunnerConfig.load(env={"N8N_RUNNERS_AUTH_TOKEN": "unused"}).pool_config(), size=2)
loop, results = Loop(), {}
backend = PoolsBackend(config, (language,), isolation)
backend.attach(loop, results.__setitem__)
job = Job(language, code, codec.encode(None), Limits(timeout_s=10), "benchmark-workflow")

def one(key):
    backend.submit(key, job)
    end = time.monotonic() + 40
    while key not in results and time.monotonic() < end:
        loop.run_once(0.5)
    result = results.pop(key)
    if result.status.value != "ok":
        raise SystemExit(f"{key}: {result.status.value}: {result.message}")

try:
    for i in range(warm):
        one(f"warm-{i}")
    times, started = [], time.perf_counter()
    for i in range(tasks):
        t0 = time.perf_counter()
        one(f"job-{i}")
        times.append(time.perf_counter() - t0)
    wall = time.perf_counter() - started
finally:
    backend.close()
    loop.close()
times.sort()
print(json.dumps({"tasks_per_s": tasks / wall, "p50_ms": times[len(times) // 2] * 1000}))
"""


def one_run(tree: Path, language: str, isolation: str, tasks: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-c", _RUN, language, isolation, str(tasks),
                           str(WARM_UP)], env=env, capture_output=True, text=True, timeout=900,
                          stdin=subprocess.DEVNULL, cwd=tree)
    if done.returncode != 0:
        raise SystemExit(f"{tree}: {done.stderr.strip() or done.stdout.strip()}")
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.n8n_jobs",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--tasks", type=int, default=300)
    ap.add_argument("--language", choices=("python", "javascript"), default="python")
    ap.add_argument("--isolation", choices=("process", "worker"), default="worker")
    args = ap.parse_args(argv)
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    for i in range(args.runs):
        for name in (("before", "after") if i % 2 == 0 else ("after", "before")):
            figures = one_run(trees[name], args.language, args.isolation, args.tasks)
            runs[name].append(figures)
            print(f"run {i + 1} {name}: {figures['tasks_per_s']:.0f} tasks/s, "
                  f"p50 {figures['p50_ms']:.2f} ms", file=sys.stderr)
    print(f"| {args.language}, {args.isolation}, medians of {args.runs} | before | after | "
          "after / before |")
    print("|---|---:|---:|---:|")
    for figure in ("tasks_per_s", "p50_ms"):
        before = statistics.median(r[figure] for r in runs["before"])
        after = statistics.median(r[figure] for r in runs["after"])
        print(f"| {figure} | {before:.2f} | {after:.2f} | {after / before:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
