"""Pure numbers: percentiles, summaries, ratios and the goals the results are held against."""

from __future__ import annotations

import statistics
from dataclasses import dataclass


def percentile(samples: list[float], q: float) -> float:
    """The q-th percentile by nearest rank on the sorted samples (q in 0..100)."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def summarize(samples_ms: list[float]) -> dict[str, float]:
    return {
        "n": len(samples_ms),
        "p50_ms": statistics.median(samples_ms),
        "p90_ms": percentile(samples_ms, 90),
        "p99_ms": percentile(samples_ms, 99),
        "mean_ms": statistics.fmean(samples_ms),
    }


@dataclass(frozen=True)
class Goal:
    """A target from the project's issues: ``measured <= target`` (or ``>=`` when at_least)."""

    name: str
    target: float
    unit: str
    at_least: bool = False

    def judge(self, measured: float | None) -> dict[str, object]:
        met = None if measured is None else (
            measured >= self.target if self.at_least else measured <= self.target)
        return {"goal": self.name, "target": self.target, "unit": self.unit,
                "at_least": self.at_least, "measured": measured, "met": met}


GOALS = (
    Goal("daemon trivial python p50", 0.5, "ms"),
    Goal("daemon trivial python: times faster than cold nsjail (p50)", 40, "x", at_least=True),
    Goal("daemon trivial python p50 / pyzmq 3-hop floor p50", 2.5, "x"),
    Goal("daemon trivial javascript p50", 0.4, "ms"),
    Goal("daemon python throughput (best concurrency)", 1500, "tasks/s", at_least=True),
    Goal("daemon 1 MB bytes result p50", 2.0, "ms"),
    # issue 16
    Goal("daemon python throughput, worker mode, 16 clients", 3000, "tasks/s", at_least=True),
    Goal("daemon python throughput, fresh process (best concurrency)", 600, "tasks/s",
         at_least=True),
    Goal("daemon javascript throughput, fresh process (best concurrency)", 450, "tasks/s",
         at_least=True),
    Goal("daemon trivial javascript p50 / n8n JS runner (mock broker) p50", 1.2, "x"),
    Goal("local API trivial javascript p50 / n8n JS runner (mock broker) p50", 1.0, "x"),
    Goal("daemon javascript tasks/s, worker mode, 16 clients / n8n JS runner (mock broker)'s",
         1.5, "x", at_least=True),
)


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b
