"""The benchmark run: our service in each mode beside its baselines, interleaved.

Latency: every round runs every (scenario, system) pair once, in turn, so machine drift hits
all alike; the slow process-per-snippet baselines run every ``cold_every``-th round. After
each call the harness pauses ``pause_ms`` (a service's requests arrive spaced; back-to-back
load is the throughput sweep's business). Throughput: for each concurrency level, the daemon
and the embedded client take turns, each for ``sweep_s`` seconds of closed-loop clients.
CPU per task: a short back-to-back block per system, the machine's busy CPU time (every
process involved, short-lived children included) divided by the calls; on a shared machine
this includes its other load. Memory: PSS/RSS of each
system's processes at the end, and the peak resident size of the largest baseline child.

n8n's own JavaScript runner and our ``sandbox n8n-runner`` take part through a mock of n8n's
task broker (``benchmarks/n8n_mock``), each behind a broker of its own: in the latency rounds
of the trivial JavaScript scenario (a trivial Code node), in the CPU block and at every level
of the sweep, interleaved with the rest.
"""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from benchmarks import baselines, procs
from benchmarks.echo import EchoFloor
from benchmarks.n8n_mock import runners as n8n_mock
from sandbox import PoolConfig, Sandbox
from sandbox.client import Client

DATA_1K = {"user": {"id": 12345, "name": "Ada Lovelace", "email": "ada@example.com",
                    "tags": ["admin", "math", "engines"]},
           "items": [{"sku": f"SKU-{i:04d}", "qty": i, "price": 9.99 + i} for i in range(12)],
           "note": "x" * 200}


@dataclass(frozen=True)
class Scenario:
    name: str
    runtime: str
    code: str
    data: Any = None
    check: Callable[[Any], bool] = lambda value: True
    baselines: tuple[str, ...] = ()  # which baseline systems also run it
    options: dict[str, Any] = field(default_factory=dict)  # e.g. policy="restricted"


@dataclass
class Settings:
    rounds: int = 200
    cold_every: int = 5
    pause_ms: float = 5.0
    levels: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    sweep_s: float = 3.0
    cost_calls: int = 100
    daemon: bool = True
    slots: int = 8
    quick: bool = False
    n8n: bool = True  # n8n's JS runner and ours through the mock broker


def cpu_loop_body(target_ms: float = 10.0) -> str:
    """A pure-Python loop calibrated here to take ``target_ms`` in-process."""
    n = 10_000
    while True:
        body = f"n = 0\nfor i in range({n}):\n    n += i * i % 7\nreturn n"
        run = baselines.in_process_exec(body)
        t0 = time.perf_counter()
        run()
        took = (time.perf_counter() - t0) * 1000
        if took > 2:
            return f"n = 0\nfor i in range({int(n * target_ms / took)}):\n    n += i * i % 7\nreturn n"
        n *= 4


TWENTY_LINES = """
rows = data["rows"]
total = 0
count = 0
names = []
for row in rows:
    value = row["value"]
    if value is None:
        continue
    total += value
    count += 1
    names.append(row["name"].upper())
mean = total / count if count else 0.0
above = [n for n, r in zip(names, rows) if r["value"] and r["value"] > mean]
summary = {
    "count": count,
    "mean": round(mean, 3),
    "above": above,
}
return summary
""".strip()
ROWS = {"rows": [{"name": f"n{i}", "value": i if i % 7 else None} for i in range(20)]}


