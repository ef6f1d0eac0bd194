"""CPU per task of each daemon process, trees side by side: ``python -m benchmarks.task_cpu``.

The harness's machine-wide CPU per task cannot say which process a change made dearer. This
runs ``sandbox serve`` of each tree given (``--tree DIR``, each with its own ``.venv``), in
turn and alternating (round 1: A B, round 2: B A, ...), and offers it the same paced load (a
trivial snippet at ``--rate`` tasks/s from ``--clients`` threads, worker mode by default), so
that every tree does the same work per second. Meanwhile it reads the nanoseconds on a CPU
(``/proc/PID/task/TID/schedstat``) of every thread of the daemon and its runner and the ticks
of the jail's processes, and divides by the tasks done: the broker's loop (the daemon's
busiest thread), the rest of the daemon, the runner's loop (its main thread), the runner's
ZeroMQ I/O threads, the jail. ``--closed`` adds closed-loop tasks/s at those client counts.
``--strace`` counts the broker's and the runner's loop's system calls per task in a second
paced window (strace slows what it traces: those windows give no CPU figures).
``--profile DIR`` leaves a cProfile of the broker thread and of the runner's main thread
of each tree's last round in DIR, timed by each thread's CPU clock (a ``sitecustomize`` hooks
them in; profiled rounds are slower, so their CPU figures are not to be compared with
unprofiled ones).

Each tree is driven by its own interpreter (this file, run with ``--drive``), so that each
speaks its own client protocol. Medians over rounds and their ratios to the first tree are
printed; ``--json FILE`` keeps every round.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from benchmarks.harness import _sweep

_TICK = os.sysconf("SC_CLK_TCK")
_HERE = os.path.abspath(__file__)

# -- reading the kernel's accounting -----------------------------------------------------------


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                raw = f.read()
        except OSError:
            continue
        ppid = int(raw[raw.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(name))
    return kids


def _descendants(root: int, kids: dict[int, list[int]]) -> list[int]:
    out, todo = [], list(kids.get(root, []))
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += kids.get(pid, [])
    return out


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _threads(pid: int) -> dict[int, tuple[str, int]]:
    """tid -> (comm, ns on a CPU) of every thread of ``pid``."""
    out: dict[int, tuple[str, int]] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                ns = int(f.read().split()[0])
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                comm = f.read().strip()
        except (OSError, ValueError):
            continue
        out[int(tid)] = (comm, ns)
    return out


def _ticks(pids: list[int]) -> float:
    """CPU seconds of ``pids``, their reaped children included."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                raw = f.read()
        except OSError:
            continue
        rest = raw[raw.rindex(")") + 2:].split()
        total += sum(int(x) for x in rest[11:15])
    return total / _TICK


class Tree:
    """The daemon's processes: its own, its runner's, its jail's."""

    def __init__(self, daemon: int) -> None:
        self.daemon = daemon
        kids = _children()
        runners = [p for p in kids.get(daemon, []) if " runner " in f" {_cmdline(p)} "]
        if len(runners) != 1:
            raise RuntimeError(f"expected one runner under the daemon, found {runners}")
        self.runner = runners[0]
        self.jail = _descendants(self.runner, kids)

    def sample(self) -> dict[str, Any]:
        return {"daemon": _threads(self.daemon), "runner": _threads(self.runner),
                "jail": _ticks(self.jail), "t": time.monotonic()}

    def spent(self, a: dict[str, Any], b: dict[str, Any], tasks: int) -> dict[str, float]:
        """Microseconds per task of each part between samples ``a`` and ``b``."""
        def delta(which: str) -> dict[int, tuple[str, float]]:
            return {tid: (comm, (ns - a[which].get(tid, (comm, 0))[1]) / 1000)
                    for tid, (comm, ns) in b[which].items()}

        daemon, runner = delta("daemon"), delta("runner")
        zmq_d = sum(us for comm, us in daemon.values() if comm.startswith("ZMQ"))
        py_d = {tid: us for tid, (comm, us) in daemon.items() if not comm.startswith("ZMQ")}
        broker = max(py_d.values()) if py_d else 0.0
        out = {
            "broker loop": broker,
            "daemon other": sum(py_d.values()) - broker + zmq_d,
            "runner loop": runner.get(self.runner, ("", 0.0))[1],
            "runner other": sum(us for tid, (_, us) in runner.items() if tid != self.runner),
            "jail": (b["jail"] - a["jail"]) * 1e6,
        }
        out = {k: v / max(tasks, 1) for k, v in out.items()}
        out["host total"] = sum(v for k, v in out.items() if k != "jail")
        return out

    def busiest_daemon_thread(self, a: dict[str, Any], b: dict[str, Any]) -> int:
        best, tid_best = -1, self.daemon
        for tid, (comm, ns) in b["daemon"].items():
            if comm.startswith("ZMQ"):
                continue
            d = ns - a["daemon"].get(tid, (comm, 0))[1]
            if d > best:
                best, tid_best = d, tid
        return tid_best


