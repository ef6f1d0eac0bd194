"""The mock broker's I/O: one loop, in one background thread, owns every socket and the core.

A loopback TCP listener; each connection speaks HTTP/1.1 (h11) until it is upgraded to a
WebSocket (wsproto), exactly where n8n's broker would: ``POST /runners/auth``, ``GET
/runners/_ws?id=``, ``GET /healthz``. What arrives becomes an event for ``BrokerCore``; the
loop carries out the actions it returns (frames, pings, closes, answers). Callers on other
threads submit tasks through the loop's queue (``Loop.call_soon_threadsafe``) and each waits
on its own event for its one answer.
"""

from __future__ import annotations

import functools
import json
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import h11
from wsproto import ConnectionType
from wsproto.connection import Connection, ConnectionState
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.utilities import LocalProtocolError, RemoteProtocolError, generate_accept_token

from benchmarks.n8n_mock import core as c
from sandbox.host.loop import Loop
from sandbox.n8n import protocol as p

MAX_MESSAGE_BYTES = 64 << 20  # n8n allows 1 GiB; a benchmark's frames are a few KiB
MAX_BODY_BYTES = 1 << 20
FLUSH_RETRY_S = 0.002  # output a socket did not take yet is retried this often
STOP_FLUSH_S = 2.0  # how long stop() lets the drain and close frames go out
ANSWER_GRACE_S = 5.0  # beyond the core's own deadlines, before a caller calls the broker dead

T = TypeVar("T")


class MockBrokerError(RuntimeError):
    """The mock broker did not answer (its loop is gone) or was used after close()."""


@dataclass(eq=False)
class _Conn:
    sock: socket.socket
    fd: int
    http: h11.Connection = field(default_factory=lambda: h11.Connection(h11.SERVER))
    ws: Connection | None = None
    out: bytearray = field(default_factory=bytearray)
    request: h11.Request | None = None
    body: bytearray = field(default_factory=bytearray)
    parts: list[str] = field(default_factory=list)
    size: int = 0
    close_after_flush: bool = False


@dataclass(eq=False)
class _Waiter:
    event: threading.Event = field(default_factory=threading.Event)
    outcome: c.Outcome | None = None


class Handle:
    """A submitted task; ``result()`` waits for its one answer."""

    def __init__(self, broker: MockBroker, handle: int, waiter: _Waiter) -> None:
        self._broker = broker
        self.id = handle
        self._waiter = waiter

    def result(self, timeout_s: float | None = None) -> c.Outcome:
        """The answer; after ``timeout_s`` (default: the broker's own request and task
        timeouts) the task is cancelled and the cancel is the answer."""
        broker = self._broker
        if not self._waiter.event.wait(broker.deadline_s if timeout_s is None else timeout_s):
            broker._call(lambda: broker._act(broker._core.cancel(self.id, time.monotonic())))
            if not self._waiter.event.wait(ANSWER_GRACE_S):
                raise MockBrokerError(f"the mock broker never answered task {self.id}")
        assert self._waiter.outcome is not None
        return self._waiter.outcome


