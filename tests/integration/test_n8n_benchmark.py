"""The n8n side-by-side benchmark keeps working (never a speed: only the report's shape),
and its heap bomb shows what ours promises: the other tasks finish, the runner lives."""

from __future__ import annotations

import pytest

from benchmarks import n8n as bench

pytestmark = pytest.mark.jail


def test_side_by_side_benchmark_reports_both_runners(n8n, n8n_runners):
    n8n_runners.stop()  # only the benchmark's runners may take tasks now
    doc = {"runners": bench.measure(n8n, rounds=3, seconds=1.0, passes=1)}
    assert set(doc["runners"]) == {bench.OURS, bench.THEIRS}
    for r in doc["runners"].values():
        assert r["latency"]["n"] == 3 and 0 < r["latency"]["p50_ms"] <= r["latency"]["p99_ms"]
        assert set(r["tasks_per_s"]) == {"1", "5"} and all(v > 0 for v in r["tasks_per_s"].values())
        assert r["memory_mb"] > 0
    ours = doc["runners"][bench.OURS]
    assert ours["heap_bomb"]["others_succeeded"] == 4 and ours["runner_alive_after_bomb"] is True
    assert ours["heap_bomb"]["bomb_error"] == "Task ran out of memory: this runner allows each task 256 MB"
    assert "| runner | p50 ms |" in bench.report(doc)
