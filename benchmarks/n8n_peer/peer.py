"""A real, headless n8n 2.41.1 in external-runner mode, driven through its REST API.

Used by the end-to-end tests (one instance per test session) and by ``benchmarks/``::

    with N8n.start() as n8n:                       # installs into the cache when missing
        wf = n8n.create_workflow(workflow("demo", [code_node("Py", "return _items", "python")]))
        run = n8n.run(wf)                          # waits for the execution to finish
        run.output("Py")                           # the node's items, as n8n stored them

n8n listens on free loopback ports: ``url`` for the REST API and ``broker_uri`` for task
runners (``N8N_RUNNERS_TASK_BROKER_URI``), which authenticate with ``auth_token``.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.n8n_peer import flatted
from benchmarks.n8n_peer.install import N8nInstall, ensure_installed

OWNER_EMAIL = "owner@example.com"
OWNER_PASSWORD = "Sandbox-peer-1"
TRIGGER = "Start"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class N8nError(RuntimeError):
    """n8n did not start, or answered a request with an error."""


@dataclass
class Execution:
    """A finished execution as n8n stored it (its ``data`` decoded from flatted)."""

    id: str
    status: str  # n8n's: success, error, canceled, crashed, ...
    data: dict[str, Any]
    raw: dict[str, Any] = field(repr=False)

    @property
    def run_data(self) -> dict[str, list[dict[str, Any]]]:
        return self.data.get("resultData", {}).get("runData", {})

    def node_run(self, node: str, run: int = 0) -> dict[str, Any]:
        return self.run_data[node][run]

    def output(self, node: str, run: int = 0, output: int = 0) -> list[dict[str, Any]]:
        """The items a node produced (``[{json, pairedItem?, binary?}]``)."""
        main = self.node_run(node, run).get("data", {}).get("main", [])
        return (main[output] if len(main) > output else None) or []

    def json(self, node: str) -> list[dict[str, Any]]:
        return [item["json"] for item in self.output(node)]

    @property
    def error(self) -> dict[str, Any] | None:
        """The execution's error (the failing node's), or None."""
        return self.data.get("resultData", {}).get("error")

    def node_error(self, node: str, run: int = 0) -> dict[str, Any] | None:
        return self.node_run(node, run).get("error")

    @property
    def custom_data(self) -> dict[str, Any]:
        return self.raw.get("customData") or {}


class N8n:
    """One n8n process and a logged-in REST session with it."""

    def __init__(self, install: N8nInstall, home: Path, env: dict[str, str], proc: subprocess.Popen,
                 port: int, broker_port: int, auth_token: str, log_path: Path) -> None:
        self.install = install
        self.home = home
        self.env = env
        self.proc = proc
        self.port = port
        self.broker_port = broker_port
        self.auth_token = auth_token
        self.log_path = log_path
        self._cookies = http.cookiejar.CookieJar()
        self._http = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self._cookies))

    # -- lifecycle -----------------------------------------------------------------------

    @classmethod
    def start(cls, *, task_timeout_s: int = 20, heartbeat_s: int = 10, ready_timeout_s: float = 120.0,
              extra_env: dict[str, str] | None = None) -> N8n:
        """Install n8n if needed, start it on free ports, create the owner and log in."""
        install = ensure_installed()
        home = Path(tempfile.mkdtemp(prefix="n8n-peer-"))
        port, broker_port = free_port(), free_port()
        token = uuid.uuid4().hex
        env = {
            "PATH": install.env_path(), "HOME": str(home), "LANG": "C.UTF-8",
            "N8N_USER_FOLDER": str(home), "N8N_ENCRYPTION_KEY": "snippet-sandbox-peer",
            "N8N_LISTEN_ADDRESS": "127.0.0.1", "N8N_PORT": str(port), "N8N_HOST": "127.0.0.1",
            "N8N_PROTOCOL": "http", "N8N_SECURE_COOKIE": "false",
            "N8N_RUNNERS_MODE": "external", "N8N_RUNNERS_AUTH_TOKEN": token,
            "N8N_RUNNERS_BROKER_LISTEN_ADDRESS": "127.0.0.1",
            "N8N_RUNNERS_BROKER_PORT": str(broker_port),
            "N8N_RUNNERS_TASK_TIMEOUT": str(task_timeout_s),
            "N8N_RUNNERS_HEARTBEAT_INTERVAL": str(heartbeat_s),
            "N8N_DIAGNOSTICS_ENABLED": "false", "N8N_VERSION_NOTIFICATIONS_ENABLED": "false",
            "N8N_TEMPLATES_ENABLED": "false", "N8N_PERSONALIZATION_ENABLED": "false",
            "N8N_COMMUNITY_PACKAGES_ENABLED": "false",
            "N8N_DISABLED_MODULES": "mcp-registry",  # else a start-up task reaches the internet
            "DB_TYPE": "sqlite", "N8N_LOG_LEVEL": "info",
            # run workflows in the main process, and keep every execution for the tests to read
            "EXECUTIONS_MODE": "regular", "EXECUTIONS_DATA_SAVE_ON_SUCCESS": "all",
            "EXECUTIONS_DATA_SAVE_ON_ERROR": "all", "EXECUTIONS_DATA_SAVE_MANUAL_EXECUTIONS": "true",
            "CODE_ENABLE_STDOUT": "true",
        }
        env.update(extra_env or {})
        log_path = home / "n8n.log"
        log = open(log_path, "wb")
        proc = subprocess.Popen([str(install.node), str(install.n8n_bin), "start"], env=env,
                                cwd=home, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        n8n = cls(install, home, env, proc, port, broker_port, token, log_path)
        try:
            n8n._wait_ready(ready_timeout_s)
            n8n._owner_login()
        except BaseException:
            n8n.stop()
            raise
        return n8n

    def __enter__(self) -> N8n:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def broker_uri(self) -> str:
        return f"http://127.0.0.1:{self.broker_port}"

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM (n8n drains its runners and exits in about 2 s), SIGKILL if it lingers."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        shutil.rmtree(self.home, ignore_errors=True)

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise N8nError(f"n8n exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz/readiness", timeout=2) as r:
                    if r.status == 200:
                        with urllib.request.urlopen(f"{self.broker_uri}/healthz", timeout=2):
                            return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.3)
        raise N8nError(f"n8n was not ready within {timeout_s} s:\n{self.log_tail()}")

    def _owner_login(self) -> None:
        self.request("POST", "/rest/owner/setup", {
            "email": OWNER_EMAIL, "firstName": "Sandbox", "lastName": "Peer",
            "password": OWNER_PASSWORD})
        self.request("POST", "/rest/login", {"emailOrLdapLoginId": OWNER_EMAIL,
                                             "password": OWNER_PASSWORD})

    # -- REST ----------------------------------------------------------------------------

    def request(self, method: str, path: str, body: Any = None, timeout_s: float = 30.0,
                headers: dict[str, str] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json",
                                              "browser-id": "snippet-sandbox-tests",
                                              **(headers or {})})
        try:
            with self._http.open(req, timeout=timeout_s) as r:
                text = r.read()
        except urllib.error.HTTPError as exc:
            raise N8nError(f"{method} {path}: HTTP {exc.code}: {exc.read()[:2000]!r}") from exc
        doc = json.loads(text) if text else None
        return doc.get("data", doc) if isinstance(doc, dict) else doc

    def create_workflow(self, wf: dict[str, Any]) -> str:
        """Store a workflow; returns its id."""
        return str(self.request("POST", "/rest/workflows", wf)["id"])

    def start_run(self, workflow_id: str, trigger: str = TRIGGER, push_ref: str | None = None) -> str:
        """Start a manual run of a stored workflow; returns the execution id. With
        ``push_ref`` (an open ``Push``), n8n sends the run's console output there."""
        wf = self.request("GET", f"/rest/workflows/{workflow_id}")
        out = self.request("POST", f"/rest/workflows/{workflow_id}/run", {
            "workflowData": wf, "triggerToStartFrom": {"name": trigger}},
            headers={"push-ref": push_ref} if push_ref else None)
        return str(out["executionId"])

    def stop_execution(self, execution_id: str) -> Any:
        """A user stop, as the editor's Stop button sends it."""
        return self.request("POST", f"/rest/executions/{execution_id}/stop")

    def execution(self, execution_id: str) -> Execution | None:
        """The execution once it has finished, else None."""
        raw = self.request("GET", f"/rest/executions/{execution_id}")
        if not raw or not raw.get("finished") and raw.get("status") in ("new", "running", "waiting"):
            return None
        data = raw.get("data")
        decoded = flatted.parse(data) if isinstance(data, str) else (data or {})
        return Execution(str(raw["id"]), str(raw.get("status")), decoded, raw)

    def custom_data(self, execution_id: str, timeout_s: float = 10.0) -> dict[str, Any]:
        """A finished execution's custom data: n8n saves it a moment after the execution's
        status (seen under load), so read again until it is there or ``timeout_s`` passed."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.execution(execution_id)
            data = found.custom_data if found is not None else {}
            if data or time.monotonic() >= deadline:
                return data
            time.sleep(0.1)

    def wait(self, execution_id: str, timeout_s: float = 60.0) -> Execution:
        deadline = time.monotonic() + timeout_s
        delay = 0.05
        while time.monotonic() < deadline:
            found = self.execution(execution_id)
            if found is not None:
                return found
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)
        raise N8nError(f"execution {execution_id} did not finish within {timeout_s} s")

    def run(self, workflow_id: str, timeout_s: float = 60.0, push: Push | None = None) -> Execution:
        return self.wait(self.start_run(workflow_id, push_ref=push.ref if push else None), timeout_s)

    def push(self) -> Push:
        """The editor's push channel: what n8n shows in the browser (console output, ...)."""
        return Push(self)


