"""``python -m benchmarks.pyodide``: the pyodide runtime beside the python runtime, one run.

Every side is measured through the local API (``Sandbox.run``) with real jails, in
interleaved rounds so that machine drift hits all alike: python with a fresh process per
task (its default), python in worker mode (``isolation="worker"``: a warm child per tenant,
the closest python analogue of a pyodide worker), and pyodide (whose children are always
workers).

* cold start: a jail's start to its first idle child or ready worker; and a worker's
  replacement (a task that ends its worker, then the time until the pool has an idle worker
  again: fork, exec of Node, Pyodide loaded, the guest rehearsed);
* trivial snippet, a 20-line snippet, a numeric loop (~10 ms in-process): p50/p99;
* memory per worker: RSS and PSS of a ready pyodide worker (Node, V8, the Wasm heap) and of
  an idle python child (forked, copy-on-write shared with its zygote: PSS is the fair one);
* workers are not retired by count or age during the rounds (a retirement's cost is a cold
  start, amortised over ``worker_tasks``);
* a pure-Python package (``attrs``, installed with ``sandbox packages install --runtime
  pyodide``): its import per task (modules a task imports are dropped after it) and with the
  package preloaded by the worker.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from typing import Any

from benchmarks import procs
from benchmarks.harness import ROWS, TWENTY_LINES, cpu_loop_body
from benchmarks.stats import summarize
from sandbox import PoolConfig, PyodideConfig, Sandbox

TRIVIAL = "return 6 * 7"
PACKAGE = "attrs"
USE_PACKAGE = ("import attrs\n@attrs.define\nclass P:\n    x: int\n    y: int\n"
               "return attrs.asdict(P(1, 2))")
# no retirement by count or age during the rounds: a retiring worker's replacement loads
# Pyodide (seconds of CPU) beside the measured tasks; its cost is the cold start's
_TASKS, _AGE_S = 1_000_000, 86400.0


def _idle(sb: Sandbox, runtime: str) -> list[int]:
    """Host pids of the runtime's idle children (or ready workers)."""
    children = sb.snapshot()[runtime]["children"]
    return [host for state, host in children.values() if state == "idle" and host]


def _wait_idle(sb: Sandbox, runtime: str, count: int, timeout_s: float = 180.0) -> float:
    """Seconds until ``count`` children are idle."""
    t0 = time.perf_counter()
    while len(_idle(sb, runtime)) < count:
        if time.perf_counter() - t0 > timeout_s:
            raise RuntimeError(f"{runtime}: {count} idle children not within {timeout_s:g} s")
        time.sleep(0.002)
    return time.perf_counter() - t0


def _memory_of(pids: list[int]) -> dict[str, float]:
    rows = [procs.memory_mb([pid]) for pid in pids]
    return {"rss_mb": statistics.median(r["rss_mb"] for r in rows),
            "pss_mb": statistics.median(r["pss_mb"] for r in rows)} if rows else {}


def _timed(run: Any, code: str, data: Any = None) -> float:
    t0 = time.perf_counter()
    r = run(code, data)
    took = (time.perf_counter() - t0) * 1000
    if not r.ok:
        raise RuntimeError(f"benchmark snippet failed: {r.status}: {r.message}")
    return took


def _started(config: PoolConfig, runtime: str) -> tuple[Sandbox, float]:
    """A sandbox with ``runtime``'s jail up, and the ms from its start to a first idle child."""
    t0 = time.perf_counter()
    sb = Sandbox(config, runtimes=(runtime,))
    _wait_idle(sb, runtime, 1)
    return sb, (time.perf_counter() - t0) * 1000


