"""The n8n runner's I/O: one loop (``sandbox.host.loop``) that owns every fd of the process.

The WebSocket's TCP socket, the pools' jails and children (through the backend) and a
wake-up pipe for stop() are all watched by the same loop;
the shell turns what arrives into events for ``RunnerCore`` and carries out its actions. The
WebSocket is sans-io (wsproto), so a broker ping is answered by the loop that reads it, and
no task ever runs on this thread: the loop cannot be blocked by one.

The optional health-check server (``/livez``, ``/readyz``, ``/healthz``, ``/metrics``) is
the project's one probe server (``sandbox.http.probes``), in a thread of its own: it reads
the loop's state by asking the loop (``snapshot``), never by walking it.

Connecting is the one blocking part (a grant over HTTP, then the upgrade, each under a
timeout); reconnects back off 1 s doubling to 32 s, each with a fresh grant, since grants
are single use.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from sandbox import backoff
from sandbox.errors import N8nConnectError, N8nProtocolError
from sandbox.host.loop import Loop
from sandbox.n8n import core as c
from sandbox.n8n import protocol as p
from sandbox.n8n.backend import Backend
from sandbox.n8n.config import N8nRunnerConfig
from sandbox.n8n.metrics import N8nMetrics
from sandbox.result import Result

log = logging.getLogger("sandbox.n8n")

CONNECT_TIMEOUT_S = 10.0
SNAPSHOT_TIMEOUT_S = 2.0  # the loop answers in microseconds; seconds is a stuck loop
FLUSH_RETRY_S = 0.002  # output the socket did not take yet is retried this often


def fetch_grant(config: N8nRunnerConfig, timeout_s: float = CONNECT_TIMEOUT_S) -> str:
    """A single-use grant from ``POST /runners/auth`` with the auth token."""
    host, port = config.host_port
    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        conn.request("POST", p.AUTH_PATH, json.dumps({"token": config.auth_token}),
                     {"Content-Type": "application/json"})
        resp = conn.getresponse()
        body = resp.read(1 << 20)
    except OSError as exc:
        raise N8nConnectError(f"cannot reach n8n's task broker at {config.task_broker_uri}: {exc}") from exc
    finally:
        conn.close()
    if resp.status != 200:
        hint = " (N8N_RUNNERS_AUTH_TOKEN differs from n8n's)" if resp.status == 403 else ""
        raise N8nConnectError(f"{p.AUTH_PATH} answered HTTP {resp.status}{hint}", resp.status)
    try:
        grant = json.loads(body)["data"]["token"]
    except (ValueError, KeyError, TypeError) as exc:
        raise N8nConnectError(f"{p.AUTH_PATH} answered without a grant: {body[:200]!r}") from exc
    if not isinstance(grant, str):
        raise N8nConnectError(f"{p.AUTH_PATH} answered a grant that is not a string")
    return grant


class WebSocket:
    """A client WebSocket over a non-blocking TCP socket; text messages in and out."""

    def __init__(self, sock: socket.socket, ws: WSConnection, max_message_bytes: int) -> None:
        self.sock = sock
        self._ws = ws
        self._out = bytearray()
        self._parts: list[str] = []
        self._size = 0
        self._max = max_message_bytes
        self._queued: list[Event] = []  # events that arrived with the upgrade's answer
        self.closed: tuple[int, str] | None = None

    @classmethod
    def open(cls, config: N8nRunnerConfig, runner_id: str, grant: str,
             timeout_s: float = CONNECT_TIMEOUT_S) -> WebSocket:
        host, port = config.host_port
        try:
            sock = socket.create_connection((host, port), timeout=timeout_s)
        except OSError as exc:
            raise N8nConnectError(f"cannot reach n8n's task broker at {host}:{port}: {exc}") from exc
        ws = WSConnection(ConnectionType.CLIENT)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(ws.send(Request(host=f"{host}:{port}", target=f"{p.WS_PATH}?id={runner_id}",
                                         extra_headers=[(b"authorization", f"Bearer {grant}".encode())])))
            deadline = time.monotonic() + timeout_s
            pending: list[Event] = []
            while True:
                for event in ws.events():
                    if isinstance(event, AcceptConnection):
                        sock.setblocking(False)
                        conn = cls(sock, ws, config.max_payload_bytes)
                        conn._queued = pending + list(ws.events())
                        return conn
                    if isinstance(event, RejectConnection):
                        raise N8nConnectError(f"the broker refused the WebSocket: HTTP {event.status_code}",
                                           event.status_code)
                    if not isinstance(event, RejectData):
                        pending.append(event)
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                data = sock.recv(65536)
                if not data:
                    raise N8nConnectError("the broker closed the connection during the upgrade")
                ws.receive_data(data)
        except N8nConnectError:
            sock.close()
            raise
        except (OSError, RemoteProtocolError, LocalProtocolError) as exc:
            sock.close()
            raise N8nConnectError(f"WebSocket upgrade failed: {exc}") from exc

    def fileno(self) -> int:
        return self.sock.fileno()

    def wants_write(self) -> bool:
        return bool(self._out)

    def send_text(self, text: str, flush: bool = True) -> None:
        """One text message; with ``flush=False`` it waits for the next ``flush`` (the
        messages one event makes go out in one write: fewer system calls, and on the
        loopback fewer wake-ups of n8n)."""
        if self.closed is None:
            self._out += self._ws.send(TextMessage(data=text))
            if flush:
                self.flush()

    def flush(self) -> None:
        while self._out:
            try:
                n = self.sock.send(self._out)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._lost(f"send failed: {exc}")
                return
            del self._out[:n]

    def read(self) -> list[str]:
        """The complete text messages that have arrived; pings answered on the way."""
        try:
            data = self.sock.recv(1 << 20)
        except (BlockingIOError, InterruptedError):
            data = None
        except OSError as exc:
            self._lost(f"receive failed: {exc}")
            return []
        if data is not None:
            try:
                self._ws.receive_data(data or None)
            except RemoteProtocolError as exc:
                self._lost(f"protocol error from the broker: {exc}")
                return []
        out: list[str] = []
        events, self._queued = self._queued, []
        try:
            events += list(self._ws.events())
        except RemoteProtocolError as exc:
            self._lost(f"protocol error from the broker: {exc}")
        for event in events:
            if isinstance(event, Ping):
                self._out += self._ws.send(event.response())
            elif isinstance(event, TextMessage):
                self._size += len(event.data)
                if self._size > self._max:
                    self.close(1009, "message too big")
                    return out
                self._parts.append(event.data)
                if event.message_finished:
                    out.append("".join(self._parts))
                    self._parts, self._size = [], 0
            elif isinstance(event, BytesMessage):
                log.warning("ignoring a binary WebSocket message from the broker")
            elif isinstance(event, CloseConnection):
                try:
                    self._out += self._ws.send(event.response())
                except LocalProtocolError:
                    pass
                self.flush()
                self.closed = (event.code, event.reason or "")
        if data == b"" and self.closed is None:
            self.closed = (1006, "connection closed by the broker")
        self.flush()
        return out

    def close(self, code: int = 1000, reason: str = "") -> None:
        if self.closed is None:
            try:
                self._out += self._ws.send(CloseConnection(code=code, reason=reason))
                self.flush()
            except LocalProtocolError:
                pass
            self.closed = (code, reason)

    def _lost(self, why: str) -> None:
        if self.closed is None:
            self.closed = (1006, why)

    def shutdown(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class Shell:
    """Serve n8n until stopped, auto-shutdown, or a grant that cannot be renewed."""

    def __init__(self, config: N8nRunnerConfig, backend: Backend,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.backend = backend
        self.clock = clock
        self.core = c.RunnerCore(c.CoreConfig(
            name=config.name, task_types=config.task_types,
            max_concurrency=config.max_concurrency, limits=config.limits(),
            auto_shutdown_s=float(config.auto_shutdown_timeout_s),
            javascript=config.javascript_options()))
        self.runner_id = c._nanoid(self.core.rng)
        self.loop = Loop()
        self.ws: WebSocket | None = None
        self._grant = config.grant_token
        self._attempt = 0
        self._reconnect_at: float | None = 0.0  # disconnected: when to try again
        self._registered = False
        self._stopping = False
        self._shutdown_requested = False  # SIGTERM seen: serving out the grace period
        self._shutdown_started = False
        self._done = False
        self.exit_code = 0
        self.metrics = N8nMetrics()
        self.metrics.attach(self.snapshot)
        self._blocking: str | None = "starting the jails"  # the loop cannot answer meanwhile
        self.health: Any = None
        if config.health_check_server_enabled:
            from sandbox.http.probes import ProbeServer

            self.health = ProbeServer(  # bound now: an address in use is said at once
                f"{config.health_check_server_host}:{config.health_check_server_port}",
                self._live, self._ready, self.metrics.registry, healthz="live",
                name="the health check server")

    def request_stop(self) -> None:
        """From a signal handler or another thread: stop at the next turn of the loop."""
        self._stopping = True
        self.loop.wake()

    def request_shutdown(self) -> None:
        """SIGTERM, from a signal handler: keep serving through the grace period, then wind
        down (``RunnerCore.shutdown``); a second request stops at once."""
        if self._shutdown_requested:
            self.request_stop()
            return
        self._shutdown_requested = True
        self.loop.wake()

    def serve(self) -> int:
        """Start the jails, then the loop, until stopped. Returns the process exit code."""
        try:
            if self.health is not None:
                self.health.start()  # /livez answers while the jails start
            self.backend.attach(self.loop, self._on_outcome, self._on_call)
            self._blocking = None
            self.loop.add_timed(self)
            self.loop.run(self._over)
        finally:
            self._blocking = "stopping"
            if self.ws is not None:
                self._teardown("runner shutting down")
            self.backend.close()
            self.loop.close()
            if self.health is not None:
                self.health.close()
        return self.exit_code

    # -- health, from the probe server's thread -----------------------------------------------

    def snapshot(self, timeout_s: float = SNAPSHOT_TIMEOUT_S) -> dict[str, Any] | None:
        """The loop's state, read in the loop's thread; None when it did not answer within
        ``timeout_s`` (it is blocked: connecting, starting, or stuck)."""
        box: dict[str, Any] = {}
        done = threading.Event()

        def take() -> None:
            try:
                box.update(registered=self.core.registered and not self.core.draining,
                           running=self.core.running, offers=len(self.core.offers),
                           idle=self.backend.idle_by_runtime(),
                           protocol_errors=self.core.protocol_errors)
            finally:
                done.set()

        if self._done:
            return None
        self.loop.call_soon_threadsafe(take)
        return box if done.wait(timeout_s) and box else None

    def _live(self) -> dict[str, Any]:
        blocking = self._blocking
        if blocking is not None:  # a known, bounded wait (each step has its timeout)
            return {"status": "ok", "phase": blocking}
        if self.snapshot() is None and self._blocking is None and not self._done:
            return {"status": "loop stuck"}
        return {"status": "ok"}

    def _ready(self) -> dict[str, Any]:
        if self._stopping or self._done:
            return {"status": "stopping"}
        if self._blocking is not None:
            return {"status": self._blocking}
        snap = self.snapshot()
        if snap is None:
            return {"status": "loop stuck"}
        return {"status": "ok" if snap["registered"] else "not registered",
                "running": snap["running"]}

    def _over(self) -> bool:
        if self._shutdown_requested and not self._shutdown_started and not self._stopping:
            self._shutdown_started = True
            log.info("shutting down: serving for up to %g s more, or until n8n drains",
                     self.config.graceful_shutdown_timeout_s)
            self._do(self.core.shutdown(self.clock(), float(self.config.graceful_shutdown_timeout_s),
                                        float(self.config.shutdown_force_kill_margin_s)))
        if self._stopping and not self._done:
            self._done = True
            if self.ws is not None:
                self._teardown("runner shutting down")
        return self._done

    # -- the loop's timer --------------------------------------------------------------------

    def wake_at(self) -> float | None:
        if self._done:
            return None
        times = [self.core.next_deadline(self.clock())]
        if self.ws is None and self._reconnect_at is not None:
            times.append(self._reconnect_at)
        if self.ws is not None and self.ws.wants_write():
            times.append(self.clock() + FLUSH_RETRY_S)
        return min(times)

    def on_time(self, now: float) -> None:
        if self.ws is None and self._reconnect_at is not None and now >= self._reconnect_at:
            self._connect()
        if self.ws is not None and self.ws.wants_write():
            self.ws.flush()
        self._do(self.core.tick(self.clock()))
        self._check_closed()

    # -- connection --------------------------------------------------------------------------

    def _connect(self) -> None:
        self._reconnect_at = None
        self._blocking = "connecting"
        try:
            grant, self._grant = self._grant, ""
            if not grant:
                if not self.config.auth_token:
                    log.error("the grant was used and no N8N_RUNNERS_AUTH_TOKEN is set to fetch another")
                    self.exit_code, self._done = 1, True
                    return
                grant = fetch_grant(self.config)
            self.ws = WebSocket.open(self.config, self.runner_id, grant)
        except N8nConnectError as exc:
            self._retry(f"{exc}")
            return
        finally:
            self._blocking = None
        log.info("connected to n8n's task broker at %s as %s", self.config.task_broker_uri,
                 self.runner_id)
        self._registered = False
        self.loop.watch(self.ws.fileno(), self._on_ws)
        self._do(self.core.connected(self.clock()))
        self._on_ws(0)  # frames that came in with the upgrade's answer

    def _retry(self, why: str) -> None:
        delay = backoff.delay_s(self._attempt)
        self._attempt += 1
        self.metrics.reconnects.inc()
        log.warning("%s; retrying in %g s", why, delay)
        self._reconnect_at = self.clock() + delay

    def _check_closed(self) -> None:
        ws = self.ws
        if ws is None or ws.closed is None:
            return
        log.warning("WebSocket closed: %s %s", *ws.closed)
        self._teardown(None)
        if self._shutdown_started:
            self._stopping = True  # shutting down: n8n closed the connection, we are done
            self.loop.wake()
        elif not self._stopping:
            self._retry("disconnected from the broker")

    def _teardown(self, farewell: str | None) -> None:
        ws, self.ws = self.ws, None
        assert ws is not None
        if farewell is not None:
            self._do(self.core.stop(self.clock()), ws)
            ws.close(1001, farewell)
            ws.flush()
        self._do(self.core.disconnected(self.clock()))
        self.loop.unwatch(ws.fileno())
        ws.shutdown()

    # -- events ------------------------------------------------------------------------------

    def _on_ws(self, events: int) -> None:
        ws = self.ws
        if ws is None:
            return
        for text in ws.read():
            self._on_text(text)
        if self.core.registered and not self._registered:
            self._registered, self._attempt = True, 0
            log.info("registered with n8n's task broker (types %s, %d slots)",
                     ",".join(self.config.task_types), self.config.max_concurrency)
        self._check_closed()

    def _on_text(self, text: str) -> None:
        try:
            msg = p.parse(text)
        except N8nProtocolError as exc:
            self.core.protocol_errors += 1
            log.warning("ignoring a frame from the broker: %s", exc)
            return
        self._do(self.core.frame(msg, self.clock()))

    def _on_outcome(self, task_id: str, result: Result) -> None:
        self.metrics.tasks.labels(result.status.value).inc()
        self._do(self.core.finished(task_id, result, self.clock()))

    def _on_call(self, task_id: str, call_id: int, name: str, params: list[Any]) -> None:
        self._do(self.core.call(task_id, call_id, name, params))

    def _do(self, actions: list[c.Action], ws: WebSocket | None = None) -> None:
        ws = ws or self.ws
        sent = False
        for action in actions:
            match action:
                case c.Send(msg):
                    if ws is not None:
                        ws.send_text(self._encode(msg), flush=False)
                        sent = True
                case c.Start(task_id, job):
                    log.debug("task %s: started (%s)", task_id, job.runtime)
                    self.backend.submit(task_id, job)
                case c.Cancel(task_id):
                    self.backend.cancel(task_id)
                case c.Answer(task_id, call_id, ok, data):
                    self.backend.answer(task_id, call_id, ok, data)
                case c.Exit(reason):
                    log.info("exiting: %s", reason)
                    self._stopping = True
                    self.loop.wake()
        if sent and ws is not None:
            ws.flush()  # what this event sent, in one write (an answer and the next offer)

    @staticmethod
    def _encode(msg: p.RunnerMessage) -> str:
        try:
            return p.encode(msg)
        except (ValueError, TypeError) as exc:  # not JSON (NaN, say): still one answer
            if not isinstance(msg, (p.TaskDone, p.TaskError)):
                raise
            log.error("task %s: its answer is not JSON: %s", msg.task_id, exc)
            return p.encode(p.TaskError(msg.task_id, {"message": f"the task's result is not JSON: {exc}"}))
