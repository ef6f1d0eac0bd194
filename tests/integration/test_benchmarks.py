"""The benchmark harness keeps working: ``--quick`` runs and its report is well formed.

Never a speed: the numbers are whatever this machine gives; only their shape is checked.
"""

from __future__ import annotations

import json
import subprocess
import sys

from benchmarks.n8n_mock import runners as n8n_mock
from benchmarks.n8n_peer.install import installed

EXPECTED_SYSTEMS = {"daemon (ipc)", "embedded client", "local API", "in-process exec",
                    "subprocess python3 -c", "cold nsjail python3 -c", "pyzmq 3-hop echo",
                    "daemon (ipc), worker mode", "local API, worker mode"}


def test_quick_benchmark_writes_a_well_formed_report(tmp_path):
    out = tmp_path / "bench"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--rounds", "6", "--levels", "1,2",
         "--sweep-s", "0.3", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads((out / "results.json").read_text())
    assert set(doc) >= {"command", "machine", "settings", "latency", "ratios_p50",
                        "throughput_tasks_per_s", "cpu_ms_per_task", "memory_mb", "goals",
                        "skipped"}
    assert set(doc["latency"]["trivial python"]) == EXPECTED_SYSTEMS
    assert {"daemon (ipc)", "in-process quickjs", n8n_mock.OURS} <= set(doc["latency"]["trivial javascript"])
    # n8n's runner takes part when n8n is installed; --quick never installs it
    ours = {n8n_mock.OURS, n8n_mock.OURS_WORKER}
    mocks = ours | {n8n_mock.THEIRS} if installed() else ours
    assert set(doc["n8n_mock"]) == mocks and mocks <= set(doc["latency"]["trivial javascript"])
    assert all(set(doc["throughput_tasks_per_s"][name]) == {"1", "2"} for name in mocks)
    if not installed():
        assert n8n_mock.THEIRS in doc["skipped"]
    for rows in doc["latency"].values():
        for row in rows.values():
            assert row["n"] >= 1 and 0 < row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"]
    assert set(doc["throughput_tasks_per_s"]["daemon (ipc)"]) == {"1", "2"}
    assert all(v > 0 for by in doc["throughput_tasks_per_s"].values() for v in by.values())
    from benchmarks.stats import GOALS

    assert len(doc["goals"]) == len(GOALS)
    # a goal at 16 clients is not measured by a run that stops at 2: None says so
    assert all(g["met"] in (True, False, None) for g in doc["goals"])
    md = (out / "results.md").read_text()
    assert md.startswith("# Benchmark results") and "| trivial python | **daemon (ipc)** |" in md
    assert "## n8n runners through the mock n8n broker" in md
    for png in ("latency.png", "throughput.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "## Goals" in proc.stdout


def test_the_n8n_jobs_comparison_runs_a_tree_against_itself():
    """``benchmarks.n8n_jobs`` (Code node jobs through the runner's port to the pools): its
    table, with this tree on both sides."""
    from pathlib import Path

    tree = str(Path(__file__).resolve().parents[2])
    proc = subprocess.run([sys.executable, "-m", "benchmarks.n8n_jobs", tree, tree, "--runs", "1",
                           "--tasks", "3"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [line.split("|")[1].strip() for line in proc.stdout.splitlines()[2:]] == [
        "tasks_per_s", "p50_ms"]
