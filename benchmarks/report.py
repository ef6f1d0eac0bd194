"""Turn a run into the report: one JSON document, a Markdown table, and PNG plots."""

from __future__ import annotations

import datetime
import json
import os
from typing import Any

from benchmarks import stats
from benchmarks.harness import COLD, Run, machine
from benchmarks.n8n_mock import runners as n8n_mock

OURS = ("daemon (ipc)", "embedded client", "local API", "daemon (ipc), worker mode",
        "local API, worker mode", n8n_mock.OURS, n8n_mock.OURS_WORKER)
DAEMON = "daemon (ipc)"


def build(run: Run, command: str) -> dict[str, Any]:
    latency = {scenario: {system: stats.summarize(samples) for system, samples in rows.items()}
               for scenario, rows in run.latency.items()}
    ratios: dict[str, dict[str, dict[str, float]]] = {}
    for scenario, rows in latency.items():
        bases = [name for name in rows if name not in OURS]
        for name in OURS:
            if name not in rows:
                continue
            ratios.setdefault(scenario, {})[name] = {
                f"x {base}": rows[name]["p50_ms"] / rows[base]["p50_ms"] for base in bases
            }

    def p50(scenario: str, system: str) -> float | None:
        return latency.get(scenario, {}).get(system, {}).get("p50_ms")

    daemon_py = p50("trivial python", DAEMON)
    n8n_js = p50("trivial javascript", n8n_mock.THEIRS)
    measured = [
        daemon_py,
        stats.ratio(p50("trivial python", "cold nsjail python3 -c"), daemon_py),
        stats.ratio(daemon_py, p50("trivial python", "pyzmq 3-hop echo")),
        p50("trivial javascript", DAEMON),
        max(run.throughput.get(DAEMON, {}).values(), default=None),
        p50("1 MB bytes result (python)", DAEMON),
        run.throughput.get(f"{DAEMON}, worker mode", {}).get(16),
        max(run.throughput.get(DAEMON, {}).values(), default=None),
        max(run.throughput.get(f"{DAEMON} javascript", {}).values(), default=None),
        stats.ratio(p50("trivial javascript", DAEMON), n8n_js),
        stats.ratio(p50("trivial javascript", "local API"), n8n_js),
        stats.ratio(run.throughput.get(f"{DAEMON} javascript, worker mode", {}).get(16),
                    run.throughput.get(n8n_mock.THEIRS, {}).get(16)),
    ]
    return {
        "command": command,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": {k: v for k, v in vars(run.settings).items()},
        "latency": latency,
        "ratios_p50": ratios,
        "throughput_tasks_per_s": {name: {str(c): v for c, v in by.items()}
                                   for name, by in run.throughput.items()},
        "cpu_ms_per_task": run.cpu_ms,
        "memory_mb": run.memory,
        "goals": [goal.judge(value) for goal, value in zip(stats.GOALS, measured, strict=True)],
        "n8n_mock": {name: {**info, "harness_cpu_ms": {str(c): v for c, v in info["harness_cpu_ms"].items()}}
                     for name, info in run.n8n_mock.items()},
        "skipped": run.skipped,
    }


