"""The HTTP/JSON API end to end: a real `sandbox serve`, real HTTP clients (httpx, and Node's
own fetch), real sockets. Bad input is tried against a daemon without runners whose queue
takes nothing (so every valid task is 429), the tasks themselves against one with runners."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ALICE_KEY = "alice-key-0123456789"
BOB_KEY = "bob-key-0123456789ab"
START_S = 120.0
FETCH = Path(__file__).with_name("http_fetch.mjs")


class Daemon:
    """`sandbox serve` with the API on a free loopback port, read from its first line."""

    def __init__(self, directory: str, *flags: str, bind: str = "") -> None:
        self.endpoint = bind or f"ipc://{directory}/s.sock"
        self.argv = [sys.executable, "-m", "sandbox", "serve", "--bind", self.endpoint,
                     "--api-bind", "127.0.0.1:0", *flags]
        if "--http" not in flags:
            self.argv += ["--http", ""]
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        try:
            self.url = self._wait_for_api()
        except BaseException:
            self.proc.kill()
            self.proc.wait()
            raise

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)
            self.lines.put(line)
        self.lines.put("")  # EOF

    def _wait_for_api(self) -> str:
        end = time.monotonic() + START_S
        while True:
            line = self.lines.get(timeout=max(0.0, end - time.monotonic()))
            if not line:
                raise AssertionError(f"sandbox serve ended: {''.join(self.log)}")
            if ", api http://" in line:
                return line.rpartition(", api ")[2].strip()

    def stop(self) -> str:
        """SIGTERM, wait, and the daemon's whole stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        end = time.monotonic() + 10
        while self.lines.get(timeout=max(0.0, end - time.monotonic())):
            pass  # until the reader saw EOF
        assert self.proc.stderr is not None
        self.proc.stderr.close()
        return "".join(self.log)


def keys_file(directory: str) -> str:
    path = os.path.join(directory, "api.keys")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"alice {ALICE_KEY}\nbob {BOB_KEY}\n")
    return path


@pytest.fixture(scope="module")
def refusing(tmp_path_factory) -> Iterator[Daemon]:
    """No runners, a queue of 0, keys, a small body cap and a short body timeout."""
    directory = str(tmp_path_factory.mktemp("api"))
    daemon = Daemon(directory, "--runners", "0", "--max-queued", "0", "--api-keys-file",
                    keys_file(directory), "--api-body-bytes", "4096",
                    "--api-read-timeout-s", "0.5")
    yield daemon
    log = daemon.stop()
    assert ALICE_KEY not in log and BOB_KEY not in log  # keys are never logged
    assert daemon.proc.returncode == 0


@pytest.fixture(scope="module")
def serving(tmp_path_factory) -> Iterator[Daemon]:
    directory = str(tmp_path_factory.mktemp("api"))
    daemon = Daemon(directory, "--runners", "1", "--slots", "2", "--runtimes",
                    "python,javascript", "--api-keys-file", keys_file(directory))
    try:
        end = time.monotonic() + START_S
        while len(httpx.get(f"{daemon.url}/v1/runtimes", headers=auth()).json()["runtimes"]) < 2:
            assert time.monotonic() < end, "the runner did not register"
            time.sleep(0.1)  # polling the condition itself, within the deadline
    except BaseException:
        daemon.stop()  # a fixture that fails before its yield is never torn down
        raise
    yield daemon
    daemon.stop()
    assert daemon.proc.returncode == 0  # the API stops with the drain, cleanly


def auth(key: str = ALICE_KEY) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def post(daemon: Daemon, body: bytes | dict, key: str | None = ALICE_KEY,
         content_type: str = "application/json") -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"content-type": content_type, **(auth(key) if key else {})}
    return httpx.post(f"{daemon.url}/v1/tasks", content=content, headers=headers, timeout=60)


TASK = {"runtime": "python", "code": "return 1"}


# -- bad input: a clear 4xx, and nothing breaks -------------------------------------------------


def test_malformed_json_is_400(refusing):
    reply = post(refusing, b'{"runtime": "python",')
    assert (reply.status_code, reply.headers["content-type"], reply.json()["detail"]) == (
        400, "application/problem+json",
        "the body is not valid JSON: Expecting property name enclosed in double quotes: "
        "line 1 column 22 (char 21)")


def test_unknown_fields_are_422_naming_them(refusing):
    reply = post(refusing, {**TASK, "timeout": 1, "mem": 2})
    assert (reply.status_code, reply.json()["fields"]) == (422, ["mem", "timeout"])


