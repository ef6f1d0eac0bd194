"""Prometheus metrics for the broker, from the core's own outcomes and state.

Counts come from what the core decided, once per task (``BrokerServer(on_outcome=...)``):
tasks by status and runtime (``cancelled`` for those their caller cancelled or left),
rejections by reason, tasks the broker ended itself (cancelled, runner lost, caller gone,
shut down) by reason, queue wait (submit to dispatch) and
execution (dispatch to answer). Nothing is inferred from messages seen on the wire, so a
runner's late ``done`` for a cancelled task, or one for a task this broker never had, is
never a second count. The rest is read at scrape time: queue depth per lane (0 for a lane
that is empty), in flight, runners, their total slots (utilisation = in flight / slots),
idle pool children per runtime, answers waiting for a full client socket, and the core's and the
authenticator's counters (malformed frames by peer, refused keys by socket, runners lost or left,
local runner restarts, answers deferred, refusals dropped, dropped stale messages).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from broker import protocol as p
from broker.core import Outcome
from broker.server import BrokerServer

_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

# the core's counters exported as they are: (metric, help, {counter: labels})
_COUNTERS: tuple[tuple[str, str, str, dict[str, str]], ...] = (
    ("sandbox_malformed_messages", "Frames that are not valid messages, by sender", "peer",
     {"malformed_client": "client", "malformed_runner": "runner"}),
    ("sandbox_dropped_messages", "Valid messages that changed nothing, by kind", "kind",
     {"dropped_stale_done": "stale_done", "dropped_unknown_runner": "unknown_runner",
      "cancel_unknown": "late_cancel", "late_done": "done_after_cancel"}),
    ("sandbox_runner_events", "Runner registrations and losses seen by the broker", "event",
     {"runners_registered": "registered", "runners_lost": "lost", "runners_left": "left",
      "runners_reattached": "reattached", "holds_ended": "hold_ended",
      "resent_missing": "task_resent"}),
    ("sandbox_answers", "Answers that waited for a full client socket, and refusals dropped "
     "for one that held too many unread (an accepted task's answer is never dropped)",
     "event", {"answers_deferred": "deferred", "refusals_dropped": "refusal_dropped"}),
    ("sandbox_output_chunks_dropped", "Chunks of streaming tasks' output the broker did not "
     "forward: over a task's cap, for no streaming task of that runner, or for a client "
     "whose socket did not take it at once (its result carries the whole output)", "reason",
     {"dropped_chunk_over_cap": "over_cap", "dropped_stale_chunk": "stale",
      "output_dropped": "client_busy"}),
    ("sandbox_connection_events", "Connections that ended (a peer leaving, or ZeroMQ "
     "dropping one that sent a frame over the cap, which cannot be answered), failed "
     "handshakes, and peers a send could not reach", "event",
     {"disconnects": "dropped", "handshakes_failed": "handshake_failed",
      "client_unreachable": "client_unreachable", "runner_unreachable": "runner_unreachable"}),
)


class BrokerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self.tasks = Counter("sandbox_tasks", "Finished tasks by status and runtime",
                             ["status", "runtime"], registry=self.registry)
        self.rejections = Counter("sandbox_rejections", "Tasks rejected before they ran, "
                                  "by reason", ["reason"], registry=self.registry)
        self.ended = Counter("sandbox_broker_ended", "Dispatched tasks the broker ended "
                             "itself, by status and reason", ["status", "reason"],
                             registry=self.registry)
        self.queue_wait = Histogram("sandbox_queue_wait_seconds", "Submit to dispatch",
                                    ["runtime"], buckets=_BUCKETS, registry=self.registry)
        self.execution = Histogram("sandbox_execution_seconds", "Dispatch to answer",
                                   ["runtime"], buckets=_BUCKETS, registry=self.registry)

    def attach(self, server: BrokerServer, restarts: Callable[[], int] | None = None) -> None:
        """Read gauges and counters from ``server`` at scrape time; ``restarts`` gives how
        many local runner processes the daemon has restarted."""
        self.registry.register(_Gauges(server, restarts))

    def on_outcome(self, outcome: Outcome) -> None:
        """One task's end, as the core decided it (called once per task)."""
        self._child(self.tasks, outcome.status, outcome.runtime).inc()
        if outcome.status == p.REJECTED:
            self._child(self.rejections, outcome.reason or "runner").inc()
        elif outcome.reason:
            self._child(self.ended, outcome.status, outcome.reason).inc()
        if outcome.queue_s is not None:
            self._child(self.queue_wait, outcome.runtime).observe(outcome.queue_s)
        if outcome.run_s is not None:
            self._child(self.execution, outcome.runtime).observe(outcome.run_s)

    def _child(self, metric: Any, *labels: str) -> Any:
        """A metric's child for these labels, looked up once (labels() takes a lock and
        builds a key on every call, and this runs for every task)."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child


class _Gauges:
    def __init__(self, server: BrokerServer, restarts: Callable[[], int] | None) -> None:
        self.server = server
        self.restarts = restarts

    def collect(self) -> Iterator[Metric]:
        server = self.server
        with server.lock:
            core = server.core
            depths = core.queue_depths()
            in_flight = len(core.running)
            runners = len(core.runners)
            slots = core.total_slots()
            idle = core.idle_by_runtime()
            sessions = core.session_count()
            backlog = sum(state.backlog for state in core.clients.values())
            counters = dict(core.counters)
            demand = core.demand(time.monotonic())
            caps = dict(core.config.limit_caps)
            occupancy = core.occupancy()
            rtts = sorted((r.name or r.identity.hex(), r.rtt_s) for r in core.runners.values()
                          if r.rtt_s is not None)
            held = len(core.held)
            held_tasks = sum(len(h.runner.running) for h in core.held.values())
        refused = server.auth.refused() if server.auth is not None else {}
        queue = GaugeMetricFamily("sandbox_queue_depth", "Queued tasks per lane", labels=["lane"])
        for lane, depth in sorted(depths.items()):
            queue.add_metric([lane], depth)
        yield queue
        # what an autoscaler reads (KEDA's prometheus scaler: sandbox/deploy/k8s/)
        queued = GaugeMetricFamily("sandbox_queued_tasks", "Queued tasks per runtime, group "
                                   "and lane", labels=["runtime", "group", "lane"])
        oldest = GaugeMetricFamily("sandbox_oldest_queued_seconds", "Age of the oldest queued "
                                   "task per runtime, group and lane",
                                   labels=["runtime", "group", "lane"])
        for (runtime, group, lane), (count, age) in sorted(demand.items()):
            queued.add_metric([runtime, group, lane], count)
            oldest.add_metric([runtime, group, lane], age)
        yield queued
        yield oldest
        offered = GaugeMetricFamily("sandbox_runner_slots", "Slots the registered runners offer "
                                    "per runtime and group (group \"\": all of them)",
                                    labels=["runtime", "group"])
        busy = GaugeMetricFamily("sandbox_busy_slots", "Slots running a task per runtime and "
                                 "group (busy over offered is the occupancy)",
                                 labels=["runtime", "group"])
        for (runtime, group), (slots, running) in sorted(occupancy.items()):
            offered.add_metric([runtime, group], slots)
            busy.add_metric([runtime, group], running)
        yield offered
        yield busy
        capped = GaugeMetricFamily("sandbox_limit_cap", "The most a task may ask for, by limit "
                                   "(the operator's caps: max_timeout_s, ...)", labels=["limit"])
        for limit, most in sorted(caps.items()):
            capped.add_metric([limit], most)
        yield capped
        rtt = GaugeMetricFamily("sandbox_runner_round_trip_seconds", "Each runner's heartbeat "
                                "round trip, smoothed: nearer runners take tasks first",
                                labels=["runner"])
        for name, seconds in rtts:
            rtt.add_metric([name], seconds)
        yield rtt
        yield GaugeMetricFamily("sandbox_held_runners", "Runners lost and held: their tasks "
                                "wait for them to come back (runner_hold_s)", value=held)
        yield GaugeMetricFamily("sandbox_held_tasks", "Tasks of held runners", value=held_tasks)
        yield GaugeMetricFamily("sandbox_in_flight", "Tasks running now", value=in_flight)
        yield GaugeMetricFamily("sandbox_runners", "Registered runners", value=runners)
        yield GaugeMetricFamily("sandbox_slots", "Slots of all registered runners (in flight "
                                "over slots is the utilisation)", value=slots)
        pool = GaugeMetricFamily("sandbox_idle_children", "Idle pre-forked children of the "
                                 "registered runners, per runtime (\"unknown\": a runner that "
                                 "says only their sum)", labels=["runtime"])
        for runtime, count in sorted(idle.items()):
            pool.add_metric([runtime], count)
        yield pool
        yield GaugeMetricFamily("sandbox_sessions", "Sessions open (or opening) now",
                                value=sessions)
        yield GaugeMetricFamily("sandbox_answer_backlog", "Answers waiting for a full client "
                                "socket", value=backlog)
        auth = CounterMetricFamily("sandbox_auth_refusals", "CURVE keys the server refused, "
                                   "by socket", labels=["socket"])
        for socket in ("clients", "runners"):
            auth.add_metric([socket], refused.get(socket, 0))
        yield auth
        if self.restarts is not None:
            yield CounterMetricFamily("sandbox_runner_restarts", "Local runner processes the "
                                      "daemon restarted", value=self.restarts())
        for name, help_text, label, names in _COUNTERS:
            family = CounterMetricFamily(name, help_text, labels=[label])
            for counter, value in names.items():
                family.add_metric([value], counters.get(counter, 0))
            yield family
