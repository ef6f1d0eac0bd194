"""The runner's shell over real loopback sockets, against a fake task broker and a fake
backend (the real n8n is in tests/integration/test_n8n_e2e.py): pings are answered while a
task runs, a lost connection is retried with a fresh grant, drain kills, SIGTERM lets the
running task finish, /healthz answers."""

from __future__ import annotations

import json
import queue
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Ping, Pong, Request, TextMessage

from runtimes import codec
from runtimes.outcome import Status
from sandbox.host.loop import Loop
from sandbox.n8n.config import N8nRunnerConfig
from sandbox.n8n.shell import Shell
from sandbox.n8n.task import Job
from sandbox.result import Result
from tests.n8n import captures

TOKEN = "shared-secret"


class FakeBackend:
    """Jobs stay running until the test finishes them (from its own thread)."""

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.cancelled: list[str] = []
        self.closed = False
        self._loop: Loop | None = None
        self._on_outcome: Any = None
        self._on_call: Any = None
        self.answers: list[tuple[str, int, bool, Any]] = []

    def attach(self, loop: Loop, on_outcome: Any, on_call: Any = None) -> None:
        self._loop, self._on_outcome, self._on_call = loop, on_outcome, on_call

    def answer(self, key: str, call_id: int, ok: bool, data: Any) -> None:
        self.answers.append((key, call_id, ok, data))

    def submit(self, key: str, job: Job) -> None:
        self.jobs[key] = job

    def cancel(self, key: str) -> None:
        self.cancelled.append(key)
        self.finish(key, Result(Status.CRASHED, "cancelled"))

    def idle_by_runtime(self) -> dict[str, int]:
        return {"javascript": 1, "python": 2}

    def finish(self, key: str, result: Result) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(lambda: self._on_outcome(key, result))

    def close(self) -> None:
        self.closed = True


class Session:
    """One WebSocket the runner opened to the fake broker."""

    def __init__(self, sock: socket.socket, ws: WSConnection, grant: str) -> None:
        self.sock, self.ws, self.grant = sock, ws, grant
        self.events: list[Any] = []

    def send(self, msg: dict) -> None:
        self.sock.sendall(self.ws.send(TextMessage(data=json.dumps(msg))))

    def ping(self, payload: bytes = b"hb") -> None:
        self.sock.sendall(self.ws.send(Ping(payload=payload)))

    def next(self, kind: type, timeout_s: float = 5.0) -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            for i, event in enumerate(self.events):
                if isinstance(event, kind):
                    return self.events.pop(i)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {kind.__name__} within {timeout_s} s: {self.events}")
            self.sock.settimeout(remaining)
            data = self.sock.recv(65536)
            self.ws.receive_data(data or None)
            self.events += list(self.ws.events())

    def message(self, kind: str, timeout_s: float = 5.0) -> dict:
        deadline = time.monotonic() + timeout_s
        while True:
            text = self.next(TextMessage, max(0.01, deadline - time.monotonic()))
            msg = json.loads(text.data)
            if msg["type"] == kind:
                return msg

    def close(self) -> None:
        self.sock.close()


