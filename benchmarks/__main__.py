"""``python -m benchmarks``: trivial-snippet latency, warm pool vs baselines, interleaved."""

from __future__ import annotations

import argparse
import json
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


def measure(systems: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Run every system once per round, in turn, so machine drift hits all of them alike."""
    samples: dict[str, list[float]] = {name: [] for name in systems}
    for _ in range(rounds):
        for name, fn in systems.items():
            t0 = time.perf_counter()
            fn()
            samples[name].append((time.perf_counter() - t0) * 1000.0)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--cold-every", type=int, default=5, help="run cold baselines every Nth round")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    with Sandbox(PoolConfig(size=4)) as sb:
        for _ in range(50):  # warm up: pool full, caches hot
            sb.run("python", "return 1")

        def warm() -> None:
            r = sb.run("python", "return 6 * 7")
            assert r.ok, r.message

        systems = {"sandbox warm pool (python)": warm, "in-process exec": baselines.in_process_exec()}
        cold = {"cold nsjail python3 -c": baselines.cold_nsjail(), "subprocess python3 -c": baselines.plain_subprocess()}
        samples = {name: [] for name in [*systems, *cold]}
        for i in range(args.rounds):
            batch = dict(systems)
            if i % args.cold_every == 0:
                batch.update(cold)
            for name, got in measure(batch, 1).items():
                samples[name] += got

    rows = {
        name: {"n": len(s), "p50_ms": statistics.median(s), "p90_ms": percentile(s, 90), "p99_ms": percentile(s, 99)}
        for name, s in samples.items()
    }
    warm_p50 = rows["sandbox warm pool (python)"]["p50_ms"]
    report = {
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": __import__("os").cpu_count()},
        "results": rows,
        "ratios": {name: row["p50_ms"] / warm_p50 for name, row in rows.items()},
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{'system':32} {'n':>5} {'p50 ms':>9} {'p90 ms':>9} {'p99 ms':>9} {'p50 / warm':>11}")
        for name, row in rows.items():
            print(f"{name:32} {row['n']:5d} {row['p50_ms']:9.3f} {row['p90_ms']:9.3f} {row['p99_ms']:9.3f} {report['ratios'][name]:11.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
