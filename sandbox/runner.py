"""A runner: connects to a broker, advertises its runtimes and slots, runs tasks in its pools.

One thread does everything: it owns the DEALER socket (ZeroMQ sockets are not thread-safe) and
polls it together with the channels of the children running tasks, so a result goes from a
child to the broker with no hand-off between threads. A task that finds no idle child waits
in the runner (polled every millisecond) until one is ready or the pool's acquire timeout
passes. Heartbeats go both ways; if the broker is silent for ``heartbeat_s * liveness`` the
runner reconnects with a fresh socket, backing off 1 s, 2 s, ... up to 32 s (Paranoid
Pirate), and registers again: the broker treats the tasks of the old session as lost, so the
runner kills them.

A runner connects to the broker's runner endpoint (never the client one) through a
``sandbox.link.Link``: over tcp with a runner key pair the broker lists in its ``runners``
directory. A key the server refuses ends ``serve`` with ConnectError ("the server refused
this key"), at once and on any later reconnect; no send ever blocks on a broker that is
gone, so a stop is always noticed.
"""

from __future__ import annotations

import collections
import logging
import platform
import threading
import time
from dataclasses import dataclass, field

import zmq

from broker import protocol as p
from runtimes import wire
from runtimes.wire import Status
from sandbox.config import PoolConfig
from sandbox.errors import ConnectError
from sandbox.link import CurveClient, Link
from sandbox.local import Prepared, Sandbox
from sandbox.pool import Child, TaskRun

__all__ = ["CurveClient", "Runner", "RunnerConfig"]

log = logging.getLogger("sandbox.runner")

BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)


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


class _BrokerGone(Exception):
    """The broker's socket would not take a message for a whole liveness period."""


@dataclass
class RunnerConfig:
    endpoint: str  # the broker's runner endpoint
    runtimes: tuple[str, ...] = ("python", "javascript")
    groups: tuple[str, ...] = ()
    slots: int = 4
    name: str = ""
    heartbeat_s: float = 1.0
    liveness: int = 3
    pool: PoolConfig | None = None
    curve: CurveClient | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class _Waiting:
    """A task that arrived when its pool had no idle child."""

    msg: p.TaskMsg
    prepared: Prepared
    since: float


