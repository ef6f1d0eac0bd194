"""Side by side through one real n8n: n8n's own JavaScript runner and ``sandbox n8n-runner``
in both of its modes (a fresh process per task, the default; and ``--isolation worker``).

    python -m benchmarks.n8n [--rounds 100] [--seconds 20] [--passes 2] [--compare TREE ...]
                             [--compare-modes process,worker] [--out bench-results/n8n.json]

The same workflows run through the same n8n 2.41.1 broker, served by one runner, then the
next, in alternating passes (only one is connected at a time, so every task goes to it), and
each of ours is written beside n8n's runner as ratios (tasks/s ours / theirs; p50 and p99
ours / theirs). ``--compare TREE`` (repeatable) adds another checkout of this project
(``git worktree add`` or ``git archive``, started with ``PYTHONPATH=TREE``) in the modes of
``--compare-modes`` to the same passes, so a change is measured before and after through a
real n8n in one run:

* per-task latency: a workflow with one JavaScript Code node, run ``--rounds`` times one
  after another; the number is n8n's own ``executionTime`` of that node (task request,
  offer accepted, settings, data request and response, the run, the answer);
* throughput at concurrency 1 and 5: a chain of 10 Code nodes, executed by 1 or 5 clients
  in a loop for ``--seconds``, each learning of its run's end from n8n's push channel (as
  the editor does); tasks/s = 10 x finished executions / elapsed;
* runner memory: the proportional set size (PSS, so shared pages count once) of the
  runner's whole process tree after the throughput runs (the larger of its passes);
* a heap bomb: four tasks that compute for 3 s and one that allocates without end, all at
  once. Both runners get a 256 MB heap (ours ``--memory 256``, n8n's
  ``--max-old-space-size=256``, what n8n's launcher sets from
  ``N8N_RUNNERS_MAX_OLD_SPACE_SIZE``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks import procs
from benchmarks.n8n_peer.peer import N8n, RunnerProcess, code_node, workflow

OURS, OURS_WORKER = "sandbox n8n-runner (fresh process)", "sandbox n8n-runner (worker)"
THEIRS = "n8n JS runner (@n8n/task-runner)"
MODES = {OURS: "process", OURS_WORKER: "worker"}
CHAIN = 10
SPIN_S = 3


class TheirRunner:
    """n8n's own JavaScript runner, started the way n8n's launcher starts it."""

    def __init__(self, n8n: N8n, concurrency: int) -> None:
        grant = self._grant(n8n)
        env = {"PATH": n8n.install.env_path(), "HOME": str(n8n.home),
               "N8N_RUNNERS_TASK_BROKER_URI": n8n.broker_uri, "N8N_RUNNERS_GRANT_TOKEN": grant,
               "N8N_RUNNERS_MAX_CONCURRENCY": str(concurrency), "N8N_RUNNERS_TASK_TIMEOUT": "60",
               "NODE_OPTIONS": "--max-old-space-size=256", "GENERIC_TIMEZONE": "UTC"}
        self.log_path = n8n.home / "their-runner.log"
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([str(n8n.install.node), str(n8n.install.task_runner_start)],
                                     env=env, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        time.sleep(3)  # registers within a second; offers follow

    @staticmethod
    def _grant(n8n: N8n) -> str:
        req = urllib.request.Request(f"{n8n.broker_uri}/runners/auth",
                                     data=json.dumps({"token": n8n.auth_token}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())["data"]["token"]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def _latency(n8n: N8n, rounds: int) -> list[float]:
    """n8n's ``executionTime`` of one Code node, ``rounds`` times, in ms."""
    wf = n8n.create_workflow(workflow("bench latency", [
        code_node("Task", "return [{ json: { x: $input.first().json.x ?? 1 } }];", "javascript")]))
    n8n.run(wf)  # warm: n8n caches the workflow, the runner its first task
    times = []
    for _ in range(rounds):
        ex = n8n.run(wf)
        assert ex.status == "success", ex.error
        times.append(float(ex.node_run("Task")["executionTime"]))
    return times


def _percentiles(times: list[float]) -> dict[str, float]:
    times = sorted(times)
    return {"n": len(times), "p50_ms": statistics.median(times),
            "p99_ms": times[min(len(times) - 1, round(0.99 * (len(times) - 1)))]}


