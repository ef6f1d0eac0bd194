"""A runner: connects to a broker, advertises its runtimes and slots, runs tasks in its pools.

One I/O thread owns the DEALER socket (ZeroMQ sockets are not thread-safe); ``slots`` worker
threads run tasks through a local ``Sandbox`` and hand envelopes back through an inproc PUSH
socket each. Heartbeats go both ways; if the broker is silent for ``heartbeat_s * liveness``
the runner reconnects with a fresh socket, backing off 1 s, 2 s, ... up to 32 s (Paranoid
Pirate), and registers again.
"""

from __future__ import annotations

import concurrent.futures
import logging
import platform
import threading
import time
import uuid
from dataclasses import dataclass, field

import zmq

from broker import protocol as p
from runtimes import wire
from runtimes.wire import Status
from sandbox.cancel import CancelToken
from sandbox.config import PoolConfig
from sandbox.local import Sandbox

log = logging.getLogger("sandbox.runner")

BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)


@dataclass(frozen=True)
class CurveClient:
    """CURVE keys for a tcp:// broker: ours, and the broker's public key."""

    public_key: bytes
    secret_key: bytes
    server_key: bytes

    def apply(self, sock: zmq.Socket) -> None:
        sock.curve_publickey = self.public_key
        sock.curve_secretkey = self.secret_key
        sock.curve_serverkey = self.server_key


def runtime_versions(runtimes: tuple[str, ...]) -> dict[str, str]:
    versions = {}
    for name in runtimes:
        if name == "python":
            versions[name] = platform.python_version()
        elif name == "javascript":
            try:
                from importlib.metadata import version

                versions[name] = "quickjs-ng-" + version("quickjs-ng")
            except Exception:
                versions[name] = "quickjs-ng"
    return versions


@dataclass
class RunnerConfig:
    endpoint: str
    runtimes: tuple[str, ...] = ("python", "javascript")
    groups: tuple[str, ...] = ()
    slots: int = 4
    name: str = ""
    heartbeat_s: float = 1.0
    liveness: int = 3
    pool: PoolConfig | None = None
    curve: CurveClient | None = None
    extra: dict[str, str] = field(default_factory=dict)


class Runner:
    def __init__(self, config: RunnerConfig, *, context: zmq.Context | None = None,
                 sandbox: Sandbox | None = None) -> None:
        self.config = config
        self.context = context or zmq.Context.instance()
        pool = config.pool or PoolConfig(size=config.slots)
        self._owns_sandbox = sandbox is None
        self.sandbox = sandbox or Sandbox(pool, runtimes=config.runtimes)
        self._workers = concurrent.futures.ThreadPoolExecutor(
            config.slots, thread_name_prefix="runner-task"
        )
        self._results_endpoint = f"inproc://runner-results-{uuid.uuid4().hex}"
        self._results = self.context.socket(zmq.PULL)
        self._results.bind(self._results_endpoint)
        self._local = threading.local()
        self._pushers: list[zmq.Socket] = []
        self._pushers_lock = threading.Lock()
        self._cancels: dict[str, CancelToken] = {}
        self._cancels_lock = threading.Lock()
        self.connected = threading.Event()

    # -- I/O thread --------------------------------------------------------------------------

    def serve(self, stop: threading.Event) -> None:
        attempt = 0
        while not stop.is_set():
            sock = self._connect()
            try:
                heard = self._session(sock, stop)
            finally:
                self.connected.clear()
                sock.close(linger=0)
            if stop.is_set():
                return
            attempt = 0 if heard else attempt + 1
            delay = BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]
            log.warning("broker silent; reconnecting in %g s", delay)
            stop.wait(delay)

    def _connect(self) -> zmq.Socket:
        sock = self.context.socket(zmq.DEALER)
        sock.setsockopt(zmq.MAXMSGSIZE, p.MAX_FRAME_BYTES)
        sock.setsockopt(zmq.LINGER, 0)
        if self.config.curve is not None:
            self.config.curve.apply(sock)
        sock.connect(self.config.endpoint)
        return sock

    def _session(self, sock: zmq.Socket, stop: threading.Event) -> bool:
        """One connection's life; returns whether the broker was ever heard from."""
        cfg = self.config
        sock.send(p.encode(p.Ready(runtime_versions(cfg.runtimes), cfg.slots, cfg.groups,
                                   cfg.name)))
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(self._results, zmq.POLLIN)
        last_heard = time.monotonic()
        heard = False
        next_beat = time.monotonic() + cfg.heartbeat_s
        while not stop.is_set():
            events = dict(poller.poll(int(cfg.heartbeat_s * 250)))
            now = time.monotonic()
            if sock in events:
                while True:
                    try:
                        frame = sock.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    last_heard, heard = now, True
                    self.connected.set()
                    self._on_broker(frame)
            if self._results in events:
                while True:
                    try:
                        body = self._results.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    sock.send(body)
            if now >= next_beat:
                next_beat = now + cfg.heartbeat_s
                sock.send(p.encode(p.RunnerHeartbeat(self.sandbox.idle_children())))
            if now - last_heard > cfg.heartbeat_s * cfg.liveness:
                return heard
        try:
            sock.send(p.encode(p.Bye()), zmq.NOBLOCK)
        except zmq.ZMQError:
            pass
        return heard

    def _on_broker(self, frame: bytes) -> None:
        try:
            msg = p.decode(frame)
        except p.ProtocolError as exc:
            log.warning("malformed message from the broker: %s", exc)
            return
        if isinstance(msg, p.TaskMsg):
            token = CancelToken()
            with self._cancels_lock:
                self._cancels[msg.task_id] = token
            self._workers.submit(self._execute, msg, token)
        elif isinstance(msg, p.CancelTask):
            with self._cancels_lock:
                token = self._cancels.get(msg.task_id)
            if token is not None:
                token.set()

    # -- worker threads ----------------------------------------------------------------------

    def _execute(self, task: p.TaskMsg, token: CancelToken) -> None:
        try:
            limits = task.limits
            envelope = self.sandbox.run_encoded(
                task.runtime, task.code, task.data,
                timeout_s=limits.timeout_s, memory_mb=limits.memory_mb,
                stdout_bytes=limits.stdout_bytes, result_bytes=limits.result_bytes,
                cancel=token,
            )
        except Exception as exc:  # a jail that cannot start, a closed sandbox
            log.exception("task %s failed in the runner", task.task_id)
            envelope = wire.encode_result(Status.CRASHED, f"the runner failed: {exc}")
        finally:
            with self._cancels_lock:
                self._cancels.pop(task.task_id, None)
            token.close()
        self._pusher().send(p.encode(p.Done(task.task_id, envelope)))

    def _pusher(self) -> zmq.Socket:
        sock = getattr(self._local, "push", None)
        if sock is None:
            sock = self.context.socket(zmq.PUSH)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(self._results_endpoint)
            self._local.push = sock
            with self._pushers_lock:
                self._pushers.append(sock)
        return sock

    def close(self) -> None:
        self._workers.shutdown(wait=True, cancel_futures=True)
        with self._pushers_lock:
            for sock in self._pushers:
                sock.close(linger=0)
        self._results.close(linger=0)
        if self._owns_sandbox:
            self.sandbox.close()
