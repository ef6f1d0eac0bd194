"""Heavy Code nodes through the mock of n8n's broker: the engine's own speed beside the
per-task overhead, n8n's JavaScript runner (V8) against ours (QuickJS in a jail), both modes.

    python -m benchmarks.n8n_heavy [--rounds 5] [--only items,numeric,...] [--out FILE]

Each workload is one "Run Once for All Items" task; every system gets the same task and
must give the same answer (checked). The systems take turns task by task (the order turns
each round), so the noise of a shared machine falls on all of them alike; the figure is the
median of a system's times per workload, from the broker having the task to its answer, and
the ratio is ours over n8n's runner's. The workloads:

* ``items``: 10,000 items from n8n (about 1.3 MB of JSON in), mapped, filtered, grouped by a
  key and each group serialised; 60 summary items back;
* ``items_out``: the same 10,000 items mapped and all of them sent back (the JSON out);
* ``numeric``: a loop of 3 million floating-point steps, one item back;
* ``regex``: 20,000 lines of text made in the task, two regular expressions over them;
* ``trivial``: ``return [{json: {x: 6 * 7}}]``, the per-task overhead alone.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from typing import Any

from benchmarks.n8n_mock import runners
from benchmarks.n8n_mock.core import TaskSpec

N_ITEMS = 10_000
ITEMS = tuple({"json": {"id": i, "name": f"item {i}", "cat": f"c{i % 60}", "price": (i * 37) % 101,
                        "qty": i % 7, "tags": ["a", "b"] if i % 2 else ["c"]}}
              for i in range(N_ITEMS))

WORKLOADS: dict[str, TaskSpec] = {
    "items": TaskSpec("""
const rows = $input.all().map((i) => ({ ...i.json, total: i.json.price * i.json.qty }))
  .filter((r) => r.total > 50);
const groups = {};
for (const r of rows) (groups[r.cat] ??= []).push(r);
return Object.keys(groups).sort().map((cat) => ({ json: {
  cat, n: groups[cat].length, sum: groups[cat].reduce((a, r) => a + r.total, 0),
  bytes: JSON.stringify(groups[cat]).length } }));
""", items=ITEMS),
    "items_out": TaskSpec("""
return $input.all().map((i) => ({ json: { id: i.json.id, label: i.json.name.toUpperCase(),
  total: i.json.price * i.json.qty, tags: i.json.tags.join(',') } }));
""", items=ITEMS),
    "numeric": TaskSpec("""
let s = 0;
for (let i = 1; i <= 3000000; i++) s += Math.sqrt(i) * ((i % 7) - 3) / i;
return [{ json: { s: Math.round(s * 1e6) } }];
"""),
    "regex": TaskSpec("""
const lines = [];
for (let i = 0; i < 20000; i++) {
  lines.push('user' + i + ' <user' + i + '@host' + (i % 13) + '.com> ' + (i * 7919 % 1000) + ' pts');
}
const text = lines.join('\\n');
const byHost = {};
for (const m of text.matchAll(/<(\\w+)@(\\w+)\\.com>/g)) byHost[m[2]] = (byHost[m[2]] || 0) + 1;
const big = text.replace(/(\\d+) pts/g, (_, n) => (Number(n) > 500 ? 'HIGH' : 'low'))
  .split('HIGH').length - 1;
return [{ json: { hosts: Object.keys(byHost).length, first: byHost.host0, big } }];
"""),
    "trivial": runners.TRIVIAL,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.n8n_heavy", description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5, help="tasks per workload and system")
    ap.add_argument("--only", default=",".join(WORKLOADS), help="workloads, comma-separated")
    ap.add_argument("--out", default=None, help="write the figures as JSON here")
    args = ap.parse_args(argv)
    names = [n for n in args.only.split(",") if n]
    from benchmarks.n8n_peer.install import installed

    found = installed()
    systems: list[runners.MockSystem] = []
    with tempfile.TemporaryDirectory() as directory:
        try:
            if found is not None:
                systems.append(runners.MockSystem.theirs(found.node, found.task_runner_start, 1, directory))
            else:
                print("n8n is not installed (python -m benchmarks.n8n_peer.install): ours only",
                      file=sys.stderr)
            systems.append(runners.MockSystem.ours(1, directory, "process"))
            systems.append(runners.MockSystem.ours(1, directory, "worker"))
            times = _measure(systems, names, args.rounds)
        finally:
            for system in systems:
                system.close()
    doc = _report(times, [s.name for s in systems], names)
    doc["command"] = "python -m benchmarks.n8n_heavy " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(doc, f, indent=1)
    print(_markdown(doc))
    return 0


def _measure(systems: list[runners.MockSystem], names: list[str],
             rounds: int) -> dict[str, dict[str, list[float]]]:
    times: dict[str, dict[str, list[float]]] = {s.name: {n: [] for n in names} for s in systems}
    for name in names:
        spec = WORKLOADS[name]
        expected: Any = None
        for system in systems:  # a warm-up each, and the answers must agree
            result = _run(system, spec)[1]
            if expected is None:
                expected = result
            elif result != expected:
                raise RuntimeError(f"{system.name} answered {name} otherwise: {str(result)[:300]}")
        for r in range(rounds):
            order = systems if r % 2 == 0 else systems[::-1]
            for system in order:
                times[system.name][name].append(_run(system, spec)[0])
    return times


def _run(system: runners.MockSystem, spec: TaskSpec) -> tuple[float, Any]:
    started = time.perf_counter()
    outcome = system.broker.run(spec, timeout_s=120)
    elapsed = time.perf_counter() - started
    if outcome.status != "done":
        raise RuntimeError(f"{system.name}: {outcome.status} {outcome.message or outcome.value!r}")
    return elapsed, outcome.result


def _report(times: dict[str, dict[str, list[float]]], systems: list[str], names: list[str]) -> dict[str, Any]:
    medians = {s: {n: statistics.median(times[s][n]) * 1000 for n in names} for s in systems}
    theirs = medians.get(runners.THEIRS)
    ratios = {s: {n: medians[s][n] / theirs[n] for n in names} for s in systems
              if theirs is not None and s != runners.THEIRS}
    return {"median_ms": medians, "ratio_to_n8n": ratios, "samples_ms": {
        s: {n: [round(t * 1000, 2) for t in times[s][n]] for n in names} for s in systems}}


def _markdown(doc: dict[str, Any]) -> str:
    medians, ratios = doc["median_ms"], doc["ratio_to_n8n"]
    names = list(next(iter(medians.values())))
    lines = ["| system | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for system, row in medians.items():
        cells = [f"{row[n]:.1f} ms" + (f" ({ratios[system][n]:.2f}x)" if system in ratios else "")
                 for n in names]
        lines.append(f"| {system} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Median time per task (ratio: ours / n8n's runner). `{doc['command']}`")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
