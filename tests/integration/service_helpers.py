"""Shared by the service's integration tests: a real broker in a thread, real runner
processes (real jails), and waiting for them."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import zmq

from broker.auth import CurveServer
from broker.core import BrokerConfig, Outcome
from broker.server import BrokerServer

HEARTBEAT_S = 0.2


@contextmanager
def broker(tmp_path, config: BrokerConfig | None = None, endpoint: str | None = None,
           curve: CurveServer | None = None, runner_endpoint: str | None = None,
           on_outcome: Callable[[Outcome], None] | None = None,
           more_endpoints: tuple[str, ...] = ()) -> Iterator[BrokerServer]:
    """A real BrokerServer serving in a thread: clients on ``endpoint`` (and
    ``more_endpoints``), runners on ``runner_endpoint`` (ipc sockets in ``tmp_path`` unless
    given)."""
    endpoint = endpoint or f"ipc://{tmp_path}/broker.sock"
    runner_endpoint = runner_endpoint or f"ipc://{tmp_path}/broker.runners.sock"
    server = BrokerServer([endpoint, *more_endpoints], config or BrokerConfig(heartbeat_s=HEARTBEAT_S),
                          runner_endpoints=[runner_endpoint], context=zmq.Context.instance(),
                          curve=curve, on_outcome=on_outcome)
    stop = threading.Event()
    thread = threading.Thread(target=server.serve, args=(stop,), daemon=True)
    thread.start()
    _LOOPS[id(server)] = (stop, thread)
    try:
        yield server
    finally:
        stop.set()
        thread.join(timeout=5)
        _LOOPS.pop(id(server), None)
        server.close()


_LOOPS: dict[int, tuple[threading.Event, threading.Thread]] = {}


def stop_serving(server: BrokerServer) -> None:
    """Stop a ``broker()``'s loop (as ``sandbox serve`` does before it drains)."""
    stop, thread = _LOOPS[id(server)]
    stop.set()
    thread.join(timeout=5)


def start_runner(endpoint: str, name: str, slots: int = 1, extra: tuple[str, ...] = ()) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sandbox", "runner", "--connect", endpoint, "--slots", str(slots),
         "--runtimes", "python", "--heartbeat-s", str(HEARTBEAT_S), "--liveness", "3",
         "--name", name, *extra],
        stdin=subprocess.DEVNULL,
    )


def wait_for_runners(server: BrokerServer, count: int, timeout_s: float = 30.0) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        with server.lock:
            if len(server.core.runners) >= count:
                return
        time.sleep(0.05)
    raise AssertionError(f"{count} runner(s) did not register")


def stop_runner(proc: subprocess.Popen) -> None:
    stop_process(proc, 10)


def stop_process(proc: subprocess.Popen, timeout_s: float) -> None:
    """SIGTERM, then SIGKILL if it has not gone within ``timeout_s``; reaped either way."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


