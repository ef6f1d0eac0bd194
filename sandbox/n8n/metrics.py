"""The n8n runner's Prometheus metrics, served at ``/metrics`` beside its health checks.

What the loop owns (the core's tasks and offers, the pools' idle children) is read IN the
loop's thread, as one snapshot that a scrape asks for (``Shell.snapshot``): the scrape's
thread never walks the loop's state while the loop changes it. Counts of finished tasks are
prometheus_client counters, incremented by the loop as each task is answered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from sandbox.http.probes import add_process_metrics, idle_children_gauge

Snapshot = Callable[[], "dict[str, Any] | None"]


class N8nMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        add_process_metrics(self.registry, "n8n-runner")
        self.tasks = Counter("sandbox_n8n_tasks", "Code node tasks answered, by status",
                             ["status"], registry=self.registry)
        self.reconnects = Counter("sandbox_n8n_reconnects", "Connections to n8n's task broker "
                                  "that failed or were lost and are retried",
                                  registry=self.registry)

    def attach(self, snapshot: Snapshot) -> None:
        """Read the loop's state through ``snapshot`` at scrape time (None: no answer)."""
        self.registry.register(_Gauges(snapshot))


class _Gauges:
    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot()
        if snap is None:  # the loop did not answer: no gauge rather than a stale one
            return
        yield GaugeMetricFamily("sandbox_n8n_registered", "1 while registered with n8n's task "
                                "broker", value=int(snap["registered"]))
        yield GaugeMetricFamily("sandbox_n8n_running_tasks", "Tasks accepted and not yet "
                                "answered", value=snap["running"])
        yield GaugeMetricFamily("sandbox_n8n_open_offers", "Offers n8n may accept now",
                                value=snap["offers"])
        yield idle_children_gauge(snap["idle"])
        yield CounterMetricFamily("sandbox_n8n_protocol_errors", "Frames from n8n that were "
                                  "not messages of its protocol", value=snap["protocol_errors"])