def _throughput(n8n: N8n, clients: int, seconds: float) -> float:
    nodes = [code_node(f"T{i}", "return $input.all().map((i) => ({ json: { n: (i.json.n || 0) + 1 } }));",
                       "javascript") for i in range(CHAIN)]
    wf = n8n.create_workflow(workflow(f"bench chain {clients}", nodes))
    n8n.run(wf)
    done = [0] * clients
    failed: list[str] = []
    end = time.monotonic() + seconds

    def client(k: int) -> None:
        push = n8n.push()  # the end of each run as n8n announces it, not a polling interval
        try:
            while time.monotonic() < end:
                eid = n8n.start_run(wf, push_ref=push.ref)
                status = push.finished(eid, 120)
                if status == "success":
                    done[k] += 1
                else:
                    failed.append(f"execution {eid}: {status}")
        finally:
            push.close()

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failed:
        raise RuntimeError(f"{len(failed)} executions failed: {failed[0]}")
    return CHAIN * sum(done) / (time.monotonic() - started)


def _heap_bomb(n8n: N8n) -> dict[str, Any]:
    spin = n8n.create_workflow(workflow("bench spin", [code_node(
        "Spin", f"const t = Date.now(); while (Date.now() - t < {SPIN_S * 1000}) {{}}\n"
                "return [{ json: { ok: 1 } }];",
        "javascript")]))
    bomb = n8n.create_workflow(workflow("bench bomb", [code_node(
        "Bomb", "const a = []; while (true) a.push(new Array(1e6).fill(1)); return [];", "javascript")]))
    spins = [n8n.start_run(spin) for _ in range(4)]
    time.sleep(0.5)  # the spinners are running when the bomb goes off
    bomb_id = n8n.start_run(bomb)
    results = {eid: n8n.wait(eid, 120) for eid in [*spins, bomb_id]}
    others = [results[e] for e in spins]
    return {
        "others_succeeded": sum(1 for ex in others if ex.status == "success"),
        "others": 4,
        "other_errors": sorted({str((ex.node_error("Spin") or {}).get("message", ""))[:120]
                                for ex in others if ex.status != "success"}),
        "bomb_error": str((results[bomb_id].node_error("Bomb") or {}).get("message", ""))[:160],
    }


Compared = dict[str, tuple[str, Path]]  # runner name -> (mode, tree)


def compared(trees: list[Path], modes: list[str]) -> Compared:
    """The runners of other checkouts: each tree in each mode."""
    return {f"{name} [{tree.name}]": (mode, tree)
            for tree in trees for name, mode in MODES.items() if mode in modes}


def _names(others: Compared) -> list[str]:
    """The runners of a run, in the order of a pass: n8n's between each two of ours."""
    names = [OURS, THEIRS, OURS_WORKER]
    for k, name in enumerate(others):
        names += [THEIRS, name] if k % 2 == 0 else [name]
    return names


def _start(n8n: N8n, name: str, others: Compared | None = None) -> Any:
    if name == THEIRS:
        return TheirRunner(n8n, 5)
    env: dict[str, str] | None = None
    if name in MODES:
        mode = MODES[name]
    else:
        assert others is not None
        mode, tree = others[name]
        env = {"PYTHONPATH": str(tree)}
    return RunnerProcess(n8n, "--types", "javascript", "--max-concurrency", "5",
                         "--memory", "256", "--task-timeout", "60", "--isolation", mode,
                         env=env).wait_registered()


