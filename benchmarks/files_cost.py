"""What a task's own directory costs: a trivial python task through the local API, a pool
without ``files_mb`` beside one with it, alternating call by call in one run.

    python -m benchmarks.files_cost [--calls 1500] [--files-mb 16]

Each child of the second pool makes a mount namespace and a tmpfs of its own ahead of demand
(``runtimes/files.py``), and its teardown unmounts them: off the task's path, but CPU that a
busy machine's tasks share.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys

from benchmarks.harness import timed
from benchmarks.stats import summarize
from sandbox import PoolConfig, Sandbox


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.files_cost")
    parser.add_argument("--calls", type=int, default=1500, help="timed calls per side")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--files-mb", type=int, default=16)
    args = parser.parse_args(argv)
    names = ("files_mb=0", f"files_mb={args.files_mb}")
    with Sandbox(PoolConfig(size=4)) as plain, \
            Sandbox(PoolConfig(size=4, files_mb=args.files_mb)) as with_files:
        sides = {names[0]: plain, names[1]: with_files}

        def call(sb: Sandbox) -> None:
            r = sb.run("python", "return 1")
            if not r.ok:
                raise RuntimeError(f"{r.status.value}: {r.message}")

        for sb in sides.values():
            for _ in range(args.warmup):
                call(sb)
        samples: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(args.calls):
            for name, sb in sides.items():
                samples[name].append(timed(functools.partial(call, sb)))
    report: dict[str, object] = {name: summarize(s) for name, s in samples.items()}
    report["p50_ratio"] = round(summarize(samples[names[1]])["p50_ms"]
                                / summarize(samples[names[0]])["p50_ms"], 3)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
