"""``python -m benchmarks.pyodide``: the pyodide runtime beside the python runtime, one run.

The pyodide side is measured through ``sandbox.pyodide.Launcher`` (the pool does not serve
multi-task children yet, issue 16), the python side through the local API (``Sandbox``),
both with real jails, in interleaved rounds so that machine drift hits both alike:

* worker cold start: a new worker's spawn-to-ready time in a running jail (pyodide: fork,
  exec of Node, Pyodide loaded, the guest rehearsed); python: the time from a task's end to
  its replacement child being idle is not visible from outside, so the jail-start-to-first-
  idle-child time of both is reported, and the pyodide per-worker spawn times separately;
* trivial snippet, a 20-line snippet, a numeric loop (~10 ms in-process): p50/p99;
* memory per worker: RSS and PSS of a ready pyodide worker (Node, V8, the Wasm heap) and of
  an idle python child (forked, copy-on-write shared with its zygote: PSS is the fair one);
* workers are not retired by count or age during the latency rounds (the cost of a
  retirement is a cold start, amortised over ``max_tasks``);
* a pure-Python package (``attrs``, installed with ``sandbox packages install --runtime
  pyodide``): its import per task (modules a task imports are dropped after it) and with
  the package preloaded by the worker, and the worker start with the package loaded.
"""

from __future__ import annotations

import argparse
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
from sandbox import PoolConfig, Sandbox
from sandbox.pyodide import Launcher, PyodideConfig

TRIVIAL = "return 6 * 7"
PACKAGE = "attrs"
USE_PACKAGE = ("import attrs\n@attrs.define\nclass P:\n    x: int\n    y: int\n"
               "return attrs.asdict(P(1, 2))")


def _status_kb(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))


def _children(pid: int) -> list[int]:
    return [p for p in procs.tree(pid) if p != pid]


def _memory_of(pids: list[int]) -> dict[str, float]:
    rows = [procs.memory_mb([pid]) for pid in pids]
    # procs.memory_mb walks the tree: a leaf's own numbers are what we want
    return {"rss_mb": statistics.median(r["rss_mb"] for r in rows),
            "pss_mb": statistics.median(r["pss_mb"] for r in rows)} if rows else {}


def _timed(run: Any, code: str, data: Any = None, **limits: Any) -> float:
    t0 = time.perf_counter()
    r = run(code, data, **limits)
    took = (time.perf_counter() - t0) * 1000
    if not r.ok:
        raise RuntimeError(f"benchmark snippet failed: {r.status}: {r.message}")
    return took


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pyodide")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="bench-results/pyodide.json")
    parser.add_argument("--quick", action="store_true", help="20 rounds, for CI")
    args = parser.parse_args(argv)
    rounds = 20 if args.quick else args.rounds
    cpu = cpu_loop_body()
    pool = PoolConfig(size=args.workers, stdlib_allow=("*",), external_allow=("*",))
    report: dict[str, Any] = {"command": "python -m benchmarks.pyodide "
                              + " ".join(argv if argv is not None else sys.argv[1:]),
                              "measured_through": "sandbox.pyodide.Launcher (pyodide), "
                                                  "sandbox.Sandbox local API (python)"}
    env_root = tempfile.mkdtemp(prefix="bench-pyodide-env-")
    os.chmod(env_root, 0o755)
    try:
        t0 = time.perf_counter()
        sb = Sandbox(pool, runtimes=("python",))
        while sb.idle_children() < 1:
            time.sleep(0.001)
        python_start = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        # no retirement by count during the rounds: a retiring worker's replacement loads
        # Pyodide (seconds of CPU) beside the measured tasks; its cost is the cold start's
        pyo = Launcher(PyodideConfig(size=args.workers, max_tasks=1 << 20, max_age_s=3600), pool)
        pyo.wait_ready(1, timeout_s=120)
        pyodide_start = (time.perf_counter() - t0) * 1000
        pyo.wait_ready(timeout_s=120)
        try:
            systems = {"python": lambda c, d=None, **k: sb.run("python", c, d, **k),
                       "pyodide": lambda c, d=None, **k: pyo.run(c, d, **k)}
            cases = {"trivial": (TRIVIAL, None), "20-line snippet": (TWENTY_LINES, ROWS),
                     "numeric loop (~10 ms in-process)": (cpu, None)}
            samples: dict[str, dict[str, list[float]]] = {s: {c: [] for c in cases} for s in systems}
            for system in systems.values():  # warm both up
                for code, data in cases.values():
                    _timed(system, code, data, timeout_s=30)
            for _ in range(rounds):
                for case, (code, data) in cases.items():
                    for name, system in systems.items():
                        samples[name][case].append(_timed(system, code, data, timeout_s=30))
                        time.sleep(0.005)
            report["latency"] = {name: {case: summarize(s) for case, s in by_case.items()}
                                 for name, by_case in samples.items()}
            pyo.wait_ready(timeout_s=120)
            report["memory_per_worker"] = {
                "python idle child": _memory_of(_children(_zygote(sb._pool("python")))),
                "pyodide ready worker": _memory_of(_pyodide_workers(pyo)),
            }
            report["cold_start_ms"] = {
                "python: jail start to first idle child": python_start,
                "pyodide: jail start to first ready worker": pyodide_start,
                "pyodide: worker spawn to ready (each)": pyo.spawn_ms[:],
            }
        finally:
            pyo.close()
            sb.close()
        report["package"] = _package_cost(env_root, pool, rounds)
    finally:
        shutil.rmtree(env_root, ignore_errors=True)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print(render(report))
    return 0