class MockBroker:
    """A stand-in for n8n 2.41's task broker on a loopback port.

    ``uri`` is what a runner gets as ``N8N_RUNNERS_TASK_BROKER_URI``, ``auth_token`` its
    ``N8N_RUNNERS_AUTH_TOKEN``; ``grant()`` is a single-use grant for
    ``N8N_RUNNERS_GRANT_TOKEN``, as n8n's launcher passes one to the runner it starts.
    """

    def __init__(self, *, auth_token: str | None = None, task_timeout_s: float = 60.0,
                 heartbeat_s: float = 30.0, request_timeout_s: float = 60.0,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.auth_token = auth_token or secrets.token_hex(16)
        self.deadline_s = request_timeout_s + task_timeout_s + c.ACCEPT_S + 1.0
        self._core = c.BrokerCore(self.auth_token, lambda: secrets.token_hex(32),
                                  task_timeout_s=task_timeout_s, heartbeat_s=heartbeat_s,
                                  request_timeout_s=request_timeout_s, now=time.monotonic())
        self._listener = socket.create_server((host, port))
        self._listener.setblocking(False)
        self.host, self.port = self._listener.getsockname()[:2]
        self._loop = Loop()
        self._conns: dict[int, _Conn] = {}
        self._waiters: dict[int, _Waiter] = {}
        self._ids = count(1)
        self._stopping = False
        self._stop_by = 0.0
        self._closed = False
        self._loop.watch(self._listener.fileno(), self._on_accept)
        self._loop.add_timed(self)
        self._thread = threading.Thread(target=self._loop.run, args=(self._done,),
                                        name="mock-n8n-broker", daemon=True)
        self._thread.start()

    @property
    def uri(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- the API (any thread) --------------------------------------------------------------

    def submit(self, spec: c.TaskSpec) -> Handle:
        if self._closed:
            raise MockBrokerError("the mock broker is closed")
        handle, waiter = next(self._ids), _Waiter()
        self._waiters[handle] = waiter
        self._loop.call_soon_threadsafe(lambda: self._act(self._core.submit(handle, spec, time.monotonic())))
        return Handle(self, handle, waiter)

    def run(self, spec: c.TaskSpec, timeout_s: float | None = None) -> c.Outcome:
        return self.submit(spec).result(timeout_s)

    def grant(self) -> str:
        return self._call(lambda: self._core.issue_grant(time.monotonic()))

    def runners(self) -> list[dict[str, Any]]:
        return self._call(self._core.runners)

    def counters(self) -> dict[str, int]:
        return self._call(lambda: {"malformed": self._core.malformed, "stray": self._core.stray,
                                   "unanswered": self._core.unanswered})

    def wait_for_offers(self, task_type: str = "javascript", offers: int = 1, timeout_s: float = 60.0,
                        alive: Callable[[], bool] = lambda: True) -> dict[str, Any]:
        """Until a registered runner of ``task_type`` holds ``offers`` open offers; that runner."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and alive():
            for runner in self.runners():
                if task_type in runner["types"] and runner["offers"] >= offers:
                    return runner
            time.sleep(0.02)
        raise MockBrokerError(f"no {task_type} runner offered {offers} task(s) within {timeout_s:g} s"
                              if alive() else "the runner exited before it offered a task")

    def close(self) -> None:
        """Drain and close every runner (as n8n does when it stops), fail what is left."""
        if self._closed:
            return
        self._closed = True

        def stop() -> None:
            self._act(self._core.stop(time.monotonic()))
            self._stopping, self._stop_by = True, time.monotonic() + STOP_FLUSH_S

        self._loop.call_soon_threadsafe(stop)
        self._thread.join(STOP_FLUSH_S + 5.0)
        for conn in list(self._conns.values()):
            self._drop(conn)
        self._loop.unwatch(self._listener.fileno())
        self._listener.close()
        self._loop.close()

    def __enter__(self) -> MockBroker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` in the loop's thread and return its value."""
        if self._closed or not self._thread.is_alive():
            raise MockBrokerError("the mock broker is closed")
        box: list[T] = []
        done = threading.Event()

        def call() -> None:
            try:
                box.append(fn())
            finally:
                done.set()

        self._loop.call_soon_threadsafe(call)
        if not done.wait(ANSWER_GRACE_S) or not box:
            raise MockBrokerError("the mock broker's loop did not answer")
        return box[0]

    # -- the loop (its thread only) ----------------------------------------------------------

    def _done(self) -> bool:
        if not self._stopping:
            return False
        return not any(conn.out for conn in self._conns.values()) or time.monotonic() >= self._stop_by

    def wake_at(self) -> float | None:
        due = self._core.next_deadline()
        if any(conn.out for conn in self._conns.values()):
            retry = time.monotonic() + FLUSH_RETRY_S
            due = retry if due is None else min(due, retry)
        return due

    def on_time(self, now: float) -> None:
        for conn in [conn for conn in self._conns.values() if conn.out]:
            self._flush(conn)
        if (due := self._core.next_deadline()) is not None and due <= now:
            self._act(self._core.tick(now))

    def _act(self, actions: list[c.Action]) -> None:
        for action in actions:
            match action:
                case c.Answer(outcome):
                    waiter = self._waiters.pop(outcome.handle, None)
                    if waiter is not None:
                        waiter.outcome = outcome
                        waiter.event.set()
                case c.Send(fd, text):
                    self._ws_send(fd, TextMessage(data=text))
                case c.Ping(fd):
                    self._ws_send(fd, Ping(payload=b"n8n"))
                case c.Close(fd, code, reason):
                    conn = self._conns.get(fd)
                    if conn is not None:
                        self._ws_send(fd, CloseConnection(code=code, reason=reason))
                        conn.close_after_flush = True
                        self._flush(conn)

    def _ws_send(self, fd: int, event: Any) -> None:
        conn = self._conns.get(fd)
        if conn is None or conn.ws is None or conn.ws.state is not ConnectionState.OPEN:
            return
        try:
            conn.out += conn.ws.send(event)
        except LocalProtocolError:
            return
        self._flush(conn)

    def _on_accept(self, events: int) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Conn(sock, sock.fileno())
            self._conns[conn.fd] = conn
            self._loop.watch(conn.fd, functools.partial(self._on_readable, conn))

    def _on_readable(self, conn: _Conn, events: int) -> None:
        try:
            data = conn.sock.recv(1 << 20)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if conn.ws is None:
            self._http_in(conn, data)
        else:
            self._ws_in(conn, data)

    # -- HTTP ---------------------------------------------------------------------------------

    def _http_in(self, conn: _Conn, data: bytes) -> None:
        try:
            conn.http.receive_data(data)
            while conn.ws is None and self._conns.get(conn.fd) is conn:
                event = conn.http.next_event()
                if event is h11.NEED_DATA or event is h11.PAUSED:
                    if not data:
                        self._drop(conn)
                    return
                if isinstance(event, h11.Request):
                    conn.request, conn.body = event, bytearray()
                elif isinstance(event, h11.Data):
                    conn.body += event.data
                    if len(conn.body) > MAX_BODY_BYTES:
                        self._respond(conn, 413, {"code": 413, "message": "Payload Too Large"})
                        return
                elif isinstance(event, h11.EndOfMessage):
                    self._request(conn)
                elif isinstance(event, h11.ConnectionClosed):
                    self._drop(conn)
                    return
        except h11.RemoteProtocolError:
            self._respond(conn, 400, {"code": 400, "message": "Bad Request"})
        except h11.LocalProtocolError:
            self._drop(conn)

    def _request(self, conn: _Conn) -> None:
        req = conn.request
        assert req is not None
        url = urlsplit(req.target.decode("latin-1"))
        method = req.method.decode("latin-1")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in req.headers}
        now = time.monotonic()
        if url.path == p.AUTH_PATH and method == "POST":
            self._respond(conn, *self._core.auth(bytes(conn.body), now))
        elif url.path == p.WS_PATH and method == "GET":
            self._upgrade(conn, url.query, headers, now)
        elif url.path == "/healthz" and method == "GET":
            self._respond(conn, 200, {"status": "ok"})
        else:
            self._respond(conn, 404, {"code": 404, "message": "Not Found"})

    def _upgrade(self, conn: _Conn, query: str, headers: dict[str, str], now: float) -> None:
        key = headers.get("sec-websocket-key")
        if headers.get("upgrade", "").lower() != "websocket" or not key \
                or headers.get("sec-websocket-version") != "13":
            self._respond(conn, 400, None)
            return
        runner_id = (parse_qs(query).get("id") or [""])[0]
        status = self._core.admit(runner_id, headers.get("authorization"), now)
        if status != 101:
            self._respond(conn, status, None)
            return
        conn.out += conn.http.send(h11.InformationalResponse(status_code=101, headers=[
            (b"upgrade", b"websocket"), (b"connection", b"Upgrade"),
            (b"sec-websocket-accept", generate_accept_token(key.encode()))]))
        trailing, _ = conn.http.trailing_data
        conn.ws = Connection(ConnectionType.SERVER)
        self._flush(conn)
        self._act(self._core.connected(conn.fd, runner_id, now))
        if trailing:
            self._ws_in(conn, bytes(trailing))

    def _respond(self, conn: _Conn, status: int, body: dict[str, Any] | None) -> None:
        payload = b"" if body is None else json.dumps(body).encode()
        headers = [(b"content-length", str(len(payload)).encode()), (b"connection", b"close")]
        if body is not None:
            headers.append((b"content-type", b"application/json; charset=utf-8"))
        try:
            conn.out += conn.http.send(h11.Response(status_code=status, headers=headers))
            conn.out += conn.http.send(h11.Data(data=payload))
            conn.out += conn.http.send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            pass
        conn.close_after_flush = True
        self._flush(conn)

    # -- WebSocket ----------------------------------------------------------------------------

    def _ws_in(self, conn: _Conn, data: bytes) -> None:
        assert conn.ws is not None
        try:
            conn.ws.receive_data(data or None)
            events = list(conn.ws.events())
        except RemoteProtocolError:
            self._drop(conn)
            return
        now = time.monotonic()
        for event in events:
            if isinstance(event, (TextMessage, BytesMessage)):
                # n8n's broker reads a binary frame as UTF-8 text too
                text = event.data if isinstance(event.data, str) else \
                    bytes(event.data).decode("utf-8", "replace")
                conn.size += len(text)
                if conn.size > MAX_MESSAGE_BYTES:
                    self._act([c.Close(conn.fd, 1009, "message too big"), *self._core.closed(conn.fd, now)])
                    return
                conn.parts.append(text)
                if event.message_finished:
                    message, conn.parts, conn.size = "".join(conn.parts), [], 0
                    self._act(self._core.frame(conn.fd, message, now))
            elif isinstance(event, Ping):
                self._ws_send(conn.fd, event.response())
            elif isinstance(event, Pong):
                self._core.pong(conn.fd)
            elif isinstance(event, CloseConnection):
                if conn.ws.state is ConnectionState.REMOTE_CLOSING:
                    conn.out += conn.ws.send(event.response())
                conn.close_after_flush = True
                self._act(self._core.closed(conn.fd, now))
                self._flush(conn)
                return
        if not data:
            self._drop(conn)

    # -- sockets --------------------------------------------------------------------------------

    def _flush(self, conn: _Conn) -> None:
        while conn.out:
            try:
                n = conn.sock.send(conn.out)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._drop(conn)
                return
            del conn.out[:n]
        if conn.close_after_flush:
            self._drop(conn)

    def _drop(self, conn: _Conn) -> None:
        if self._conns.pop(conn.fd, None) is None:
            return
        self._loop.unwatch(conn.fd)
        if conn.ws is not None:
            self._act(self._core.closed(conn.fd, time.monotonic()))
        try:
            conn.sock.close()
        except OSError:
            pass
