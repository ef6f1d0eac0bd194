"""The n8n side-by-side benchmark keeps working (never a speed: only the report's shape),
and its heap bomb shows what ours promises, in both modes: the other tasks finish, the
runner lives."""

from __future__ import annotations

import pytest

from benchmarks import n8n as bench

pytestmark = pytest.mark.jail


def test_side_by_side_benchmark_reports_both_modes_beside_theirs(n8n, n8n_runners):
    n8n_runners.stop()  # only the benchmark's runners may take tasks now
    doc = {"runners": bench.measure(n8n, rounds=3, seconds=1.0, passes=1)}
    doc["ratios"] = bench.ratios(doc["runners"])
    assert set(doc["runners"]) == {bench.OURS, bench.OURS_WORKER, bench.THEIRS}
    assert set(doc["ratios"]) == {bench.OURS, bench.OURS_WORKER}
    for r in doc["runners"].values():
        assert r["latency"]["n"] == 3 and 0 < r["latency"]["p50_ms"] <= r["latency"]["p99_ms"]
        assert set(r["tasks_per_s"]) == {"1", "5"} and all(v > 0 for v in r["tasks_per_s"].values())
        assert r["memory_mb"] > 0
    for name in (bench.OURS, bench.OURS_WORKER):
        ours = doc["runners"][name]
        assert ours["heap_bomb"]["others_succeeded"] == 4 and ours["runner_alive_after_bomb"] is True
        assert ours["heap_bomb"]["bomb_error"] == (
            "Task ran out of memory: this runner allows each task 256 MB")
    assert "| ours / n8n's runner | tasks/s c=1 |" in bench.report(doc)