# -- load --------------------------------------------------------------------------------------


def _paced(call: Any, rate: float, clients: int, seconds: float) -> tuple[int, list[str]]:
    """``clients`` threads, each calling at ``rate / clients`` per second on a fixed schedule
    (a late call does not make the next one early); the tasks done."""
    done = [0] * clients
    failed: list[str] = []
    start = threading.Barrier(clients + 1)
    t0 = [0.0]

    def worker(i: int) -> None:
        start.wait()
        period = clients / rate
        k = 0
        while True:
            at = t0[0] + (k + i / clients) * period
            if at >= t0[0] + seconds:
                return
            wait = at - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                call()
            except Exception as exc:  # counted and shown, never fatal for the others
                failed.append(str(exc))
            else:
                done[i] += 1
            k += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    t0[0] = time.monotonic()
    start.wait()
    for t in threads:
        t.join()
    return sum(done), failed


def _closed(call: Any, clients: int, seconds: float) -> float:
    """Closed-loop tasks/s: the harness's sweep (it raises on a failed task)."""
    done, wall = _sweep(call, clients, seconds)
    return done / wall


def _strace(tids: dict[str, int], window: Any) -> dict[str, float]:
    """System calls of each named thread during ``window()`` (which returns the tasks done),
    per task."""
    procs = {}
    for name, tid in tids.items():
        procs[name] = subprocess.Popen(["strace", "-c", "-p", str(tid)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                       text=True)
    time.sleep(1.0)  # attached
    tasks = window()
    out = {}
    for name, proc in procs.items():
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        calls = 0
        for line in err.splitlines():
            if line.strip().endswith("total"):
                calls = int(line.split()[3])
        out[f"{name} syscalls"] = calls / max(tasks, 1)
        for line in err.splitlines():
            parts = line.split()
            if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
                out[f"{name} {parts[-1]}"] = int(parts[3]) / max(tasks, 1)
    return out


def drive(args: argparse.Namespace) -> dict[str, Any]:
    """In the tree's own interpreter: start its daemon, load it, measure; a JSON object."""
    from sandbox.client import Client

    options: dict[str, Any] = {"isolation": "worker"} if args.mode == "worker" else {}

    with tempfile.TemporaryDirectory(prefix="task-cpu-") as tmp:
        endpoint = f"ipc://{tmp}/sandbox.sock"
        proc = subprocess.Popen(
            [sys.executable, "-m", "sandbox", "serve", "--bind", endpoint, "--http", "",
             "--runners", "1", "--slots", str(args.slots)],
            stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = Client(endpoint, queue_timeout_s=60)
        try:
            first = client.run(args.runtime, "return 1", queue_timeout_s=60)
            if not first.ok:
                raise RuntimeError(f"the daemon did not answer: {first.message}")

            def call() -> None:
                r = client.run(args.runtime, "return 6 * 7", **options)
                if not r.ok:
                    raise RuntimeError(f"{r.status.value}: {r.message}")

            _paced(call, args.rate, args.clients, 2.0)  # warm: workers, caches
            tree = Tree(proc.pid)
            a = tree.sample()
            tasks, failed = _paced(call, args.rate, args.clients, args.seconds)
            b = tree.sample()
            out: dict[str, Any] = {"tasks": tasks, "failed": len(failed),
                                   "rate": tasks / (b["t"] - a["t"])}
            out.update(tree.spent(a, b, tasks))
            if args.strace:
                tids = {"broker": tree.busiest_daemon_thread(a, b), "runner": tree.runner}
                out.update(_strace(tids, lambda: _paced(call, args.rate, args.clients,
                                                        args.seconds)[0]))
            for level in args.closed:
                out[f"tasks/s x{level}"] = _closed(call, level, args.closed_s)
            return out
        finally:
            client.close()
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


_SITECUSTOMIZE = '''
import os
_dir = os.environ.get("TASK_CPU_PROFILE")
if _dir:
    import atexit, cProfile, threading, time
    with open("/proc/self/cmdline", "rb") as _f:
        _argv = _f.read().split(b"\\0")
    _tag = os.environ.get("TASK_CPU_TAG", "tree")
    if b"runner" in _argv:
        _prof = cProfile.Profile(time.thread_time)
        _prof.enable()
        atexit.register(lambda: (_prof.disable(),
                                 _prof.dump_stats(os.path.join(_dir, _tag + "-runner.prof"))))
    elif b"serve" in _argv:
        _run = threading.Thread.run

        def _profiled(self):
            if self.name != "broker":
                return _run(self)
            prof = cProfile.Profile(time.thread_time)
            prof.enable()
            try:
                return _run(self)
            finally:
                prof.disable()
                prof.dump_stats(os.path.join(_dir, _tag + "-broker.prof"))

        threading.Thread.run = _profiled
'''


def orchestrate(args: argparse.Namespace) -> int:
    trees = [os.path.abspath(t) for t in args.tree]
    rounds: list[dict[str, dict[str, Any]]] = []
    hook = tempfile.mkdtemp(prefix="task-cpu-hook-")
    with open(os.path.join(hook, "sitecustomize.py"), "w") as f:
        f.write(_SITECUSTOMIZE)
    passed = sys.argv[1:]
    for r in range(args.rounds):
        order = trees if r % 2 == 0 else list(reversed(trees))
        results: dict[str, dict[str, Any]] = {}
        for tree in order:
            env = dict(os.environ, PYTHONPATH=tree)
            if args.profile and r == args.rounds - 1:
                os.makedirs(args.profile, exist_ok=True)
                env.update(PYTHONPATH=f"{tree}:{hook}", TASK_CPU_PROFILE=args.profile,
                           TASK_CPU_TAG=os.path.basename(tree))
            argv = [os.path.join(tree, ".venv", "bin", "python"), _HERE, "--drive", *passed]
            load = open("/proc/loadavg").read().split()[0]
            done = subprocess.run(argv, cwd=tree, env=env, stdout=subprocess.PIPE, text=True)
            if done.returncode != 0:
                print(f"round {r + 1} {tree}: the driver failed ({done.returncode})",
                      file=sys.stderr)
                continue
            row = json.loads(done.stdout.strip().splitlines()[-1])
            row["load"] = float(load)
            results[tree] = row
            print(f"round {r + 1} {os.path.basename(tree)}: " + ", ".join(
                f"{k} {v:.1f}" for k, v in row.items() if isinstance(v, (int, float))),
                file=sys.stderr, flush=True)
        rounds.append(results)
    keys: list[str] = []
    for results in rounds:
        for row in results.values():
            keys += [k for k, v in row.items() if isinstance(v, (int, float)) and k not in keys]
    print(f"medians over {args.rounds} rounds ({args.mode} mode, {args.runtime}, paced "
          f"{args.rate:g} tasks/s from {args.clients} clients for {args.seconds:g} s; "
          f"CPU in us per task):")
    print("| figure | " + " | ".join(os.path.basename(t) for t in trees) + " | ratio |")
    print("|---|" + "---:|" * (len(trees) + 1))
    for key in keys:
        meds = [statistics.median([r[t].get(key, 0.0) for r in rounds if t in r] or [0.0])
                for t in trees]
        ratio = meds[-1] / meds[0] if meds[0] else float("nan")
        print(f"| {key} | " + " | ".join(f"{m:.1f}" for m in meds) + f" | {ratio:.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"argv": sys.argv, "rounds": rounds}, f, indent=1)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.task_cpu",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--tree", action="append", default=[],
                        help="a checkout with its own .venv (repeat; the first is the baseline)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--mode", choices=("worker", "process"), default="worker")
    parser.add_argument("--runtime", default="python")
    parser.add_argument("--rate", type=float, default=250.0, help="tasks/s offered")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--closed", type=lambda s: [int(x) for x in s.split(",") if x],
                        default=[], help="closed-loop tasks/s at these client counts, e.g. 1,16")
    parser.add_argument("--closed-s", type=float, default=3.0)
    parser.add_argument("--strace", action="store_true")
    parser.add_argument("--profile", help="a directory for cProfile output of the last round")
    parser.add_argument("--json", help="write every round here")
    parser.add_argument("--drive", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive:
        print(json.dumps(drive(args)))
        return 0
    if not args.tree:
        parser.error("give at least one --tree")
    return orchestrate(args)


if __name__ == "__main__":
    raise SystemExit(main())