def test_a_request_the_service_refuses_is_422_with_its_message(refusing):
    reply = post(refusing, {**TASK, "memory_mb": 1})
    assert (reply.status_code, reply.json()["detail"]) == (
        422, "bad limits: memory_mb must be between 16 MB and 65536 MB, not 1 MB")


def test_an_oversized_body_is_413_and_the_connection_closed(refusing):
    reply = post(refusing, {**TASK, "code": "x" * 5000})
    assert (reply.status_code, reply.headers["connection"]) == (413, "close")


def test_a_wrong_content_type_is_415(refusing):
    reply = post(refusing, b"return 1", content_type="text/plain")
    assert reply.status_code == 415


def test_the_queue_full_is_429_with_retry_after(refusing):
    reply = post(refusing, TASK)
    assert (reply.status_code, reply.headers["retry-after"], reply.json()) == (
        429, "1", {"title": "Too Many Requests", "status": 429,
                   "detail": "queue full (0 waiting)", "reason": "queue_full"})


@pytest.mark.parametrize("key", [None, "not-a-key-0123456789"], ids=["no-key", "wrong-key"])
def test_no_key_or_a_wrong_key_is_401(refusing, key):
    reply = post(refusing, TASK, key=key)
    assert (reply.status_code, reply.headers["www-authenticate"]) == (401, 'Bearer realm="sandbox"')


def test_an_unknown_route_is_404(refusing):
    reply = httpx.get(f"{refusing.url}/v2/tasks", headers=auth())
    assert (reply.status_code, reply.json()["detail"]) == (404, "no route /v2/tasks")


def test_a_client_that_never_finishes_its_body_is_cut_off_and_nothing_breaks(refusing):
    host, _, port = refusing.url.removeprefix("http://").rpartition(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"POST /v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Authorization: Bearer " + ALICE_KEY.encode()
                     + b"\r\nContent-Length: 1000\r\n\r\n{\"runtime\"")
        answer = b""
        while chunk := sock.recv(65536):  # until the server closes the connection
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 408 Request Timeout"
    assert json.loads(body)["detail"] == "the body did not arrive within 0.5 s"
    assert post(refusing, {**TASK, "memory_mb": 1}).status_code == 422  # the API still serves


@pytest.mark.parametrize("sent", [b"", b"POST /v1/tasks HTTP/1.1\r\nHost: x\r\n"],
                         ids=["nothing", "half-a-head"])
