"""The broker's metrics: counted from the core's outcomes, once per task; the rest read
from the core's state at scrape time."""

from __future__ import annotations

import uuid

from broker import core as c
from broker import protocol as p
from broker.core import Outcome
from broker.metrics import BrokerMetrics
from broker.server import BrokerServer


def test_metrics_count_outcomes_once_by_status_runtime_and_reason():
    metrics = BrokerMetrics()
    for outcome in [Outcome("python", "default", p.OK, "", 0.001, 0.002),
                    Outcome("javascript", "eval", p.REJECTED, c.QUEUE_FULL, None, None),
                    Outcome("python", "default", p.CRASHED, c.RUNNER_LOST, 0.0, 1.0)]:
        metrics.on_outcome(outcome)
    value = metrics.registry.get_sample_value
    assert value("sandbox_tasks_total", {"status": "ok", "runtime": "python"}) == 1
    assert value("sandbox_tasks_total", {"status": "rejected", "runtime": "javascript"}) == 1
    assert value("sandbox_rejections_total", {"reason": "queue_full"}) == 1
    assert value("sandbox_broker_ended_total", {"status": "crashed", "reason": "runner_lost"}) == 1
    assert value("sandbox_queue_wait_seconds_count", {"runtime": "python"}) == 2
    assert value("sandbox_execution_seconds_count", {"runtime": "javascript"}) is None


def test_a_cancelled_task_has_its_own_status_and_is_no_crash():
    metrics = BrokerMetrics()
    metrics.on_outcome(Outcome("python", "default", c.CANCELLED_STATUS, c.CANCELLED, 0.0, 1.0))
    value = metrics.registry.get_sample_value
    assert value("sandbox_tasks_total", {"status": "cancelled", "runtime": "python"}) == 1
    assert value("sandbox_tasks_total", {"status": "crashed", "runtime": "python"}) is None


def test_gauges_read_the_core_at_scrape_time_and_an_empty_lane_reads_zero():
    name = uuid.uuid4().hex
    server = BrokerServer([f"inproc://metrics-{name}"], runner_endpoints=[f"inproc://r-{name}"])
    try:
        metrics = BrokerMetrics()
        metrics.attach(server, restarts=lambda: 3)
        with server.lock:
            core = server.core
            core.on_runner(b"r1", p.Ready({"python": "3.11"}, 4, (), "r1"), 0.0)
            core.on_client(b"c1", p.Submit("a", "python", "x", b"\xc0", lane="eval",
                                           group="gpu"), 0.0)
        value = metrics.registry.get_sample_value
        assert value("sandbox_queue_depth", {"lane": "eval"}) == 1
        assert value("sandbox_queue_depth", {"lane": "default"}) == 0
        with server.lock:
            core.on_client(b"c1", p.Cancel("a"), 0.1)
        assert value("sandbox_queue_depth", {"lane": "eval"}) == 0
        assert value("sandbox_slots", {}) == 4 and value("sandbox_runners", {}) == 1
        assert value("sandbox_runner_restarts_total", {}) == 3
        assert value("sandbox_auth_refusals_total", {"socket": "runners"}) == 0
        assert value("sandbox_runner_events_total", {"event": "registered"}) == 1
        assert value("sandbox_sessions", {}) == 0
        with server.lock:
            core.on_client(b"c1", p.Submit("o", "python", "", b"\xc0", session="nb",
                                           session_op="open"), 0.2)
        assert value("sandbox_sessions", {}) == 1
    finally:
        server.close()


def test_the_operators_limit_caps_are_in_the_metrics():
    name = uuid.uuid4().hex
    server = BrokerServer([f"inproc://caps-{name}"],
                          c.BrokerConfig(max_timeout_s=300.0, max_memory_mb=4096))
    try:
        metrics = BrokerMetrics()
        metrics.attach(server)
        value = metrics.registry.get_sample_value
        assert (value("sandbox_limit_cap", {"limit": "timeout_s"}),
                value("sandbox_limit_cap", {"limit": "memory_mb"})) == (300.0, 4096.0)
    finally:
        server.close()


def test_idle_children_are_counted_per_runtime():
    """[25.8] One sandbox_idle_children summed every runtime's pool: an autoscaler could not
    tell a python pool that is empty from a javascript one that is full."""
    name = uuid.uuid4().hex
    server = BrokerServer([f"inproc://metrics-{name}"], runner_endpoints=[f"inproc://r-{name}"])
    try:
        metrics = BrokerMetrics()
        metrics.attach(server)
        with server.lock:
            core = server.core
            core.on_runner(b"r1", p.Ready({"python": "3.11", "javascript": "0.10"}, 4, (), "r1"),
                           0.0)
            core.on_runner(b"r1", p.RunnerHeartbeat(3, idle={"python": 0, "javascript": 3}), 0.1)
            core.on_runner(b"r2", p.Ready({"python": "3.11"}, 2, (), "r2"), 0.0)
            core.on_runner(b"r2", p.RunnerHeartbeat(2), 0.1)  # says only the sum
        value = metrics.registry.get_sample_value
        assert [value("sandbox_idle_children", {"runtime": r})
                for r in ("python", "javascript", "unknown")] == [0, 3, 2]
    finally:
        server.close()


def test_round_trips_and_held_runners_are_gauges():
    name = uuid.uuid4().hex
    server = BrokerServer([f"inproc://metrics-{name}"], runner_endpoints=[f"inproc://r-{name}"])
    try:
        metrics = BrokerMetrics()
        metrics.attach(server)
        with server.lock:
            core = server.core
            core.on_runner(b"r1", p.Ready({"python": "3.11"}, 4, (), "near"), 0.0)
            core.on_runner(b"r1", p.RunnerHeartbeat(echo=0.5), 0.502)
            core.on_runner(b"r2", p.Ready({"python": "3.11"}, 4, (), "gone"), 0.0)
            core.on_client(b"c1", p.Submit("a", "python", "x", b"\xc0"), 0.0)
            core.on_client(b"c1", p.Submit("b", "python", "x", b"\xc0"), 0.0)
            core.on_runner(b"r1", p.RunnerHeartbeat(), 3.5)
            core.tick(3.6)  # r2 silent past its liveness: held with its task
        value = metrics.registry.get_sample_value
        assert round(value("sandbox_runner_round_trip_seconds", {"runner": "near"}), 6) == 0.002
        assert (value("sandbox_held_runners", {}), value("sandbox_held_tasks", {})) == (1, 1)
    finally:
        server.close()
