"""The runner's one loop against a real broker on inproc:// sockets and the in-package fake
jail (no root): tasks flow, back-to-back tasks on a one-child pool, the lifeline."""

from __future__ import annotations

import os
import threading
import uuid

import pytest
import zmq

from broker.core import BrokerConfig
from broker.server import BrokerServer
from runtimes.outcome import Status
from sandbox import PoolConfig
from sandbox.jail import fake as fakejail
from sandbox.client import Client
from sandbox.host.runner import Runner, RunnerConfig


@pytest.fixture
def service():
    """A broker and one runner of one slot over the fake jail, each in its own thread."""
    context = zmq.Context.instance()
    endpoint = f"inproc://runner-test-{uuid.uuid4().hex}"
    server = BrokerServer([endpoint], BrokerConfig(heartbeat_s=0.2), context=context,
                          runner_endpoints=[f"{endpoint}-runners"])
    read_end, write_end = os.pipe()
    runner = Runner(RunnerConfig(f"{endpoint}-runners", runtimes=("python",), slots=1,
                                 heartbeat_s=0.2,
                                 pool=PoolConfig(size=1, cgroup="off", recycle_delay_ms=0),
                                 lifeline_fd=read_end),
                    context=context, launcher=fakejail.launch)
    stop = threading.Event()
    threads = [threading.Thread(target=server.serve, args=(stop,), daemon=True),
               threading.Thread(target=runner.serve, args=(stop,), daemon=True)]
    for t in threads:
        t.start()
    assert runner.connected.wait(10)
    try:
        yield endpoint, runner, threads[1], write_end
    finally:
        stop.set()
        runner.wake()
        for t in threads:
            t.join(timeout=10)
        runner.close()
        server.close()
        os.close(read_end)
        try:
            os.close(write_end)
        except OSError:
            pass


def test_tasks_flow_through_broker_runner_and_child(service):
    endpoint, _, _, _ = service
    with Client(endpoint) as client:
        r = client.run("python", "ok [1, 2]", timeout_s=2)
        assert (r.status, r.value) == (Status.OK, [1, 2])
        r = client.run("python", "sigsys", timeout_s=2)
        assert r.status is Status.VIOLATION


def test_back_to_back_tasks_on_one_child_never_lose_one(service):
    """The refill's channel takes the number the finished child's channel had; every task
    still ends with its own result, none at its deadline."""
    endpoint, _, _, _ = service
    with Client(endpoint) as client:
        handles = [client.submit("python", f"ok {i}", timeout_s=3) for i in range(40)]
        results = [h.result() for h in handles]
    assert [(r.status, r.value) for r in results] == [(Status.OK, i) for i in range(40)]


def test_a_closed_lifeline_stops_the_runner(service):
    _, runner, thread, write_end = service
    os.close(write_end)
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert runner.orphaned


def test_a_pyodide_task_sent_without_a_broker_made_key_is_refused_not_shared():
    """Every pyodide task runs in a worker: one sent without the key the broker makes (a
    client's raw isolation="process") would have run in the "default" key's worker, which
    every principal so sending shares. The runner refuses it."""
    from broker import protocol as p

    context = zmq.Context.instance()
    endpoint = f"inproc://runner-test-{uuid.uuid4().hex}"
    server = BrokerServer([endpoint], BrokerConfig(heartbeat_s=0.2), context=context,
                          runner_endpoints=[f"{endpoint}-runners"])
    runner = Runner(RunnerConfig(f"{endpoint}-runners", runtimes=("pyodide",), slots=1,
                                 heartbeat_s=0.2, pool=PoolConfig(size=1, cgroup="off")),
                    context=context, launcher=fakejail.launch)
    stop = threading.Event()
    threads = [threading.Thread(target=server.serve, args=(stop,), daemon=True),
               threading.Thread(target=runner.serve, args=(stop,), daemon=True)]
    for t in threads:
        t.start()
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        assert runner.connected.wait(10)
        sock.connect(endpoint)
        sock.send(p.encode(p.Submit("raw", "pyodide", "ok 1", b"\xc0", isolation="process")))
        assert sock.poll(10_000)
        answer = p.decode(sock.recv())
        assert isinstance(answer, p.ResultMsg) and answer.status == p.REJECTED
        assert answer.envelope is not None and b'isolation="process" is not available' in answer.envelope
    finally:
        sock.close()
        stop.set()
        runner.wake()
        for t in threads:
            t.join(timeout=10)
        runner.close()
        server.close()


def test_a_lifeline_that_closes_while_the_jails_start_ends_the_wait():
    """[25.9] The runner watched its lifeline only once every jail had started: a daemon
    stopped while a pyodide jail started waited 5 s for its runner, then killed it."""
    read_end, write_end = os.pipe()
    os.close(write_end)  # the daemon is gone before the first jail is up
    runner = Runner(RunnerConfig("inproc://nobody-runners", runtimes=("python", "javascript"),
                                 slots=1, pool=PoolConfig(size=1, cgroup="off"),
                                 lifeline_fd=read_end),
                    context=zmq.Context.instance(), launcher=fakejail.launch)
    try:
        states = {name: snap["jail"] for name, snap in runner.worker.snapshot().items()}
        assert (runner.orphaned, states) == (True, {"python": "starting"})
    finally:
        runner.close()
        os.close(read_end)