class Push:
    """One editor push connection (n8n's WebSocket backend), read on a thread of its own.
    Connected when the constructor returns: n8n has registered its ``ref`` by then."""

    def __init__(self, n8n: N8n) -> None:
        from wsproto import ConnectionType, WSConnection
        from wsproto.events import AcceptConnection, Request

        self.ref = uuid.uuid4().hex[:10]
        self.messages: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        cookie = "; ".join(f"{c.name}={c.value}" for c in n8n._cookies)
        self._sock = socket.create_connection(("127.0.0.1", n8n.port), timeout=10)
        self._ws = WSConnection(ConnectionType.CLIENT)
        self._sock.sendall(self._ws.send(Request(
            host=f"127.0.0.1:{n8n.port}", target=f"/rest/push?pushRef={self.ref}",
            extra_headers=[(b"cookie", cookie.encode()), (b"origin", n8n.url.encode())])))
        pending: list[Any] = []
        while not any(isinstance(e, AcceptConnection) for e in pending):
            data = self._sock.recv(65536)
            if not data:
                raise N8nError("n8n closed the push connection during its upgrade")
            self._ws.receive_data(data)
            pending += list(self._ws.events())
        # n8n registers the push ref just after the upgrade: give it a moment to
        self._sock.settimeout(None)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        time.sleep(0.2)

    def _read(self) -> None:
        from wsproto.events import BytesMessage, TextMessage

        try:
            while True:
                data = self._sock.recv(1 << 20)
                if not data:
                    return
                self._ws.receive_data(data)
                for event in self._ws.events():
                    if isinstance(event, (TextMessage, BytesMessage)):
                        try:
                            msg = json.loads(event.data)
                        except ValueError:
                            continue
                        with self._changed:
                            self.messages.append(msg)
                            self._changed.notify_all()
        except Exception:  # closed under the reader: the test is over
            pass

    def finished(self, execution_id: str, timeout_s: float = 60.0) -> str:
        """Wait for n8n's ``executionFinished`` of an execution started with this push ref;
        its status. No polling: the moment n8n says it, for timing a run."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                for m in self.messages:
                    data = m.get("data") or {}
                    if m.get("type") == "executionFinished" and str(data.get("executionId")) == execution_id:
                        return str(data.get("status"))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise N8nError(f"execution {execution_id} did not finish within {timeout_s} s")
                self._changed.wait(left)

    def console(self) -> list[list[Any]]:
        """The console messages n8n pushed: one list of arguments per log call."""
        return [m["data"]["messages"] for m in self.messages if m.get("type") == "sendConsoleMessage"]

    def close(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        self._thread.join(5)


# -- workflow building ------------------------------------------------------------------


def code_node(name: str, code: str, language: str = "python", *,
              mode: str = "runOnceForAllItems", on_error: str | None = None) -> dict[str, Any]:
    """A Code node (typeVersion 2). ``language`` is python or javascript; ``on_error``
    ``continueRegularOutput`` is n8n's "continue on fail"."""
    params: dict[str, Any] = {"mode": mode}
    if language == "python":
        params.update(language="pythonNative", pythonCode=code)
    else:
        params.update(language="javaScript", jsCode=code)
    node = {"id": str(uuid.uuid4()), "name": name, "type": "n8n-nodes-base.code",
            "typeVersion": 2, "position": [0, 0], "parameters": params}
    if on_error:
        node["onError"] = on_error
    return node