def measure(n8n: N8n, rounds: int, seconds: float, passes: int = 2,
            others: Compared | None = None) -> dict[str, Any]:
    """Each runner in turn, ``passes`` times over (ours, theirs, our worker mode, [theirs,
    the compared trees' runners], ...), so that a change in the machine's load falls on all;
    then the heap bomb for each."""
    order = _names(others or {})
    runners: dict[str, Any] = {n: {"latency": [], "tasks_per_s": {"1": [], "5": []}, "memory_mb": []}
                               for n in order}
    for k in range(passes):
        for name in order if k % 2 == 0 else order[::-1]:
            print(f"measuring {name} ...", file=sys.stderr, flush=True)
            runner, r = _start(n8n, name, others), runners[name]
            try:
                r["latency"] += _latency(n8n, max(1, rounds // passes))
                for c in (1, 5):
                    r["tasks_per_s"][str(c)].append(_throughput(n8n, c, seconds / passes))
                r["memory_mb"].append(procs.memory_mb([runner.proc.pid])["pss_mb"])
            finally:
                runner.stop()
    out: dict[str, Any] = {}
    for name, r in runners.items():
        runner = _start(n8n, name, others)
        try:
            bomb = _heap_bomb(n8n)
            alive = runner.proc.poll() is None
        finally:
            runner.stop()
        out[name] = {"latency": _percentiles(r["latency"]),
                     "tasks_per_s": {c: round(statistics.median(v), 1) for c, v in r["tasks_per_s"].items()},
                     "tasks_per_s_passes": r["tasks_per_s"],
                     "memory_mb": round(max(r["memory_mb"]), 1),
                     "heap_bomb": bomb, "runner_alive_after_bomb": alive}
    return out


def report(doc: dict[str, Any]) -> str:
    rows = ["| runner | p50 ms | p99 ms | tasks/s c=1 | tasks/s c=5 | memory (PSS) MB "
            "| heap bomb: others ok | runner after bomb |",
            "|---|---|---|---|---|---|---|---|"]
    for name, r in doc["runners"].items():
        hb = r["heap_bomb"]
        rows.append(f"| {name} | {r['latency']['p50_ms']:.1f} | {r['latency']['p99_ms']:.1f} | "
                    f"{r['tasks_per_s']['1']} | {r['tasks_per_s']['5']} | {r['memory_mb']} | "
                    f"{hb['others_succeeded']}/{hb['others']} | "
                    f"{'alive' if r['runner_alive_after_bomb'] else 'dead'} |")
    lines = rows + ["", "| ours / n8n's runner | tasks/s c=1 | tasks/s c=5 | p50 | p99 |",
                    "|---|---|---|---|---|"]
    for name, q in doc["ratios"].items():
        lines.append(f"| {name} | {q['tasks_per_s_1']:.2f} | {q['tasks_per_s_5']:.2f} | "
                     f"{q['p50']:.2f} | {q['p99']:.2f} |")
    lines.append("")
    for name, r in doc["runners"].items():
        hb = r["heap_bomb"]
        lines.append(f"- {name}: bomb -> {hb['bomb_error']!r}; other tasks' errors: {hb['other_errors']}")
    return "\n".join(lines)


def ratios(runners: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Each of ours against n8n's runner: tasks/s at 1 and 5 clients ours / theirs (above 1:
    ours is faster), p50 and p99 ours / theirs (below 1: ours is faster)."""
    theirs = runners[THEIRS]
    out = {}
    for name, r in runners.items():
        if name == THEIRS:
            continue
        out[name] = {f"tasks_per_s_{c}": r["tasks_per_s"][c] / max(theirs["tasks_per_s"][c], 1e-9)
                     for c in ("1", "5")}
        out[name].update({p: r["latency"][f"{p}_ms"] / max(theirs["latency"][f"{p}_ms"], 1e-9)
                          for p in ("p50", "p99")})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.n8n")
    ap.add_argument("--rounds", type=int, default=100, help="latency samples per runner, in all")
    ap.add_argument("--seconds", type=float, default=20.0, help="per concurrency level, in all")
    ap.add_argument("--passes", type=int, default=2, help="turns each runner gets")
    ap.add_argument("--compare", type=Path, action="append", default=[],
                    help="another checkout of this project, to join the passes (repeatable)")
    ap.add_argument("--compare-modes", default="process,worker",
                    help="the modes the compared checkouts run in")
    ap.add_argument("--out", default="bench-results/n8n.json")
    args = ap.parse_args(argv)
    others = compared([t.resolve() for t in args.compare], args.compare_modes.split(","))
    with N8n.start(task_timeout_s=60) as n8n:
        doc: dict[str, Any] = {"command": " ".join(["python -m benchmarks.n8n", *(argv or sys.argv[1:])]),
                               "machine": {"cpus": os.cpu_count()},
                               "runners": measure(n8n, args.rounds, args.seconds, args.passes, others)}
    doc["ratios"] = ratios(doc["runners"])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=2))
    print(report(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