def markdown(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    lines = [
        "# Benchmark results",
        "",
        f"`{doc['command']}` on {doc['date']}: {m.get('cpu', '?')}, {m.get('cpus')} CPUs, "
        f"{m.get('memory_gb', '?')} GB, Python {m.get('python')}, {m.get('platform')}.",
        "",
        "## Goals",
        "",
        "| goal | target | measured | met |",
        "|---|---|---|---|",
    ]
    for g in doc["goals"]:
        op = ">=" if g["at_least"] else "<="
        value = "n/a" if g["measured"] is None else f"{g['measured']:.3g} {g['unit']}"
        met = {True: "yes", False: "**no**", None: "not measured"}[g["met"]]
        lines.append(f"| {g['goal']} | {op} {g['target']:g} {g['unit']} | {value} | {met} |")
    lines += ["", "## Latency (ms, one call at a time, 5 ms apart unless settings say otherwise)", "",
              "| scenario | system | n | p50 | p90 | p99 | CPU ms/task |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for scenario, rows in doc["latency"].items():
        for system, row in rows.items():
            cpu = doc["cpu_ms_per_task"].get(f"{scenario} / {system}")
            cpu_s = "" if cpu is None else f"{cpu:.2f}"
            name = f"**{system}**" if system in OURS else system
            lines.append(f"| {scenario} | {name} | {row['n']} | {row['p50_ms']:.3f} | "
                         f"{row['p90_ms']:.3f} | {row['p99_ms']:.3f} | {cpu_s} |")
    lines += ["", "## Ratios of p50 (ours / baseline; below 1 means ours is faster)", "",
              "| scenario | system | ratios |", "|---|---|---|"]
    for scenario, by_system in doc["ratios_p50"].items():
        for system, ratios in by_system.items():
            text = ", ".join(f"{v:.3g} {k}" for k, v in ratios.items()) or "-"
            lines.append(f"| {scenario} | {system} | {text} |")
    lines += ["", "## Throughput (trivial snippet, Python unless named, tasks/s, closed-loop "
                  "clients; through the mock n8n broker a trivial JavaScript Code node)", ""]
    levels = sorted({int(c) for by in doc["throughput_tasks_per_s"].values() for c in by})
    lines += ["| system | " + " | ".join(f"x{c}" for c in levels) + " |",
              "|---|" + "---:|" * len(levels)]
    for system, by in doc["throughput_tasks_per_s"].items():
        cells = [f"{by[str(c)]:.0f}" if str(c) in by else "" for c in levels]
        lines.append(f"| {system} | " + " | ".join(cells) + " |")
    for system in doc["throughput_tasks_per_s"]:
        cpu = [doc["cpu_ms_per_task"].get(f"throughput c={c} / {system}") for c in levels]
        cells = ["" if v is None else f"{v:.2f}" for v in cpu]
        lines.append(f"| {system}: machine CPU ms/task | " + " | ".join(cells) + " |")
    lines += _n8n_section(doc)
    lines += ["", "## Memory (MiB)", "", "| processes | RSS | PSS | peak RSS |", "|---|---:|---:|---:|"]
    for name, mem in doc["memory_mb"].items():
        cells = [f"{mem[k]:.0f}" if k in mem else "" for k in ("rss_mb", "pss_mb", "peak_rss_mb")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if doc["skipped"]:
        lines += ["", "## Skipped", ""]
        lines += [f"- {name}: {why}" for name, why in doc["skipped"].items()]
    return "\n".join(lines) + "\n"


def _n8n_section(doc: dict[str, Any]) -> list[str]:
    """n8n's JS runner beside ours, both through the mock broker, with their ratios."""
    mocks = doc.get("n8n_mock") or {}
    if not mocks:
        return []
    lat = doc["latency"].get("trivial javascript", {})
    thr = doc["throughput_tasks_per_s"]
    levels = sorted({int(c) for name in mocks for c in thr.get(name, {})})
    lines = ["", "## n8n runners through the mock n8n broker", "",
             f"A Code node task `{n8n_mock.TRIVIAL.code}` ({n8n_mock.TRIVIAL.node_mode}): offer accepted, "
             "settings, the data request and its answer, the run, `runner:taskdone`; each runner behind "
             "a mock broker of its own, N8N_RUNNERS_MAX_CONCURRENCY "
             + ", ".join(f"{info['concurrency']} ({name})" for name, info in mocks.items())
             + ". Latency is paced as above; machine CPU counts every process, the harness's own "
             "(the mock broker and the calling threads) is shown apart.", "",
             "| system | p50 ms | p99 ms | CPU ms/task | "
             + " | ".join(f"x{c} tasks/s" for c in levels) + " |",
             "|---|---:|---:|---:|" + "---:|" * len(levels)]
    for name in mocks:
        row = lat.get(name)
        cpu = doc["cpu_ms_per_task"].get(f"trivial javascript / {name}")
        cells = [f"{thr[name][str(c)]:.0f}" if str(c) in thr.get(name, {}) else "" for c in levels]
        lines.append(f"| {name} | " + (f"{row['p50_ms']:.3f} | {row['p99_ms']:.3f}" if row else " | ")
                     + f" | {'' if cpu is None else f'{cpu:.2f}'} | " + " | ".join(cells) + " |")
    for name, info in mocks.items():
        machine_cpu = [doc["cpu_ms_per_task"].get(f"throughput c={c} / {name}") for c in levels]
        own = [info["harness_cpu_ms"].get(str(c)) for c in levels]
        lines.append(f"| {name}: machine CPU ms/task | | | | "
                     + " | ".join("" if v is None else f"{v:.2f}" for v in machine_cpu) + " |")
        lines.append(f"| {name}: of which the harness (mock broker, callers) | | | | "
                     + " | ".join("" if v is None else f"{v:.2f}" for v in own) + " |")
    for name, mode in ((n8n_mock.OURS, ""), (n8n_mock.OURS_WORKER, " (worker mode)")):
        if name in mocks and n8n_mock.THEIRS in mocks:
            ours, theirs = thr.get(name, {}), thr.get(n8n_mock.THEIRS, {})
            ratios = [f"x{c}: {ours[str(c)] / theirs[str(c)]:.2f}" for c in levels
                      if str(c) in ours and theirs.get(str(c))]
            lines += ["", f"Ours{mode} / n8n's, tasks/s: " + (", ".join(ratios) or "-") + "."]
    return lines


def plots(doc: dict[str, Any], samples: dict[str, dict[str, list[float]]], out_dir: str) -> list[str]:
    """PNG files: latency distribution per system (trivial snippets), throughput vs clients."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    trivial = [s for s in ("trivial python", "trivial javascript") if s in samples]
    if trivial:
        fig, axes = plt.subplots(len(trivial), 1, figsize=(9, 3.2 * len(trivial)), squeeze=False)
        for ax, scenario in zip(axes[:, 0], trivial, strict=True):
            names = [n for n in samples[scenario] if n not in COLD] + [
                n for n in samples[scenario] if n in COLD]
            ax.boxplot([samples[scenario][n] for n in names], vert=False, whis=(1, 99),
                       showfliers=False)
            ax.set_yticks(range(1, len(names) + 1), names)
            ax.set_xscale("log")
            ax.set_xlabel("latency, ms (log; box: p25-p75, whiskers: p1-p99)")
            ax.set_title(scenario)
            ax.grid(axis="x", alpha=0.3)
        fig.tight_layout()
        path = os.path.join(out_dir, "latency.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    if doc["throughput_tasks_per_s"]:
        fig, ax = plt.subplots(figsize=(7, 4))
        for system, by in doc["throughput_tasks_per_s"].items():
            levels = sorted(int(c) for c in by)
            ax.plot(levels, [by[str(c)] for c in levels], marker="o", label=system)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent clients")
        ax.set_ylabel("tasks/s (trivial snippet)")
        ax.set_title("throughput vs concurrency (fresh process per task unless worker mode)")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = os.path.join(out_dir, "throughput.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def write(doc: dict[str, Any], samples: dict[str, dict[str, list[float]]], out_dir: str) -> list[str]:
    os.makedirs(out_dir, exist_ok=True)
    try:
        pngs = plots(doc, samples, out_dir)
    except ImportError:
        pngs = []
        doc["skipped"]["plots"] = "matplotlib is not installed (pip install -e '.[bench]')"
    paths = [os.path.join(out_dir, "results.json"), os.path.join(out_dir, "results.md")]
    with open(paths[0], "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    with open(paths[1], "w") as f:
        f.write(markdown(doc))
    return paths + pngs