def workflow(name: str, nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """A workflow of a manual trigger followed by ``nodes`` in a chain."""
    trigger = {"id": str(uuid.uuid4()), "name": TRIGGER, "type": "n8n-nodes-base.manualTrigger",
               "typeVersion": 1, "position": [0, 0], "parameters": {}}
    chain = [trigger, *nodes]
    for i, node in enumerate(chain):
        node["position"] = [200 * i, 0]
    connections = {a["name"]: {"main": [[{"node": b["name"], "type": "main", "index": 0}]]}
                   for a, b in zip(chain[:-1], chain[1:], strict=True)}
    return {"name": name, "nodes": chain, "connections": connections, "active": False,
            "settings": {"executionOrder": "v1"}}


class RunnerProcess:
    """``sandbox n8n-runner`` as a user starts it: a process configured by n8n's variables."""

    def __init__(self, n8n: N8n, *flags: str, env: dict[str, str] | None = None,
                 command: list[str] | None = None) -> None:
        """``command`` replaces ``python -m sandbox n8n-runner`` (a wrapper of it)."""
        self.n8n = n8n
        self.flags = flags
        self.log_path = n8n.home / f"runner-{uuid.uuid4().hex[:8]}.log"
        run_env = dict(os.environ)
        run_env.update({"N8N_RUNNERS_TASK_BROKER_URI": n8n.broker_uri,
                        "N8N_RUNNERS_AUTH_TOKEN": n8n.auth_token})
        run_env.update(env or {})
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [*(command or [sys.executable, "-m", "sandbox", "n8n-runner"]), *flags], env=run_env,
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait_registered(self, timeout_s: float = 60.0) -> RunnerProcess:
        """Until n8n's broker has registered the runner (its offers then follow at once)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if "registered with n8n's task broker" in self.log():
                return self
            if self.proc.poll() is not None:
                raise N8nError(f"the runner exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            time.sleep(0.1)
        raise N8nError(f"the runner did not register within {timeout_s} s:\n{self.log()[-3000:]}")

    def stop(self, graceful: bool = False) -> int | None:
        """SIGTERM: the runner serves out its grace period (n8n's shutdown contract) and
        leaves once its tasks are answered; unless ``graceful``, a second signal follows,
        which makes it leave at once."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            if not graceful:
                self.proc.send_signal(signal.SIGINT)  # another signal: both are delivered
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode
