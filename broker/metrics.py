"""Prometheus metrics for the broker, fed by the server's ``observe`` hook.

Gauges are read from the core at scrape time (queue depth per lane, in flight, runners, idle
pool children); counters and histograms are updated from events: tasks by status and
runtime, queue wait (submit to dispatch) and execution (dispatch to result).
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from broker import protocol as p
from broker.server import BrokerServer
from runtimes import outcome

_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class BrokerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.tasks = Counter("sandbox_tasks", "Finished tasks by status and runtime",
                             ["status", "runtime"], registry=self.registry)
        self.malformed = Counter("sandbox_malformed_messages", "Frames that did not parse",
                                 registry=self.registry)
        self.queue_wait = Histogram("sandbox_queue_wait_seconds", "Submit to dispatch",
                                    ["runtime"], buckets=_BUCKETS, registry=self.registry)
        self.execution = Histogram("sandbox_execution_seconds", "Dispatch to result",
                                   ["runtime"], buckets=_BUCKETS, registry=self.registry)
        self._submitted: dict[str, tuple[float, str]] = {}  # task key -> (time, runtime)
        self._dispatched: dict[str, tuple[float, str]] = {}
        self._server: BrokerServer | None = None

    def attach(self, server: BrokerServer) -> None:
        self._server = server
        self.registry.register(_Gauges(server))

    def observe(self, kind: str, peer: bytes, msg: object) -> None:
        now = time.monotonic()
        if kind == "malformed":
            self.malformed.inc()
        elif kind == "received" and isinstance(msg, p.Submit):
            self._submitted[f"{peer.hex()}:{msg.id}"] = (now, msg.runtime)
        elif kind == "sent" and isinstance(msg, p.TaskMsg):
            started, runtime = self._submitted.pop(msg.task_id, (now, msg.runtime))
            self.queue_wait.labels(runtime).observe(now - started)
            self._dispatched[msg.task_id] = (now, runtime)
        elif kind == "received" and isinstance(msg, p.Done):
            started, runtime = self._dispatched.pop(msg.task_id, (now, "unknown"))
            self.execution.labels(runtime).observe(now - started)
            self.tasks.labels(msg.status or "malformed", runtime).inc()
        elif kind == "sent" and isinstance(msg, p.Rejected):
            key = f"{peer.hex()}:{msg.id}"
            _, runtime = self._submitted.pop(key, (now, "unknown"))
            self.tasks.labels("rejected", runtime).inc()
        elif kind == "sent" and isinstance(msg, p.ResultMsg):
            key = f"{peer.hex()}:{msg.id}"
            if key in self._dispatched:  # answered by the broker itself (cancel, runner lost)
                _, runtime = self._dispatched.pop(key)
                self.tasks.labels(str(outcome.peek(msg.envelope) or "malformed"), runtime).inc()


class _Gauges:
    def __init__(self, server: BrokerServer) -> None:
        self.server = server

    def collect(self):
        with self.server.lock:
            core = self.server.core
            depths = core.queue_depths()
            in_flight = len(core.running)
            runners = len(core.runners)
            idle = core.idle_children()
        queue = GaugeMetricFamily("sandbox_queue_depth", "Queued tasks per lane", labels=["lane"])
        for lane, depth in sorted(depths.items()) or [(p.DEFAULT_LANE, 0)]:
            queue.add_metric([lane], depth)
        yield queue
        yield GaugeMetricFamily("sandbox_in_flight", "Tasks running now", value=in_flight)
        yield GaugeMetricFamily("sandbox_runners", "Registered runners", value=runners)
        yield GaugeMetricFamily("sandbox_idle_children", "Idle pre-forked children", value=idle)
