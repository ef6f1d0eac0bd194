"""``sandbox runner``'s probes and metrics (``runner_http``): the project's one probe server
(``sandbox.http.probes``) over what the runner's loop says when asked (``Runner.snapshot``).

Before the runner exists (its jails start: seconds for pyodide) ``/livez`` says so and is
200, ``/readyz`` is 503; after, ``/livez`` is 200 while the loop answers within 2 s and
``/readyz`` 200 while the runner is registered with its broker and not draining.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric

from sandbox.host.runner import Runner
from sandbox.http.probes import ProbeServer, add_process_metrics, idle_children_gauge


class RunnerProbes:
    """Serve from now on; ``attach(runner)`` once it exists; ``close()`` before it stops."""

    def __init__(self, address: str) -> None:
        self.runner: Runner | None = None
        self.registry = CollectorRegistry()
        add_process_metrics(self.registry, "runner")
        self.registry.register(_Gauges(self))
        self.server = ProbeServer(address, self.live, self.ready, self.registry,
                                  name="runner_http").start()

    def attach(self, runner: Runner) -> None:
        self.runner = runner

    def close(self) -> None:
        self.server.close()

    def snapshot(self) -> dict[str, Any] | None:
        return self.runner.snapshot() if self.runner is not None else None

    def live(self) -> dict[str, Any]:
        if self.runner is None:
            return {"status": "ok", "phase": "starting the jails"}
        return {"status": "ok"} if self.snapshot() is not None else {"status": "loop stuck"}

    def ready(self) -> dict[str, Any]:
        if self.runner is None:
            return {"status": "starting the jails"}
        snap = self.snapshot()
        if snap is None:
            return {"status": "loop stuck"}
        status = ("draining" if snap["draining"] else "ok" if snap["registered"]
                  else "not registered")
        return {"status": status, "running": snap["running"]}


class _Gauges:
    def __init__(self, probes: RunnerProbes) -> None:
        self.probes = probes

    def collect(self) -> Iterator[Metric]:
        snap = self.probes.snapshot()
        if snap is None:
            return
        yield GaugeMetricFamily("sandbox_runner_registered", "1 while registered with the "
                                "broker and not draining",
                                value=int(snap["registered"] and not snap["draining"]))
        yield GaugeMetricFamily("sandbox_runner_running_tasks", "Tasks this runner runs now",
                                value=snap["running"])
        yield idle_children_gauge(snap["idle"])
