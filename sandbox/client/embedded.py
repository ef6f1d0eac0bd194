"""An in-process broker and runner on inproc:// sockets: what a client with no endpoint
uses, and what ``sandbox exec`` uses by default."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import zmq

from broker.core import BrokerConfig
from broker.server import BrokerServer
from sandbox.client.base import check_options
from sandbox.config import PoolConfig
from sandbox.errors import ClosedError
from sandbox.host.runner import Runner, RunnerConfig
from sandbox.link import CurveClient


class Embedded:
    """A broker and one runner in this process, each in a thread of its own."""

    def __init__(self, context: zmq.Context[Any], pool: PoolConfig, runtimes: tuple[str, ...],
                 broker: BrokerConfig) -> None:
        name = uuid.uuid4().hex
        self.endpoint = f"inproc://sandbox-broker-{name}"
        self.runner_endpoint = f"inproc://sandbox-runners-{name}"
        self.stop = threading.Event()
        self.server = BrokerServer([self.endpoint], broker, context=context,
                                   runner_endpoints=[self.runner_endpoint])
        self.runner = Runner(RunnerConfig(self.runner_endpoint, runtimes=runtimes,
                                          slots=pool.size, pool=pool, name="embedded"),
                             context=context)
        self._threads = [
            threading.Thread(target=self.server.serve, args=(self.stop,), daemon=True,
                             name="embedded-broker"),
            threading.Thread(target=self.runner.serve, args=(self.stop,), daemon=True,
                             name="embedded-runner"),
        ]
        for t in self._threads:
            t.start()
        # wait until the runner has registered, so the first task does not race it
        if not self.runner.connected.wait(10.0):
            self.close()
            raise ClosedError("the embedded runner did not register with its broker")

    def close(self) -> None:
        self.stop.set()
        self.runner.wake()
        for t in self._threads:
            t.join(timeout=5)
        self.runner.close()
        self.server.close()


def endpoint_for(endpoint: str | None, curve: CurveClient | None, insecure: bool,
                 pool: PoolConfig | None, runtimes: tuple[str, ...], broker: BrokerConfig | None,
                 context: zmq.Context[Any]) -> tuple[str, Embedded | None]:
    """Where a new client connects (its endpoint checked), with the embedded broker and
    runner it starts when it names none."""
    check_options(endpoint, curve, insecure)
    if endpoint is not None:
        return endpoint, None
    started = Embedded(context, pool or PoolConfig(), runtimes, broker or BrokerConfig())
    return started.endpoint, started