def test_a_client_that_never_finishes_its_head_is_cut_off(refusing, sent):
    """uvicorn alone would hold such a connection for ever (slowloris)."""
    host, _, port = refusing.url.removeprefix("http://").rpartition(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(sent)
        assert sock.recv(65536) == b""  # closed without an answer, before the 30 s timeout
    assert post(refusing, {**TASK, "memory_mb": 1}).status_code == 422  # the API still serves


def test_the_openapi_document_is_served(refusing):
    from openapi_spec_validator import validate

    reply = httpx.get(f"{refusing.url}/v1/openapi.json")
    validate(reply.json())
    assert sorted(reply.json()["paths"]) == [
        "/v1/openapi.json", "/v1/runtimes", "/v1/sessions", "/v1/sessions/{id}",
        "/v1/sessions/{id}/files", "/v1/sessions/{id}/run", "/v1/tasks"]


def test_without_runners_no_runtime_is_served(refusing):
    assert httpx.get(f"{refusing.url}/v1/runtimes", headers=auth()).json() == {"runtimes": []}


# -- the operator's mistakes are refused at start ------------------------------------------------


def test_a_keys_file_others_can_read_stops_the_daemon(ipc_dir):
    path = keys_file(ipc_dir)
    os.chmod(path, 0o644)
    done = subprocess.run([sys.executable, "-m", "sandbox", "serve", "--bind",
                           f"ipc://{ipc_dir}/s.sock", "--http", "", "--runners", "0",
                           "--api-bind", "127.0.0.1:0", "--api-keys-file", path],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    # 1, as for every setting found wrong while starting (2 is a usage error, found parsing)
    assert (done.returncode, done.stderr.strip().splitlines()[-1]) == (
        1, f"sandbox: api_keys_file {path}: mode 0644 lets others read the keys (chmod 600 it)")


def test_without_keys_a_public_address_is_refused(ipc_dir):
    done = subprocess.run([sys.executable, "-m", "sandbox", "serve", "--bind",
                           f"ipc://{ipc_dir}/s.sock", "--http", "", "--runners", "0",
                           "--api-bind", "0.0.0.0:0"],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert (done.returncode, done.stderr.strip()) == (
        2, "sandbox: api_bind '0.0.0.0:0' is not a loopback address: without api_keys_file the "
           "HTTP API serves this host only")


# -- tasks, through real runners ----------------------------------------------------------------

TASKS = [
    {"runtime": "python", "code": "print('hi')\nreturn {'twice': data['x'] * 2, 'raw': b'\\x00'}",
     "data": {"x": 21}},
    {"runtime": "python", "code": "return [data, float('nan'), 2**70]",
     "data": {"$bytes": "aGk="}},
    {"runtime": "js", "code": "console.log('js'); return {n: data.n + 1, big: 2n ** 64n}",
     "data": {"n": 1}},
    {"runtime": "python", "code": "raise ValueError('no')"},
    {"runtime": "python", "code": "while True: pass", "timeout_s": 0.3},
]
EXPECTED = [
    (200, "ok", {"twice": 42, "raw": {"$bytes": "AA=="}}, "hi\n"),
    (200, "ok", [{"$bytes": "aGk="}, {"$float": "NaN"}, {"$int": str(2**70)}], ""),
    (200, "ok", {"n": 2, "big": {"$int": str(2**64)}}, "js\n"),
    (200, "error", None, ""),
    (200, "timeout", None, ""),
]


def _seen(status: int, body: dict) -> tuple:
    return (status, body["status"], body["result"], body["stdout"])


def test_tasks_run_through_httpx(serving):
    replies = [post(serving, task) for task in TASKS]
    assert [_seen(r.status_code, r.json()) for r in replies] == EXPECTED
    error = replies[3].json()["error"]
    assert (error["type"], error["message"]) == ("ValueError", "no")


def test_http_answers_what_the_python_client_gets_from_the_same_daemon(serving):
    """Differential: each task through HTTP and through ``sandbox.Client`` (ZeroMQ), the
    HTTP body equal to the client's ``Result.to_dict()``, but for the times."""
    from sandbox.client import Client
    from sandbox.jsonview import from_jsonable

    def timeless(body: dict) -> dict:  # and what each run cost, which differs run to run
        return {k: v for k, v in body.items()
                if k not in ("duration_ms", "exec_ms", "cpu_ms", "peak_memory_kb")}

    with Client(serving.endpoint, queue_timeout_s=60) as client:
        for task in TASKS:
            options = {k: v for k, v in task.items() if k not in ("runtime", "code", "data")}
            direct = client.run(task["runtime"], task["code"], from_jsonable(task.get("data")),
                                **options)
            assert timeless(post(serving, task).json()) == timeless(direct.to_dict()), task


def test_node_fetch_gets_what_httpx_gets(serving):
    """A Node.js host with its own fetch: the same tasks, the same answers."""
    done = subprocess.run(["node", str(FETCH), serving.url, BOB_KEY, json.dumps(TASKS)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    *tasks, runtimes = json.loads(done.stdout)
    assert [_seen(t["status"], t["body"]) for t in tasks] == EXPECTED
    assert (runtimes["status"], [r["name"] for r in runtimes["body"]["runtimes"]]) == (
        200, ["javascript", "python"])


def test_a_streaming_task_sends_its_output_as_events_before_its_result(serving):
    """Server-Sent Events through a real daemon: each chunk as an event (the response read
    as it arrives), then the one result event."""
    body = {"runtime": "js", "stream": True, "separate_stderr": True, "timeout_s": 10,
            "code": "console.log('first'); console.error('oops'); return 7"}
    events: list[tuple[str, dict]] = []
    with httpx.stream("POST", f"{serving.url}/v1/tasks", json=body, headers=auth(),
                      timeout=30) as reply:
        assert reply.headers["content-type"].startswith("text/event-stream")
        name = ""
        for line in reply.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((name, json.loads(line.removeprefix("data: "))))
    assert [(n, d.get("text")) for n, d in events[:-1]] == [("stdout", "first\n"),
                                                            ("stderr", "oops\n")]
    name, result = events[-1]
    assert (name, result["status"], result["result"], result["stdout"], result["stderr"]) == (
        "result", "ok", 7, "first\n", "oops\n")


def test_the_runtimes_say_what_the_runners_serve_with_versions(serving):
    import platform

    from sandbox import registry

    body = httpx.get(f"{serving.url}/v1/runtimes", headers=auth()).json()
    assert body == {"runtimes": [
        {"name": "javascript", "aliases": ["js"], "versions": [registry.RUNTIMES["javascript"].version],
         "runners": 1, "slots": 2},
        {"name": "python", "aliases": ["py"], "versions": [platform.python_version()],
         "runners": 1, "slots": 2}]}


def test_a_version_no_runner_has_is_503_at_once(serving):
    import platform

    from sandbox import registry

    reply = post(serving, {**TASK, "version": "2.7", "wait_for_runner": False})
    assert (reply.status_code, reply.json()["reason"], reply.json()["detail"]) == (
        503, "no_runner", "no runner for runtime 'python' version 2.7*: this broker's runners "
        f"serve javascript {registry.RUNTIMES['javascript'].version}, "
        f"python {platform.python_version()}")


def test_the_api_socket_is_tcp_without_nagle():
    """With the protocol 0 a socket is made with, asyncio did not turn Nagle off on the
    connections it accepted, and a response written as head and body waited for the
    client's delayed ACK: 40 ms a request. The listener says it is TCP, and no Nagle."""
    from sandbox.config import ServiceConfig
    from sandbox.http.server import ApiServer

    api = ApiServer(ServiceConfig(api_bind="127.0.0.1:0"), "inproc://unused", list, "0")
    try:
        assert (api.sock.proto, api.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)) == (
            socket.IPPROTO_TCP, 1)
    finally:
        api.sock.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_api_serves_when_clients_connect_over_tcp_with_curve(ipc_dir):
    """The API reaches the broker in-process: a client socket that speaks CURVE on tcp://
    does not stand between them."""
    keys = os.path.join(ipc_dir, "keys")
    assert subprocess.run([sys.executable, "-m", "sandbox", "keys", keys], capture_output=True,
                          timeout=60).returncode == 0
    daemon = Daemon(ipc_dir, "--curve-dir", keys, "--runners", "1", "--slots", "1",
                    "--runtimes", "python", bind="tcp://127.0.0.1:*")
    try:
        reply = post(daemon, {**TASK, "code": "return 5"}, key=None)
        assert (reply.status_code, reply.json()["status"], reply.json()["result"]) == (200, "ok", 5)
    finally:
        daemon.stop()


def test_a_task_in_flight_when_the_daemon_stops_gets_its_result(ipc_dir):
    """SIGTERM drains: the API takes no new connection, and a request whose task runs is
    answered with its result within the grace, not cut off."""
    port = _free_port()
    daemon = Daemon(ipc_dir, "--http", f"127.0.0.1:{port}", "--runners", "1", "--slots", "1",
                    "--runtimes", "python", "--grace-s", "30")
    replies: list[httpx.Response] = []
    try:
        sent = threading.Thread(target=lambda: replies.append(post(
            daemon, {**TASK, "code": "import time\ntime.sleep(1)\nreturn 'slept'"}, key=None)))
        sent.start()
        end = time.monotonic() + START_S
        while httpx.get(f"http://127.0.0.1:{port}/healthz").json()["in_flight"] < 1:
            assert time.monotonic() < end, "the task did not start"
            time.sleep(0.02)  # polling the condition itself, within the deadline
        daemon.proc.send_signal(signal.SIGTERM)
        sent.join(timeout=60)
    finally:
        daemon.stop()
    assert ([(r.status_code, r.json()["result"]) for r in replies], daemon.proc.returncode) == (
        [(200, "slept")], 0)


def test_a_client_that_leaves_while_its_task_runs_has_it_cancelled(ipc_dir):
    """A caller that gave up holds no slot: its task is cancelled at the broker (counted as
    ended by the broker, reason cancelled) long before the snippet would end by itself."""
    port = _free_port()
    daemon = Daemon(ipc_dir, "--http", f"127.0.0.1:{port}", "--runners", "1", "--slots", "1",
                    "--runtimes", "python")
    health, metrics = f"http://127.0.0.1:{port}/healthz", f"http://127.0.0.1:{port}/metrics"
    try:
        body = json.dumps({**TASK, "code": "import time\ntime.sleep(60)", "timeout_s": 120})
        host, _, api_port = daemon.url.removeprefix("http://").rpartition(":")
        with socket.create_connection((host, int(api_port)), timeout=30) as sock:
            sock.sendall(f"POST /v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                         f"\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode())
            end = time.monotonic() + START_S
            while httpx.get(health).json()["in_flight"] < 1:
                assert time.monotonic() < end, "the task did not start"
                time.sleep(0.02)  # polling the condition itself, within the deadline
        end = time.monotonic() + 30  # well inside the snippet's 60 s
        while not (ended := [line for line in httpx.get(metrics).text.splitlines()
                             if line.startswith("sandbox_broker_ended_total{")]):
            assert time.monotonic() < end, "the task was not cancelled"
            time.sleep(0.02)
    finally:
        daemon.stop()
    assert ended == ['sandbox_broker_ended_total{reason="cancelled",status="cancelled"} 1.0']


# -- sessions ------------------------------------------------------------------------------------


def test_a_session_through_httpx_keeps_its_state_and_is_its_principals_only(serving):
    with httpx.Client(base_url=serving.url, timeout=30) as http:
        opened = http.post("/v1/sessions", json={"runtime": "python", "session_id": "nb"},
                           headers=auth())
        assert (opened.status_code, opened.json()) == (201, {"id": "nb", "runtime": "python"})
        assert http.post("/v1/sessions/nb/run", json={"code": "x = data", "data": 41},
                         headers=auth()).json()["status"] == "ok"
        r = http.post("/v1/sessions/nb/run", json={"code": "return x + 1"}, headers=auth())
        assert (r.status_code, r.json()["result"]) == (200, 42)
        other = http.post("/v1/sessions/nb/run", json={"code": "return x"},
                          headers=auth(BOB_KEY))
        assert other.status_code == 404  # bob names the same id: not his session
        timed = http.post("/v1/sessions/nb/run", json={"code": "import time\ntime.sleep(30)",
                                                        "timeout_s": 0.3}, headers=auth())
        assert timed.json()["status"] == "timeout"
        assert http.post("/v1/sessions/nb/run", json={"code": "return x"},
                         headers=auth()).json()["result"] == 41
        assert http.delete("/v1/sessions/nb", headers=auth()).json()["status"] == "ok"
        gone = http.post("/v1/sessions/nb/run", json={"code": "return x"}, headers=auth())
        assert (gone.status_code, gone.json()["status"]) == (200, "session_lost")


@pytest.fixture(scope="module")
def serving_files(tmp_path_factory) -> Iterator[Daemon]:
    """One runner of python whose pools give each task and session a directory (files_mb)."""
    directory = str(tmp_path_factory.mktemp("api"))
    daemon = Daemon(directory, "--runners", "1", "--slots", "2", "--runtimes", "python",
                    "--files-mb", "1", "--api-keys-file", keys_file(directory))
    try:
        end = time.monotonic() + START_S
        while not httpx.get(f"{daemon.url}/v1/runtimes", headers=auth()).json()["runtimes"]:
            assert time.monotonic() < end, "the runner did not register"
            time.sleep(0.1)  # polling the condition itself, within the deadline
    except BaseException:
        daemon.stop()
        raise
    yield daemon
    daemon.stop()
    assert daemon.proc.returncode == 0


def test_a_sessions_files_through_httpx_upload_run_download(serving_files):
    with httpx.Client(base_url=serving_files.url, timeout=30, headers=auth()) as http:
        assert http.post("/v1/sessions", json={"runtime": "python",
                                               "session_id": "f"}).status_code == 201
        up = http.put("/v1/sessions/f/files",
                      json={"files": {"in/a.txt": "hello", "raw": {"$bytes": "AAE="}}})
        ran = http.post("/v1/sessions/f/run", json={
            "code": "open('out', 'w').write(open('in/a.txt').read().upper() + open('c').read())",
            "files": {"c": "!"}, "return_files": True})
        down = http.get("/v1/sessions/f/files")
        bob = http.get("/v1/sessions/f/files", headers=auth(BOB_KEY))
        bad = http.put("/v1/sessions/f/files", json={"files": {"../x": "1"}})
        http.delete("/v1/sessions/f")
    everything = {"c": {"$bytes": "IQ=="}, "in/a.txt": {"$bytes": "aGVsbG8="},  # always bytes
                  "out": {"$bytes": "SEVMTE8h"}, "raw": {"$bytes": "AAE="}}
    assert (up.status_code, up.json()["status"]) == (200, "ok")
    assert (ran.json()["status"], ran.json()["files"]) == ("ok", everything)
    assert (down.status_code, down.json()["files"], down.json()["files_skipped"]) == (
        200, everything, {})
    assert bob.status_code == 404  # bob names the same id: not his session, nor its files
    assert (bad.status_code, bad.json()["detail"]) == (422, "file name '../x' has a '..' component")
