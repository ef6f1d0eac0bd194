"""The n8n runner's I/O: one poll loop that owns the WebSocket's TCP socket.

The loop turns bytes into events for ``RunnerCore`` and carries out its actions; the
WebSocket is sans-io (wsproto), so a broker ping is answered from the same loop that reads
it, and no task ever runs on this thread: the loop cannot be blocked by one. Also polled:
the backend's outcome fd, the optional health-check server, a wake-up fd for stop().

Connecting is the one blocking part (a grant over HTTP, then the upgrade, each under a
timeout); reconnects back off 1 s doubling to 32 s, each with a fresh grant, since grants
are single use.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import select
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

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

from sandbox.errors import N8nProtocolError, SandboxError
from sandbox.n8n import core as c
from sandbox.n8n import protocol as p
from sandbox.n8n.backend import Backend
from sandbox.n8n.config import N8nRunnerConfig

log = logging.getLogger("sandbox.n8n")

CONNECT_TIMEOUT_S = 10.0
BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
_READ = select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR


class ConnectError(SandboxError):
    """The broker refused the grant or the upgrade, or could not be reached."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


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
        raise ConnectError(f"cannot reach n8n's task broker at {config.task_broker_uri}: {exc}") from exc
    finally:
        conn.close()
    if resp.status != 200:
        hint = " (N8N_RUNNERS_AUTH_TOKEN differs from n8n's)" if resp.status == 403 else ""
        raise ConnectError(f"{p.AUTH_PATH} answered HTTP {resp.status}{hint}", resp.status)
    try:
        grant = json.loads(body)["data"]["token"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ConnectError(f"{p.AUTH_PATH} answered without a grant: {body[:200]!r}") from exc
    if not isinstance(grant, str):
        raise ConnectError(f"{p.AUTH_PATH} answered a grant that is not a string")
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
            raise ConnectError(f"cannot reach n8n's task broker at {host}:{port}: {exc}") from exc
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
                        raise ConnectError(f"the broker refused the WebSocket: HTTP {event.status_code}",
                                           event.status_code)
                    if not isinstance(event, RejectData):
                        pending.append(event)
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                data = sock.recv(65536)
                if not data:
                    raise ConnectError("the broker closed the connection during the upgrade")
                ws.receive_data(data)
        except ConnectError:
            sock.close()
            raise
        except (OSError, RemoteProtocolError, LocalProtocolError) as exc:
            sock.close()
            raise ConnectError(f"WebSocket upgrade failed: {exc}") from exc

    def fileno(self) -> int:
        return self.sock.fileno()

    def wants_write(self) -> bool:
        return bool(self._out)

    def send_text(self, text: str) -> None:
        if self.closed is None:
            self._out += self._ws.send(TextMessage(data=text))
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


class HealthServer:
    """``GET /healthz`` -> 200, on the loop: what n8n's launcher and compose files probe."""

    def __init__(self, host: str, port: int) -> None:
        self.listener = socket.create_server((host, port), reuse_port=False)
        self.listener.setblocking(False)
        self.clients: dict[int, tuple[socket.socket, bytearray]] = {}

    def accept(self) -> socket.socket | None:
        try:
            conn, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return None
        conn.setblocking(False)
        self.clients[conn.fileno()] = (conn, bytearray())
        return conn

    def on_readable(self, fd: int) -> bool:
        """Reads the request; True when the client is done (answered and closed)."""
        conn, buf = self.clients[fd]
        try:
            chunk = conn.recv(4096)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            chunk = b""
        buf += chunk
        if chunk and b"\r\n\r\n" not in buf and len(buf) < 8192:
            return False
        if chunk:
            ok = buf.split(b" ", 2)[1:2] in ([b"/healthz"], [b"/"])
            body = b'{"status":"ok"}' if ok else b'{"status":"not found"}'
            head = (b"HTTP/1.1 200 OK" if ok else b"HTTP/1.1 404 Not Found") + (
                b"\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: "
                + str(len(body)).encode() + b"\r\n\r\n")
            try:
                conn.send(head + body)  # tiny: fits the socket buffer
            except OSError:
                pass
        conn.close()
        del self.clients[fd]
        return True

    def close(self) -> None:
        for conn, _ in self.clients.values():
            conn.close()
        self.clients.clear()
        self.listener.close()


@dataclass
class Shell:
    """Serve n8n until stopped, auto-shutdown, or a grant that cannot be renewed."""

    config: N8nRunnerConfig
    backend: Backend
    clock: Callable[[], float] = time.monotonic
    core: c.RunnerCore = field(init=False)
    ws: WebSocket | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.core = c.RunnerCore(c.CoreConfig(
            name=self.config.name, task_types=self.config.task_types,
            max_concurrency=self.config.max_concurrency, limits=self.config.limits(),
            auto_shutdown_s=float(self.config.auto_shutdown_timeout_s)))
        self.runner_id = c._nanoid(self.core.rng)
        self._wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._stopping = False
        self._exit: str | None = None
        self._grant = self.config.grant_token
        self.health = (HealthServer(self.config.health_check_server_host,
                                    self.config.health_check_server_port)
                       if self.config.health_check_server_enabled else None)

    def request_stop(self) -> None:
        """From a signal handler or another thread: stop at the next turn of the loop."""
        self._stopping = True
        try:
            os.eventfd_write(self._wake, 1)
        except OSError:
            pass

    def serve(self) -> int:
        """The loop. Returns the process exit code."""
        attempt = 0
        try:
            while not self._stopping and self._exit is None:
                try:
                    self._connect()
                except ConnectError as exc:
                    if exc.status in (401, 403) and not self.config.auth_token:
                        log.error("%s; no N8N_RUNNERS_AUTH_TOKEN to fetch a new grant", exc)
                        return 1
                    delay = BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]
                    attempt += 1
                    log.warning("%s; retrying in %g s", exc, delay)
                    self._run_for(delay)
                    continue
                log.info("connected to n8n's task broker at %s as %s", self.config.task_broker_uri,
                         self.runner_id)
                registered = self._run_connection()
                if registered:
                    attempt = 0
                if not self._stopping and self._exit is None:
                    delay = BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]
                    attempt += 1
                    log.warning("disconnected from the broker; reconnecting in %g s", delay)
                    self._run_for(delay)
            return 0
        finally:
            self._stop_everything()

    # -- connection --------------------------------------------------------------------------

    def _connect(self) -> None:
        grant, self._grant = self._grant, ""
        if not grant:
            if not self.config.auth_token:
                raise ConnectError("the grant was used and no N8N_RUNNERS_AUTH_TOKEN is set", 403)
            grant = fetch_grant(self.config)
        self.ws = WebSocket.open(self.config, self.runner_id, grant)
        self._do(self.core.connected(self.clock()))
        for text in self.ws.read():  # frames that came in with the upgrade's answer
            self._on_text(text)

    def _run_connection(self) -> bool:
        registered = False
        assert self.ws is not None
        while not self._stopping and self._exit is None and self.ws.closed is None:
            self._turn(self.core.next_deadline(self.clock()))
            if self.core.registered and not registered:
                registered = True
                log.info("registered with n8n's task broker (types %s, %d slots)",
                         ",".join(self.config.task_types), self.config.max_concurrency)
        ws, self.ws = self.ws, None
        if self._stopping or self._exit is not None:
            self._do(self.core.stop(self.clock()), ws)
            ws.close(1001, "runner shutting down")
        elif ws.closed is not None:
            log.warning("WebSocket closed: %s %s", *ws.closed)
        self._do(self.core.disconnected(self.clock()))
        ws.shutdown()
        return registered

    def _run_for(self, seconds: float) -> None:
        end = self.clock() + seconds
        while not self._stopping and self._exit is None and self.clock() < end:
            self._turn(end)

    # -- one turn of the loop ----------------------------------------------------------------

    def _turn(self, wake_at: float) -> None:
        poller = select.poll()
        poller.register(self._wake, select.POLLIN)
        poller.register(self.backend.fileno(), select.POLLIN)
        ws = self.ws
        if ws is not None:
            poller.register(ws.fileno(), select.POLLIN | (select.POLLOUT if ws.wants_write() else 0))
        if self.health is not None:
            poller.register(self.health.listener.fileno(), select.POLLIN)
            for fd in self.health.clients:
                poller.register(fd, select.POLLIN)
        timeout_ms = max(0.0, min(wake_at, self.clock() + 1.0) - self.clock()) * 1000
        for fd, events in poller.poll(timeout_ms):
            if fd == self._wake:
                try:
                    os.eventfd_read(self._wake)
                except BlockingIOError:
                    pass
            elif fd == self.backend.fileno():
                for task_id, result in self.backend.outcomes():
                    self._do(self.core.finished(task_id, result, self.clock()))
            elif ws is not None and fd == ws.fileno():
                if events & select.POLLOUT:
                    ws.flush()
                if events & _READ:
                    for text in ws.read():
                        self._on_text(text)
            elif self.health is not None and fd == self.health.listener.fileno():
                self.health.accept()
            elif self.health is not None and fd in self.health.clients:
                self.health.on_readable(fd)
        self._do(self.core.tick(self.clock()))

    def _on_text(self, text: str) -> None:
        try:
            msg = p.parse(text)
        except N8nProtocolError as exc:
            self.core.protocol_errors += 1
            log.warning("ignoring a frame from the broker: %s", exc)
            return
        self._do(self.core.frame(msg, self.clock()))

    def _do(self, actions: list[c.Action], ws: WebSocket | None = None) -> None:
        ws = ws or self.ws
        for action in actions:
            match action:
                case c.Send(msg):
                    if ws is not None:
                        ws.send_text(self._encode(msg))
                case c.Start(task_id, job):
                    self.backend.submit(task_id, job)
                case c.Cancel(task_id):
                    self.backend.cancel(task_id)
                case c.Exit(reason):
                    log.info("exiting: %s", reason)
                    self._exit = reason

    @staticmethod
    def _encode(msg: p.RunnerMessage) -> str:
        try:
            return p.encode(msg)
        except (ValueError, TypeError) as exc:  # not JSON (NaN, say): still one answer
            if not isinstance(msg, (p.TaskDone, p.TaskError)):
                raise
            log.error("task %s: its answer is not JSON: %s", msg.task_id, exc)
            return p.encode(p.TaskError(msg.task_id, {"message": f"the task's result is not JSON: {exc}"}))

    def _stop_everything(self) -> None:
        if self.health is not None:
            self.health.close()
        os.close(self._wake)