class FakeBroker:
    """``POST /runners/auth`` and ``GET /runners/_ws`` as n8n's broker serves them."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.grants: list[str] = []
        self.used: set[str] = set()
        self.sessions: queue.Queue[Session] = queue.Queue()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(65536)
            if head.startswith(b"POST /runners/auth"):
                length = int(head.split(b"content-length:", 1)[1].split(b"\r\n")[0]
                             if b"content-length:" in head else
                             head.split(b"Content-Length:", 1)[1].split(b"\r\n")[0])
                body = head.split(b"\r\n\r\n", 1)[1]
                while len(body) < length:
                    body += conn.recv(65536)
                ok = json.loads(body)["token"] == TOKEN
                grant = f"grant-{len(self.grants)}"
                if ok:
                    self.grants.append(grant)
                out = json.dumps({"data": {"token": grant}} if ok else {"code": 403}).encode()
                conn.sendall((b"HTTP/1.1 200 OK" if ok else b"HTTP/1.1 403 Forbidden")
                             + b"\r\nContent-Length: " + str(len(out)).encode() + b"\r\n\r\n" + out)
                conn.close()
                continue
            ws = WSConnection(ConnectionType.SERVER)
            ws.receive_data(head)
            (request,) = [e for e in ws.events() if isinstance(e, Request)]
            headers = dict(request.extra_headers)
            grant = headers.get(b"authorization", b"").decode().removeprefix("Bearer ")
            if grant not in self.grants or grant in self.used:
                conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                conn.close()
                continue
            self.used.add(grant)
            conn.sendall(ws.send(AcceptConnection()))
            self.sessions.put(Session(conn, ws, grant))

    def session(self, timeout_s: float = 10.0) -> Session:
        return self.sessions.get(timeout=timeout_s)

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def broker():
    b = FakeBroker()
    yield b
    b.close()


def start_shell(broker: FakeBroker, **extra) -> tuple[Shell, FakeBackend, threading.Thread]:
    config = N8nRunnerConfig(task_broker_uri=f"http://127.0.0.1:{broker.port}", auth_token=TOKEN,
                             max_concurrency=1, **extra)
    backend = FakeBackend()
    shell = Shell(config, backend)
    thread = threading.Thread(target=shell.serve, daemon=True)
    thread.start()
    return shell, backend, thread


def stop_shell(shell: Shell, backend: FakeBackend, thread: threading.Thread) -> None:
    shell.request_stop()
    thread.join(10)
    assert not thread.is_alive() and backend.closed


def register(session: Session) -> list[dict]:
    session.send({"type": "broker:inforequest"})
    assert session.message("runner:info")["types"] == ["javascript", "python"]
    session.send({"type": "broker:runnerregistered"})
    return [session.message("runner:taskoffer"), session.message("runner:taskoffer")]


def start_python_task(session: Session, backend: FakeBackend, offers: list[dict]) -> str:
    accept, _, settings, *_ = captures.messages("05")
    offer = next(o for o in offers if o["taskType"] == "python")
    session.send(dict(accept, offerId=offer["offerId"]))
    assert session.message("runner:taskaccepted")["taskId"] == accept["taskId"]
    session.send(settings)
    deadline = time.monotonic() + 5
    while accept["taskId"] not in backend.jobs:
        assert time.monotonic() < deadline, "the task never reached the backend"
        time.sleep(0.01)
    return accept["taskId"]


def test_pings_are_answered_while_a_task_runs(broker):
    shell, backend, thread = start_shell(broker)
    try:
        session = broker.session()
        task_id = start_python_task(session, backend, register(session))
        session.ping(b"are you there")
        pong = session.next(Pong, timeout_s=2)
        assert pong.payload == b"are you there"
        value = codec.decode(codec.encode({"result": [{"json": {"a": 1}}], "prints": [], "dropped": 0}))
        backend.finish(task_id, Result(Status.OK, "ok", value=value))
        done = session.message("runner:taskdone")
        assert done == {"type": "runner:taskdone", "taskId": task_id,
                        "data": {"result": [{"json": {"a": 1}}]}}
    finally:
        stop_shell(shell, backend, thread)


def test_a_lost_connection_kills_the_task_and_reconnects_with_a_fresh_grant(broker):
    shell, backend, thread = start_shell(broker)
    try:
        first = broker.session()
        task_id = start_python_task(first, backend, register(first))
        first.close()
        second = broker.session(timeout_s=10)  # after the first backoff step (1 s)
        assert second.grant != first.grant and broker.grants == ["grant-0", "grant-1"]
        assert backend.cancelled == [task_id]
        register(second)
    finally:
        stop_shell(shell, backend, thread)


def test_drain_kills_the_running_task_and_answers_it(broker):
    shell, backend, thread = start_shell(broker)
    try:
        session = broker.session()
        task_id = start_python_task(session, backend, register(session))
        session.send({"type": "broker:drain"})
        error = session.message("runner:taskerror")
        assert error["taskId"] == task_id
        assert error["error"] == {"message": "Task stopped: n8n is shutting down (broker:drain)"}
        assert backend.cancelled == [task_id]
    finally:
        stop_shell(shell, backend, thread)


def test_stop_closes_the_websocket_going_away(broker):
    shell, backend, thread = start_shell(broker)
    session = broker.session()
    register(session)
    shell.request_stop()
    close = session.next(CloseConnection, timeout_s=5)
    assert close.code == 1001
    thread.join(10)
    assert not thread.is_alive() and backend.closed


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:  # not listening yet
        return 0, ""


def _wait_for(predicate: Any, timeout_s: float = 10.0) -> bool:
    end = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > end:
            return False
        time.sleep(0.02)
    return True


def _health_shell(broker: FakeBroker) -> tuple[Shell, FakeBackend, threading.Thread, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    shell, backend, thread = start_shell(broker, health_check_server_enabled=True,
                                         health_check_server_port=port)
    return shell, backend, thread, f"http://127.0.0.1:{port}"


def test_health_check_server_answers_healthz_with_a_query_string(broker):
    """[25.8] The hand-parsed server compared the request line's path with "/healthz" whole:
    "/healthz?probe=1" was 404."""
    shell, backend, thread, url = _health_shell(broker)
    try:
        assert _wait_for(lambda: _get(f"{url}/healthz?probe=1") == (200, '{"status": "ok"}'))
    finally:
        stop_shell(shell, backend, thread)


def test_readiness_waits_for_registration_and_liveness_does_not(broker):
    """[25.8] One /healthz said 200 whether or not n8n had the runner: /readyz says whether
    it is registered, /livez whether its loop answers."""
    shell, backend, thread, url = _health_shell(broker)
    try:
        session = broker.session()
        assert _wait_for(lambda: _get(f"{url}/livez")[0] == 200)
        # the broker has its end of the WebSocket before the shell's loop has taken its own:
        # until then /readyz says "connecting" (not ready either, but not the state asked)
        assert _wait_for(lambda: _get(f"{url}/readyz")[1] != '{"status": "connecting"}')
        before = _get(f"{url}/readyz")
        register(session)
        assert _wait_for(lambda: _get(f"{url}/readyz")[0] == 200)
        assert (before, _get(f"{url}/readyz")) == (
            (503, '{"status": "not registered", "running": 0}'),
            (200, '{"status": "ok", "running": 0}'))
    finally:
        stop_shell(shell, backend, thread)


def test_the_n8n_runner_serves_metrics(broker):
    """[25.8] The n8n runner had no /metrics: now its pools' idle children per runtime, its
    build and its process."""
    shell, backend, thread, url = _health_shell(broker)
    try:
        register(broker.session())
        assert _wait_for(lambda: 'sandbox_n8n_registered 1.0' in _get(f"{url}/metrics")[1])
        lines = _get(f"{url}/metrics")[1].splitlines()
    finally:
        stop_shell(shell, backend, thread)
    assert [line for line in lines if line.startswith(("sandbox_idle_children{",
                                                       "sandbox_build_info{"))] == [
        'sandbox_build_info{component="n8n-runner",python="%s",version="%s"} 1.0' % (
            __import__("platform").python_version(),
            __import__("importlib.metadata").metadata.version("snippet-sandbox")),
        'sandbox_idle_children{runtime="javascript"} 1.0',
        'sandbox_idle_children{runtime="python"} 2.0']
    assert any(line.startswith("process_resident_memory_bytes ") for line in lines)


def test_a_wrong_auth_token_is_retried_with_backoff_not_fatal(broker):
    config = N8nRunnerConfig(task_broker_uri=f"http://127.0.0.1:{broker.port}", auth_token="wrong")
    backend = FakeBackend()
    shell = Shell(config, backend)
    thread = threading.Thread(target=shell.serve, daemon=True)
    thread.start()
    time.sleep(0.5)
    assert thread.is_alive() and broker.grants == []
    stop_shell(shell, backend, thread)


def test_sigterm_lets_the_running_task_finish_and_answers_it_before_leaving(broker):
    shell, backend, thread = start_shell(broker, graceful_shutdown_timeout_s=0.2,
                                         shutdown_force_kill_margin_s=30.0)
    try:
        session = broker.session()
        offers = register(session)
        task_id = start_python_task(session, backend, offers)
        shell.request_shutdown()  # what the first SIGTERM does
        value = codec.decode(codec.encode({"result": [{"json": {"a": 1}}], "prints": [], "dropped": 0}))
        backend.finish(task_id, Result(Status.OK, "ok", value=value))
        assert session.message("runner:taskdone")["taskId"] == task_id
        close = session.next(CloseConnection, timeout_s=5)
        assert close.code == 1001
        thread.join(10)
        assert not thread.is_alive() and backend.cancelled == []
    finally:
        if thread.is_alive():
            stop_shell(shell, backend, thread)