def _zygote(pool: Any) -> int:
    nsjail = pool._jail.process.pid
    return _children(nsjail)[0]


def _pyodide_workers(pyo: Launcher) -> list[int]:
    nsjail = pyo.jail.process.pid
    everyone = [p for p in procs.tree(nsjail) if p != nsjail]
    return [p for p in everyone if _comm(p) == "node"]


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def _package_cost(env_root: str, pool: PoolConfig, rounds: int) -> dict[str, Any]:
    from sandbox import pyodide_packages

    env = os.path.join(env_root, "env")
    pyodide_packages.install([PACKAGE], env, quiet=True)
    out: dict[str, Any] = {"package": PACKAGE, "snippet": USE_PACKAGE}
    for label, preload in (("imported per task", ()), ("preloaded by the worker", (PACKAGE,))):
        with Launcher(PyodideConfig(size=1, packages_dir=env, preload=preload), pool) as pyo:
            pyo.wait_ready(timeout_s=120)
            run = lambda c, d=None, **k: pyo.run(c, d, **k)  # noqa: E731
            _timed(run, USE_PACKAGE, timeout_s=30)
            use = [_timed(run, USE_PACKAGE, timeout_s=30) for _ in range(max(10, rounds // 4))]
            trivial = [_timed(run, TRIVIAL, timeout_s=30) for _ in range(max(10, rounds // 4))]
            out[label] = {"use p50_ms": statistics.median(use), "trivial p50_ms": statistics.median(trivial),
                          "worker spawn to ready ms": pyo.spawn_ms[:]}
    return out


def render(report: dict[str, Any]) -> str:
    lines = [f"`{report['command']}` (measured through {report['measured_through']})", "",
             "| case | python p50 / p99 ms | pyodide p50 / p99 ms | pyodide / python (p50) |",
             "|---|---|---|---|"]
    lat = report["latency"]
    for case in lat["python"]:
        p, q = lat["python"][case], lat["pyodide"][case]
        lines.append(f"| {case} | {p['p50_ms']:.2f} / {p['p99_ms']:.2f} | "
                     f"{q['p50_ms']:.2f} / {q['p99_ms']:.2f} | {q['p50_ms'] / p['p50_ms']:.1f}x |")
    lines += ["", "| memory per worker | RSS MiB | PSS MiB |", "|---|---|---|"]
    for name, m in report["memory_per_worker"].items():
        lines.append(f"| {name} | {m.get('rss_mb', 0):.1f} | {m.get('pss_mb', 0):.1f} |")
    lines += ["", "| cold start | ms |", "|---|---|"]
    for name, value in report["cold_start_ms"].items():
        shown = (f"{statistics.median(value):.0f} (median of {len(value)})" if isinstance(value, list)
                 and value else f"{value:.0f}" if not isinstance(value, list) else "-")
        lines.append(f"| {name} | {shown} |")
    pkg = report["package"]
    lines += ["", f"| package `{pkg['package']}` | use p50 ms | trivial p50 ms | worker start ms |",
              "|---|---|---|---|"]
    for label in ("imported per task", "preloaded by the worker"):
        row = pkg[label]
        spawn = row["worker spawn to ready ms"]
        lines.append(f"| {label} | {row['use p50_ms']:.2f} | {row['trivial p50_ms']:.2f} | "
                     f"{statistics.median(spawn):.0f} |" if spawn else f"| {label} | - | - | - |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