def _replacement_ms(sb: Sandbox, samples: int) -> list[float]:
    """A pyodide worker's replacement: end one (a crash retires it), time until idle again."""
    out = []
    want = sb.config.size
    for _ in range(samples):
        _wait_idle(sb, "pyodide", want)
        r = sb.run("pyodide", "import os\nos._exit(3)", timeout_s=10)
        if r.status.value != "crashed":
            raise RuntimeError(f"the worker was not ended: {r.status}: {r.message}")
        t0 = time.perf_counter()
        _wait_idle(sb, "pyodide", want)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pyodide")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="bench-results/pyodide.json")
    parser.add_argument("--quick", action="store_true", help="20 rounds, for CI")
    args = parser.parse_args(argv)
    rounds = 20 if args.quick else args.rounds
    cpu = cpu_loop_body()
    pool = PoolConfig(size=args.workers, stdlib_allow=("*",), external_allow=("*",),
                      worker_tasks=_TASKS, worker_age_s=_AGE_S,
                      pyodide=PyodideConfig(worker_tasks=_TASKS, worker_age_s=_AGE_S))
    report: dict[str, Any] = {"command": "python -m benchmarks.pyodide "
                              + " ".join(argv if argv is not None else sys.argv[1:]),
                              "measured_through": "sandbox.Sandbox (the local API), real jails"}
    env_root = tempfile.mkdtemp(prefix="bench-pyodide-env-")
    os.chmod(env_root, 0o755)
    try:
        py, python_start = _started(pool, "python")
        pyo, pyodide_start = _started(pool, "pyodide")
        try:
            _wait_idle(pyo, "pyodide", args.workers)
            systems = {
                "python": lambda c, d=None: py.run("python", c, d, timeout_s=30),
                "python worker mode": lambda c, d=None: py.run("python", c, d, timeout_s=30,
                                                               isolation="worker"),
                "pyodide": lambda c, d=None: pyo.run("pyodide", c, d, timeout_s=30),
            }
            cases = {"trivial": (TRIVIAL, None), "20-line snippet": (TWENTY_LINES, ROWS),
                     "numeric loop (~10 ms in-process)": (cpu, None)}
            samples: dict[str, dict[str, list[float]]] = {s: {c: [] for c in cases} for s in systems}
            for system in systems.values():  # warm all up
                for code, data in cases.values():
                    _timed(system, code, data)
            for _ in range(rounds):
                for case, (code, data) in cases.items():
                    for name, system in systems.items():
                        samples[name][case].append(_timed(system, code, data))
                        time.sleep(0.005)
            report["latency"] = {name: {case: summarize(s) for case, s in by_case.items()}
                                 for name, by_case in samples.items()}
            _wait_idle(pyo, "pyodide", args.workers)
            report["memory_per_worker"] = {
                "python idle child": _memory_of(_idle(py, "python")),
                "pyodide ready worker": _memory_of(_idle(pyo, "pyodide")),
            }
            report["cold_start_ms"] = {
                "python: jail start to first idle child": python_start,
                "pyodide: jail start to first ready worker": pyodide_start,
                "pyodide: a worker's replacement, end to ready (each)":
                    _replacement_ms(pyo, 2 if args.quick else 5),
            }
        finally:
            pyo.close()
            py.close()
        report["package"] = _package_cost(env_root, pool, rounds)
    finally:
        shutil.rmtree(env_root, ignore_errors=True)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print(render(report))
    return 0


def _package_cost(env_root: str, pool: PoolConfig, rounds: int) -> dict[str, Any]:
    from dataclasses import replace

    from sandbox.pyodide import packages as pyodide_packages

    env = os.path.join(env_root, "env")
    pyodide_packages.install([PACKAGE], env, quiet=True)
    out: dict[str, Any] = {"package": PACKAGE, "snippet": USE_PACKAGE}
    for label, preload in (("imported per task", ()), ("preloaded by the worker", (PACKAGE,))):
        config = replace(pool, size=1, pyodide=replace(pool.pyodide, packages_dir=env,
                                                       preload=preload))
        sb, start_ms = _started(config, "pyodide")
        with sb:
            run = functools.partial(sb.run, "pyodide", timeout_s=30)
            _timed(run, USE_PACKAGE)
            use = [_timed(run, USE_PACKAGE) for _ in range(max(10, rounds // 4))]
            trivial = [_timed(run, TRIVIAL) for _ in range(max(10, rounds // 4))]
            out[label] = {"use p50_ms": statistics.median(use),
                          "trivial p50_ms": statistics.median(trivial),
                          "jail start to ready ms": start_ms}
    return out


def render(report: dict[str, Any]) -> str:
    lat = report["latency"]
    names = list(lat)
    lines = [f"`{report['command']}` (measured through {report['measured_through']})", "",
             "| case | " + " | ".join(f"{n} p50 / p99 ms" for n in names)
             + " | pyodide / python (p50) |", "|---" * (len(names) + 2) + "|"]
    for case in lat["python"]:
        cells = [f"{lat[n][case]['p50_ms']:.2f} / {lat[n][case]['p99_ms']:.2f}" for n in names]
        ratio = lat["pyodide"][case]["p50_ms"] / lat["python"][case]["p50_ms"]
        lines.append(f"| {case} | " + " | ".join(cells) + f" | {ratio:.1f}x |")
    lines += ["", "| memory per worker | RSS MiB | PSS MiB |", "|---|---|---|"]
    for name, m in report["memory_per_worker"].items():
        lines.append(f"| {name} | {m.get('rss_mb', 0):.1f} | {m.get('pss_mb', 0):.1f} |")
    lines += ["", "| cold start | ms |", "|---|---|"]
    for name, value in report["cold_start_ms"].items():
        shown = (f"{statistics.median(value):.0f} (median of {len(value)})"
                 if isinstance(value, list) and value else f"{value:.0f}")
        lines.append(f"| {name} | {shown} |")
    pkg = report["package"]
    lines += ["", f"| package `{pkg['package']}` | use p50 ms | trivial p50 ms | jail start to "
              "ready ms |", "|---|---|---|---|"]
    for label in ("imported per task", "preloaded by the worker"):
        row = pkg[label]
        lines.append(f"| {label} | {row['use p50_ms']:.2f} | {row['trivial p50_ms']:.2f} | "
                     f"{row['jail start to ready ms']:.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