def scenarios() -> list[Scenario]:
    cpu = cpu_loop_body()
    return [
        Scenario("trivial python", "python", "return 6 * 7", check=lambda v: v == 42,
                 baselines=("in-process exec", "subprocess python3 -c", "cold nsjail python3 -c",
                            "pyzmq 3-hop echo")),
        Scenario("trivial javascript", "javascript", "return 6 * 7", check=lambda v: v == 42,
                 baselines=("in-process quickjs",)),
        Scenario("1 KB JSON in and out (python)", "python", "return data", DATA_1K,
                 check=lambda v: v == DATA_1K, baselines=("in-process exec",)),
        Scenario("1 MB bytes result (python)", "python", "return b'x' * (1 << 20)",
                 check=lambda v: isinstance(v, bytes) and len(v) == 1 << 20,
                 baselines=("in-process exec",)),
        Scenario("10 ms CPU-bound (python)", "python", cpu, check=lambda v: isinstance(v, int),
                 baselines=("in-process exec", "subprocess python3 -c")),
        Scenario("20-line snippet (python)", "python", TWENTY_LINES, ROWS,
                 check=lambda v: v["count"] == 17, baselines=("in-process exec",)),
        Scenario("20-line snippet, policy=restricted (python)", "python", TWENTY_LINES, ROWS,
                 check=lambda v: v["count"] == 17, options={"policy": "restricted"},
                 baselines=("in-process RestrictedPython",)),
    ]


COLD = ("subprocess python3 -c", "cold nsjail python3 -c")


class Progress:
    """A one-line progress bar on stderr (a line per phase when stderr is not a terminal)."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.phase = max(total, 1), 0, ""
        self.tty = sys.stderr.isatty()
        self.started = time.monotonic()

    def step(self, phase: str, n: int = 1) -> None:
        self.done += n
        if phase != self.phase and not self.tty:
            print(f"[bench] {phase}", file=sys.stderr, flush=True)
        self.phase = phase
        if self.tty:
            frac = min(1.0, self.done / self.total)
            bar = "#" * int(frac * 30)
            print(f"\r[{bar:<30}] {frac:4.0%} {time.monotonic() - self.started:5.0f}s {phase:<48}",
                  end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.tty:
            print(file=sys.stderr)


class Daemon:
    """``sandbox serve`` as a real subprocess on an ipc:// socket in a private directory."""

    def __init__(self, directory: str, slots: int) -> None:
        self.endpoint = f"ipc://{directory}/sandbox.sock"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sandbox", "serve", "--bind", self.endpoint, "--http", "",
             "--runners", "1", "--slots", str(slots)],
            stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.client = Client(self.endpoint, queue_timeout_s=60)
        result = self.client.run("python", "return 1", queue_timeout_s=60)
        if not result.ok:
            self.close()
            raise RuntimeError(f"the daemon did not answer: {result.message}")

    def close(self) -> None:
        self.client.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _service_call(run: Callable[..., Any], scenario: Scenario) -> Callable[[], None]:
    def call() -> None:
        result = run(scenario.runtime, scenario.code, scenario.data, **scenario.options)
        if not (result.ok and scenario.check(result.value)):
            raise RuntimeError(f"{scenario.name}: {result.status.value} {result.message}")

    return call


def _baseline_call(name: str, scenario: Scenario, echo: EchoFloor | None) -> Callable[[], Any]:
    if name == "in-process exec":
        return baselines.in_process_exec(scenario.code, scenario.data)
    if name == "in-process RestrictedPython":
        return baselines.in_process_restricted(scenario.code, scenario.data)
    if name == "in-process quickjs":
        return baselines.in_process_quickjs(scenario.code)
    if name == "subprocess python3 -c":
        return baselines.plain_subprocess(scenario.code)
    if name == "cold nsjail python3 -c":
        return baselines.cold_nsjail(scenario.code)
    if name == "pyzmq 3-hop echo":
        assert echo is not None
        return echo.call()
    raise ValueError(name)


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000.0


def _trivial(run: Callable[..., Any], runtime: str = "python",
             options: dict[str, Any] | None = None) -> Callable[[], None]:
    """One trivial snippet through ``run``; raises when it did not end ``ok``."""
    def call() -> None:
        r = run(runtime, "return 6 * 7", **(options or {}))
        if not r.ok:
            raise RuntimeError(f"{r.status.value}: {r.message}")

    return call


