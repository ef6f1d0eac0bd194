"""The runner's connection, against a real broker and the in-package fake jail (no root): a
refused key and a client endpoint end ``serve`` with the reason; a stop is always heard."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import uuid

import pytest
import zmq
import zmq.auth

from broker.auth import CurveServer
from broker.core import BrokerConfig
from broker.server import BrokerServer
from sandbox import PoolConfig
from sandbox.jail import fake as fakejail
from sandbox.errors import ConnectError
from sandbox.link import CurveClient
from sandbox.host.runner import Runner, RunnerConfig


def runner(endpoint: str, curve: CurveClient | None = None) -> Runner:
    return Runner(RunnerConfig(endpoint, runtimes=("python",), slots=1, heartbeat_s=0.2,
                               pool=PoolConfig(size=1, cgroup="off"), curve=curve),
                  launcher=fakejail.launch)


def serve_until_it_ends(r: Runner, stop: threading.Event) -> list[BaseException]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            r.serve(stop)
        except BaseException as exc:  # noqa: BLE001 - the test reads what serve raised
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    return errors


@pytest.fixture
def keys():
    directory = tempfile.mkdtemp(prefix="sbx-", dir="/tmp")
    try:
        for sub in ("authorized", "runners"):
            os.mkdir(os.path.join(directory, sub))
        for name in ("server", "client", "runner"):
            zmq.auth.create_certificates(directory, name)
        shutil.copy(os.path.join(directory, "client.key"), os.path.join(directory, "authorized"))
        shutil.copy(os.path.join(directory, "runner.key"), os.path.join(directory, "runners"))
        public, secret = zmq.auth.load_certificate(os.path.join(directory, "server.key_secret"))
        assert secret is not None
        yield (CurveServer(public, secret, os.path.join(directory, "authorized"),
                           os.path.join(directory, "runners")), directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_a_runner_whose_key_is_refused_stops_with_the_reason(keys):
    curve, directory = keys
    server = BrokerServer(["tcp://127.0.0.1:*"], BrokerConfig(heartbeat_s=0.2),
                          runner_endpoints=["tcp://127.0.0.1:*"], curve=curve)
    stop = threading.Event()
    loop = threading.Thread(target=server.serve, args=(stop,), daemon=True)
    loop.start()
    try:
        refused = runner(server.runner_endpoints[0], CurveClient.load(directory, "client"))
        try:
            errors = serve_until_it_ends(refused, threading.Event())
        finally:
            refused.close()
        assert len(errors) == 1 and isinstance(errors[0], ConnectError)
        assert str(errors[0]).startswith("the server refused this key (broker tcp://")
        allowed = runner(server.runner_endpoints[0], CurveClient.load(directory, "runner"))
        done = threading.Event()
        serving = threading.Thread(target=allowed.serve, args=(done,), daemon=True)
        serving.start()
        try:
            assert allowed.connected.wait(10)
        finally:
            done.set()
            allowed.wake()
            serving.join(10)
            allowed.close()
    finally:
        stop.set()
        loop.join(5)
        server.close()


def test_a_runner_pointed_at_the_client_endpoint_says_where_to_connect():
    name = uuid.uuid4().hex
    server = BrokerServer([f"inproc://c-{name}"], BrokerConfig(heartbeat_s=0.2),
                          runner_endpoints=[f"inproc://r-{name}"])
    stop = threading.Event()
    loop = threading.Thread(target=server.serve, args=(stop,), daemon=True)
    loop.start()
    try:
        lost = runner(f"inproc://c-{name}")
        try:
            errors = serve_until_it_ends(lost, threading.Event())
        finally:
            lost.close()
        assert [type(e) for e in errors] == [ConnectError]
        assert "connect to its runner endpoint" in str(errors[0])
        assert not server.core.runners
    finally:
        stop.set()
        loop.join(5)
        server.close()


def _broker(directory: str) -> tuple[BrokerServer, threading.Event, threading.Thread]:
    server = BrokerServer([f"ipc://{directory}/clients.sock"], BrokerConfig(heartbeat_s=0.2),
                          runner_endpoints=[f"ipc://{directory}/runners.sock"])
    stop = threading.Event()
    loop = threading.Thread(target=server.serve, args=(stop,), daemon=True)
    loop.start()
    return server, stop, loop


def _registered(server: BrokerServer, within_s: float) -> bool:
    """Whether a runner registered with ``server`` within a bound (a wait, not a timing)."""
    import time

    end = time.monotonic() + within_s
    while time.monotonic() < end:
        if server.core.runners:
            return True
        time.sleep(0.02)
    return False


def test_a_runner_registers_with_a_restarted_broker_without_waiting_out_its_liveness(tmp_path):
    """After a broker restart, runners waited their liveness (3 s) and a backoff (1 s) before
    they connected again, although the socket monitor saw the connection reset at once. This
    runner's liveness is 15 s; it must be back long before."""
    directory = str(tmp_path)
    server, stop, loop = _broker(directory)
    r = Runner(RunnerConfig(f"ipc://{directory}/runners.sock", runtimes=("python",), slots=1,
                            heartbeat_s=5.0, liveness=3, pool=PoolConfig(size=1, cgroup="off")),
               launcher=fakejail.launch)
    done = threading.Event()
    serving = threading.Thread(target=r.serve, args=(done,), daemon=True)
    serving.start()
    try:
        assert _registered(server, 10.0)
        stop.set()
        loop.join(5)
        server.close()
        server, stop, loop = _broker(directory)
        assert _registered(server, 5.0)
    finally:
        done.set()
        r.wake()
        serving.join(10)
        r.close()
        stop.set()
        loop.join(5)
        server.close()
