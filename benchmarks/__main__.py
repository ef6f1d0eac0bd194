"""``python -m benchmarks``: trivial-snippet latency, warm pools beside their baselines.

Every system runs once per round, in turn, so machine drift hits all of them alike; the cold
baselines (tens of ms each) run every ``--cold-every`` rounds. After each system the harness
pauses ``--pause-ms``, so each task finds its pool refilled ("warm"); the back-to-back row
shows the same snippet with no pause, where the refill competes with the next task.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable

from benchmarks import baselines
from sandbox import PoolConfig, Sandbox


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--cold-every", type=int, default=5, help="run cold baselines every Nth round")
    parser.add_argument("--pause-ms", type=float, default=5.0, help="pause after each measured call")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    with Sandbox(PoolConfig(size=4), runtimes=("python", "javascript")) as sb:

        def warm(runtime: str, code: str) -> Callable[[], None]:
            def run() -> None:
                r = sb.run(runtime, code)
                assert r.ok, r.message

            return run

        py = warm("python", "return 6 * 7")
        js = warm("javascript", "return 6 * 7")
        for _ in range(50):  # pools full, caches hot
            py()
            js()
        systems = {
            "sandbox python (warm pool)": py,
            "sandbox javascript (warm pool)": js,
            "in-process exec (python floor)": baselines.in_process_exec(),
            "in-process quickjs (js floor)": baselines.in_process_quickjs(),
        }
        cold = {
            "cold nsjail python3 -c": baselines.cold_nsjail(),
            "subprocess python3 -c": baselines.plain_subprocess(),
        }
        samples: dict[str, list[float]] = {name: [] for name in [*systems, *cold]}
        for i in range(args.rounds):
            batch = dict(systems)
            if i % args.cold_every == 0:
                batch.update(cold)
            for name, fn in batch.items():
                samples[name].append(timed(fn))
                time.sleep(args.pause_ms / 1000.0)  # let the refill finish: measure warm
        samples["sandbox python (back-to-back)"] = [timed(py) for _ in range(args.rounds)]

    rows = {
        name: {"n": len(s), "p50_ms": statistics.median(s), "p90_ms": percentile(s, 90),
               "p99_ms": percentile(s, 99)}
        for name, s in samples.items()
    }
    warm_p50 = rows["sandbox python (warm pool)"]["p50_ms"]
    report = {
        "command": "python -m benchmarks " + " ".join(argv or []),
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": os.cpu_count()},
        "results": rows,
        "ratios_to_python_warm_p50": {name: row["p50_ms"] / warm_p50 for name, row in rows.items()},
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{'system':34} {'n':>5} {'p50 ms':>9} {'p90 ms':>9} {'p99 ms':>9} {'p50 / py warm':>14}")
        for name, row in rows.items():
            ratio = report["ratios_to_python_warm_p50"][name]
            print(f"{name:34} {row['n']:5d} {row['p50_ms']:9.3f} {row['p90_ms']:9.3f} "
                  f"{row['p99_ms']:9.3f} {ratio:14.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
