"""``python -m benchmarks.preload DIR MODULE``: what preloading a package in the zygote costs
and saves, side by side in one run.

Two pools share the environment in DIR (``sandbox packages install ...``): one preloads
MODULE in its zygote, one does not. Reports the zygote's resident memory, a trivial task's
latency (the fork and teardown of a bigger zygote are on its path) and a task that imports
and uses MODULE, as medians over interleaved rounds.
"""

from __future__ import annotations

import argparse
import json
import sys
import statistics
import time

from sandbox import PoolConfig, Sandbox


def _zygote_rss_mb(sb: Sandbox) -> float:
    zygote = sb.snapshot()["python"]["zygote_pid"]
    with open(f"/proc/{zygote}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.preload")
    parser.add_argument("packages_dir")
    parser.add_argument("module")
    parser.add_argument("--use", default=None, help="code using the module (default: import it)")
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args(argv)
    use = args.use or f"import {args.module}\nreturn 1"
    common = dict(size=4, external_allow=(args.module,), packages_dir=args.packages_dir)
    pools = {
        "no preload": Sandbox(PoolConfig(**common)),
        f"preload {args.module}": Sandbox(PoolConfig(**common, preload=(args.module,))),
    }
    samples: dict[str, dict[str, list[float]]] = {n: {"trivial": [], "use": []} for n in pools}
    try:
        for sb in pools.values():
            for _ in range(5):
                sb.run("python", use, timeout_s=60)
        for _ in range(args.rounds):
            for name, sb in pools.items():
                for kind, code in (("trivial", "return 1"), ("use", use)):
                    t0 = time.perf_counter()
                    r = sb.run("python", code, timeout_s=60)
                    samples[name][kind].append((time.perf_counter() - t0) * 1000)
                    assert r.ok, r.message
                    time.sleep(0.005)
        report = {
            name: {
                "zygote_rss_mb": round(_zygote_rss_mb(sb), 1),
                "trivial_p50_ms": round(statistics.median(samples[name]["trivial"]), 3),
                "use_p50_ms": round(statistics.median(samples[name]["use"]), 3),
            }
            for name, sb in pools.items()
        }
    finally:
        for sb in pools.values():
            sb.close()
    print(json.dumps({"command": "python -m benchmarks.preload "
                      + " ".join(argv if argv is not None else sys.argv[1:]), "results": report}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