def _sweep(call: Callable[[], None], concurrency: int, seconds: float) -> tuple[int, float]:
    """Closed loop: ``concurrency`` threads each ``call()`` a trivial task (it raises when the
    task failed) for ``seconds``; (done, wall)."""
    done = [0] * concurrency
    failed: list[str] = []
    start = threading.Barrier(concurrency + 1)
    stop = threading.Event()

    def worker(i: int) -> None:
        start.wait()
        while not stop.is_set():
            try:
                call()
            except Exception as exc:
                failed.append(str(exc))
                return
            done[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if failed:
        raise RuntimeError(f"throughput at concurrency {concurrency}: {failed[0]}")
    return sum(done), wall


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(),
                            "cpus": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in f
                               if line.startswith("model name"))
        with open("/proc/meminfo") as f:
            info["memory_gb"] = round(int(f.readline().split()[1]) / 1024 / 1024, 1)
    except (OSError, StopIteration):
        pass
    return info


@dataclass
class Run:
    settings: Settings
    latency: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    throughput: dict[str, dict[int, float]] = field(default_factory=dict)
    cpu_ms: dict[str, float] = field(default_factory=dict)
    memory: dict[str, dict[str, float]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    # per system behind the mock n8n broker: its runner, concurrency, and the CPU of this
    # process (the mock broker and the calling threads) per task at each throughput level
    n8n_mock: dict[str, dict[str, Any]] = field(default_factory=dict)


def run(settings: Settings) -> Run:
    out = Run(settings)
    scen = scenarios()
    with tempfile.TemporaryDirectory(prefix="sandbox-bench-") as tmp:
        daemon: Daemon | None = None
        echo: EchoFloor | None = None
        if settings.daemon:
            try:
                daemon = Daemon(tmp, settings.slots)
            except Exception as exc:  # the rest of the run is still worth having
                out.skipped["daemon"] = f"could not start `sandbox serve`: {exc}"
        else:
            out.skipped["daemon"] = "--no-daemon"
        try:
            echo = EchoFloor(os.path.join(tmp, "echo"))
        except Exception as exc:
            out.skipped["pyzmq 3-hop echo"] = str(exc)
        mocks: list[n8n_mock.MockSystem] = []
        if settings.n8n:
            mocks, why = n8n_mock.start(settings.slots, tmp, install=not settings.quick)
            out.skipped.update(why)
        else:
            out.skipped["n8n runners (mock broker)"] = "--no-n8n"
        pool = PoolConfig(size=settings.slots)
        embedded = Client(pool=pool)
        local = Sandbox(pool, runtimes=("python", "javascript"))
        try:
            _measure(out, scen, settings, daemon, embedded, local, echo, mocks)
            out.memory["embedded client + local API (this process tree)"] = procs.memory_mb(
                [os.getpid()])
            if daemon is not None:
                out.memory["daemon (sandbox serve tree)"] = procs.memory_mb([daemon.proc.pid])
            if echo is not None:
                out.memory["pyzmq 3-hop echo"] = procs.memory_mb(echo.pids())
            for mock in mocks:
                out.memory[f"{mock.name}: the runner's tree"] = procs.memory_mb([mock.proc.pid])
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            out.memory["largest baseline child (peak)"] = {"peak_rss_mb": peak}
        finally:
            local.close()
            embedded.close()
            if daemon is not None:
                daemon.close()
            if echo is not None:
                echo.close()
            for mock in mocks:
                mock.close()
    return out


WORKER = {"isolation": "worker"}  # worker mode (README "Worker mode"): opt-in warm workers


def _worker_mode(run: Callable[..., Any]) -> Callable[..., Any]:
    return lambda runtime, code, data=None, **options: run(runtime, code, data, **WORKER, **options)


def _measure(out: Run, scen: list[Scenario], settings: Settings, daemon: Daemon | None,
             embedded: Client, local: Sandbox, echo: EchoFloor | None,
             mocks: list[n8n_mock.MockSystem]) -> None:
    ours: dict[str, Callable[..., Any]] = {"embedded client": embedded.run, "local API": local.run}
    warm: dict[str, Callable[..., Any]] = {"local API, worker mode": _worker_mode(local.run)}
    if daemon is not None:
        ours = {"daemon (ipc)": daemon.client.run, **ours}
        warm = {"daemon (ipc), worker mode": _worker_mode(daemon.client.run), **warm}
    plan: list[tuple[Scenario, str, Callable[[], Any], bool]] = []
    for s in scen:
        for name, fn in ours.items():
            plan.append((s, name, _service_call(fn, s), False))
        if s.name.startswith("trivial"):
            for name, fn in warm.items():
                plan.append((s, name, _service_call(fn, s), False))
        for name in s.baselines:
            if name in out.skipped:
                continue
            plan.append((s, name, _baseline_call(name, s, echo), name in COLD))
        if s.name == "trivial javascript":
            plan += [(s, mock.name, mock.call, False) for mock in mocks]
    # throughput: trivial snippets through our clients, a trivial Code node through each mock
    sweeps = {"embedded client": _trivial(embedded.run)}
    if daemon is not None:
        client = daemon.client.run
        sweeps = {"daemon (ipc)": _trivial(client),
                  "daemon (ipc) javascript": _trivial(client, "javascript"),
                  "daemon (ipc), worker mode": _trivial(client, "python", WORKER),
                  "daemon (ipc) javascript, worker mode": _trivial(client, "javascript", WORKER),
                  **sweeps}
    sweeps.update({mock.name: mock.call for mock in mocks})
    cold_rounds = len(range(0, settings.rounds, settings.cold_every))
    total = (sum(cold_rounds if cold else settings.rounds for *_, cold in plan)
             + len(settings.levels) * len(sweeps) * 20 + 20)  # a sweep or the CPU block: 20
    progress = Progress(total)
    for _s, name, fn, _ in plan:  # warm-up: pools full, caches hot, every path checked once
        for _ in range(3 if name in COLD else 20):
            fn()
    for i in range(settings.rounds):
        for s, name, fn, cold in plan:
            if cold and i % settings.cold_every:
                continue
            out.latency.setdefault(s.name, {}).setdefault(name, []).append(timed(fn))
            progress.step(f"latency round {i + 1}/{settings.rounds}")
            time.sleep(settings.pause_ms / 1000.0)
    # CPU per task, back to back, for the trivial scenarios
    for s, name, fn, cold in plan:
        if not s.name.startswith("trivial"):
            continue
        calls = max(3, settings.cost_calls // (10 if cold else 1))
        before = procs.machine_busy_seconds()
        for _ in range(calls):
            fn()
        spent = procs.machine_busy_seconds() - before
        out.cpu_ms[f"{s.name} / {name}"] = spent * 1000 / calls
    progress.step("cpu per task", 20)
    # throughput sweep, the systems taking turns at each level (the order flips every level)
    mock_names = {mock.name: mock for mock in mocks}
    for name, mock in mock_names.items():
        out.n8n_mock[name] = {"runner": mock.runner, "concurrency": mock.concurrency,
                              "harness_cpu_ms": {}}
    for level in settings.levels:
        names = list(sweeps) if level % 2 else list(reversed(sweeps))
        for name in names:
            before, own = procs.machine_busy_seconds(), time.process_time()
            done, wall = _sweep(sweeps[name], level, settings.sweep_s)
            spent, own = procs.machine_busy_seconds() - before, time.process_time() - own
            out.throughput.setdefault(name, {})[level] = done / wall
            out.cpu_ms[f"throughput c={level} / {name}"] = spent * 1000 / max(done, 1)
            if name in mock_names:
                out.n8n_mock[name]["harness_cpu_ms"][level] = own * 1000 / max(done, 1)
            progress.step(f"throughput {name} x{level}", 20)
    progress.close()