class Runner:
    def __init__(self, config: RunnerConfig, *, context: zmq.Context | None = None,
                 sandbox: Sandbox | None = None) -> None:
        self.config = config
        self.context = context or zmq.Context.instance()
        pool = config.pool or PoolConfig(size=config.slots)
        self._owns_sandbox = sandbox is None
        self.sandbox = sandbox or Sandbox(pool, runtimes=config.runtimes)
        self._running: dict[str, TaskRun] = {}
        self._by_fd: dict[int, TaskRun] = {}  # the running tasks by their channel's number
        self._waiting: collections.deque[_Waiting] = collections.deque()
        self.connected = threading.Event()

    def serve(self, stop: threading.Event) -> None:
        """Run tasks until ``stop`` is set. ConnectError when the server refuses our key."""
        attempt = 0
        while not stop.is_set():
            link = Link(self.context, self.config.endpoint, self.config.curve)
            try:
                heard = self._session(link, stop)
            except _BrokerGone:
                heard = True
            finally:
                self.connected.clear()
                self._abandon()
                link.close()
            if stop.is_set():
                return
            attempt = 0 if heard else attempt + 1
            delay = BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]
            log.warning("broker silent; reconnecting in %g s", delay)
            stop.wait(delay)

    def _session(self, link: Link, stop: threading.Event) -> bool:
        """One connection's life; returns whether the broker was ever heard from."""
        cfg = self.config
        sock = link.sock
        try:
            link.wait_up(cfg.heartbeat_s * cfg.liveness, stop)
        except ConnectError:
            if link.state.refused:
                raise
            return False  # nobody there yet: back off and try again
        if stop.is_set():
            return False
        self._send(sock, p.Ready(runtime_versions(cfg.runtimes), cfg.slots, cfg.groups, cfg.name))
        self._poller = zmq.Poller()
        self._poller.register(sock, zmq.POLLIN)
        if link.monitor is not None:
            self._poller.register(link.monitor, zmq.POLLIN)
        last_heard = time.monotonic()
        heard = False
        next_beat = time.monotonic() + cfg.heartbeat_s
        while not stop.is_set():
            now = time.monotonic()
            wake = min([next_beat, now + cfg.heartbeat_s / 4]
                       + [t.wake_at() for t in self._running.values()])
            if self._waiting:
                wake = min(wake, now + 0.001)
            events = self._poller.poll(max(0, int((wake - now) * 1000 + 0.999)))
            now = time.monotonic()
            for what, _ in events:
                if what is link.monitor:
                    if link.update().refused:
                        raise ConnectError(link.state.refused)
                elif what is sock:
                    while True:
                        try:
                            frame = sock.recv(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        last_heard, heard = now, True
                        self.connected.set()
                        self._on_broker(sock, frame, now)
                else:
                    task = self._by_fd.get(what)
                    if task is not None:
                        task.on_readable()
            now = time.monotonic()
            for task_id, task in list(self._running.items()):
                task.on_time(now)
                if task.envelope is not None:
                    self._send_done(sock, task_id, task.envelope)
            self._start_waiting(sock, now)
            if now >= next_beat:
                next_beat = now + cfg.heartbeat_s
                try:  # a heartbeat the socket will not take is one the broker misses
                    sock.send(p.encode(p.RunnerHeartbeat(self.sandbox.idle_children())),
                              zmq.NOBLOCK)
                except zmq.Again:
                    pass
            if now - last_heard > cfg.heartbeat_s * cfg.liveness:
                return heard
        try:
            sock.send(p.encode(p.Bye()), zmq.NOBLOCK)
        except zmq.ZMQError:
            pass
        return heard

    def _on_broker(self, sock: zmq.Socket, frame: bytes, now: float) -> None:
        try:
            msg = p.decode(frame)
        except p.ProtocolError as exc:
            log.warning("malformed message from the broker: %s", exc)
            return
        if isinstance(msg, p.TaskMsg):
            self._start(sock, msg, now)
        elif isinstance(msg, p.CancelTask):
            task = self._running.get(msg.task_id)
            if task is not None:
                task.cancel()
                self._send_done(sock, msg.task_id, task.envelope or b"")
                return
            for waiting in list(self._waiting):
                if waiting.msg.task_id == msg.task_id:
                    self._waiting.remove(waiting)
                    self._send_done(sock, msg.task_id, wire.encode_result(
                        Status.CRASHED, "cancelled before it ran"))

    def _start(self, sock: zmq.Socket, msg: p.TaskMsg, now: float) -> None:
        lim = msg.limits
        try:
            prepared = self.sandbox.prepare(
                msg.runtime, msg.code, timeout_s=lim.timeout_s, memory_mb=lim.memory_mb,
                stdout_bytes=lim.stdout_bytes, result_bytes=lim.result_bytes,
                policy=None if msg.policy == "default" else msg.policy, imports=msg.imports)
            if isinstance(prepared, bytes):  # a bad request: rejected, with the reason
                self._send_done(sock, msg.task_id, prepared)
                return
            child = prepared.pool.try_acquire()
        except Exception as exc:  # a jail that cannot start, a closed sandbox
            log.exception("task %s failed in the runner", msg.task_id)
            self._send_done(sock, msg.task_id, wire.encode_result(
                Status.CRASHED, f"the runner failed: {exc}"))
            return
        if child is None:
            self._waiting.append(_Waiting(msg, prepared, now))
            return
        self._begin(sock, msg, prepared, child)

    def _begin(self, sock: zmq.Socket, msg: p.TaskMsg, prepared: Prepared, child: Child) -> None:
        task = prepared.pool.begin(child, msg.code, msg.data, prepared.limits, prepared.options)
        if task.envelope is not None:
            self._send_done(sock, msg.task_id, task.envelope)
            return
        self._running[msg.task_id] = task
        self._by_fd[task.fileno()] = task
        self._poller.register(task.fileno(), zmq.POLLIN)

    def _start_waiting(self, sock: zmq.Socket, now: float) -> None:
        for waiting in list(self._waiting):
            failure: str | None
            try:
                child = waiting.prepared.pool.try_acquire()
            except Exception as exc:
                child, failure = None, f"the runner failed: {exc}"
            else:
                failure = None
            if child is not None:
                self._waiting.remove(waiting)
                self._begin(sock, waiting.msg, waiting.prepared, child)
            elif failure or now - waiting.since > waiting.prepared.pool.config.acquire_timeout_s:
                self._waiting.remove(waiting)
                envelope = (wire.encode_result(Status.CRASHED, failure) if failure
                            else waiting.prepared.pool.no_child_envelope())
                self._send_done(sock, waiting.msg.task_id, envelope)

    def _send_done(self, sock: zmq.Socket, task_id: str, envelope: bytes) -> None:
        task = self._running.pop(task_id, None)
        if task is not None:
            self._by_fd.pop(task.fileno(), None)
            try:
                self._poller.unregister(task.fileno())
            except KeyError:
                pass
        # the envelope may be the bytearray it was read into: msgpack packs it as bin all
        # the same, so a large result is not copied once more just to change its type
        status = wire.peek_status(bytes(envelope[:256])) if envelope else None
        self._send(sock, p.Done(task_id, envelope,
                                status if status in p.STATUSES else p.CRASHED))

    def _send(self, sock: zmq.Socket, msg: p.Message) -> None:
        """Send, waiting at most a liveness period for a socket that is full (a broker that
        stopped reading); past it the session ends (``_BrokerGone``)."""
        frame = p.encode(msg)
        try:
            sock.send(frame, zmq.NOBLOCK)
            return
        except zmq.Again:
            pass
        cfg = self.config
        if not sock.poll(int(cfg.heartbeat_s * cfg.liveness * 1000), zmq.POLLOUT):
            raise _BrokerGone()
        sock.send(frame, zmq.NOBLOCK)

    def _abandon(self) -> None:
        """The session is over: the broker counts its tasks as lost; stop running them."""
        for task in self._running.values():
            task.cancel()
        self._running.clear()
        self._by_fd.clear()
        self._waiting.clear()

    def close(self) -> None:
        self._abandon()
        if self._owns_sandbox:
            self.sandbox.close()
