"""The runners the mock broker drives, each started as its users start it, each a harness system.

* n8n's own JavaScript runner (``@n8n/task-runner`` from the cached n8n install), started
  the way n8n's launcher starts it (``JsTaskRunnerProcess``): ``node
  --disallow-code-generation-from-strings --disable-proto=delete .../start.js`` with the
  launcher's variables, a grant in ``N8N_RUNNERS_GRANT_TOKEN`` among them;
* ours, ``sandbox n8n-runner --types javascript``, configured by n8n's variables with the
  auth token (it fetches a grant per connection).

Each gets a mock broker of its own, so every task of a system goes to its runner, and the
same concurrency (``N8N_RUNNERS_MAX_CONCURRENCY``). A system's task is a trivial Code node,
``return [{json: {x: 6 * 7}}]``: offer accepted, settings, the data request and its answer,
the run, ``runner:taskdone``.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.n8n_mock.core import TaskSpec
from benchmarks.n8n_mock.server import MockBroker, MockBrokerError

THEIRS = "n8n JS runner (mock broker)"
OURS = "sandbox n8n-runner (mock broker)"
OURS_WORKER = "sandbox n8n-runner, worker mode (mock broker)"
TRIVIAL = TaskSpec("return [{json: {x: 6 * 7}}]")
EXPECTED = [{"json": {"x": 42}}]
TASK_TIMEOUT_S = 60
HEARTBEAT_S = 30  # n8n's default N8N_RUNNERS_HEARTBEAT_INTERVAL
MAX_PAYLOAD = 1 << 30  # n8n's default N8N_RUNNERS_MAX_PAYLOAD
START_TIMEOUT_S = 90.0


class MockSystem:
    """One runner behind a mock broker of its own."""

    def __init__(self, name: str, broker: MockBroker, proc: subprocess.Popen, log_path: Path,
                 concurrency: int) -> None:
        self.name = name
        # n8n's runner exits when its broker drains and closes; ours reconnects, as a
        # runner of a service should, until it is told to stop
        self.exits_on_drain = name == THEIRS
        self.broker = broker
        self.proc = proc
        self.log_path = log_path
        self.concurrency = concurrency
        self.runner: dict[str, Any] = {}
        try:
            self.runner = broker.wait_for_offers("javascript", concurrency, START_TIMEOUT_S,
                                                 alive=lambda: proc.poll() is None)
        except MockBrokerError as exc:
            self.close()
            raise RuntimeError(f"{name}: {exc}:\n{self.log()[-2000:]}") from exc

    @classmethod
    def theirs(cls, node: Path, start_script: Path, concurrency: int, directory: str) -> MockSystem:
        """n8n's JS runner, as n8n's launcher starts it."""
        broker = MockBroker(task_timeout_s=TASK_TIMEOUT_S, heartbeat_s=HEARTBEAT_S)
        env = {"PATH": f"{node.parent}:{os.environ.get('PATH', '')}", "HOME": directory,
               "GENERIC_TIMEZONE": "UTC", "N8N_RUNNERS_ID": f"js-{secrets.token_hex(6)}",
               "N8N_RUNNERS_GRANT_TOKEN": broker.grant(), "N8N_RUNNERS_TASK_BROKER_URI": broker.uri,
               "N8N_RUNNERS_MAX_PAYLOAD": str(MAX_PAYLOAD),
               "N8N_RUNNERS_MAX_CONCURRENCY": str(concurrency),
               "N8N_RUNNERS_TASK_TIMEOUT": str(TASK_TIMEOUT_S),
               "N8N_RUNNERS_HEARTBEAT_INTERVAL": str(HEARTBEAT_S)}
        args = [str(node), "--disallow-code-generation-from-strings", "--disable-proto=delete",
                str(start_script)]
        return cls._start(THEIRS, broker, args, env, concurrency, directory)

    @classmethod
    def ours(cls, concurrency: int, directory: str, isolation: str = "process") -> MockSystem:
        """``sandbox n8n-runner``, as a user configures it for n8n (``isolation="worker"``:
        warm workers, one workflow each)."""
        broker = MockBroker(task_timeout_s=TASK_TIMEOUT_S, heartbeat_s=HEARTBEAT_S)
        env = {**os.environ, "N8N_RUNNERS_TASK_BROKER_URI": broker.uri,
               "N8N_RUNNERS_AUTH_TOKEN": broker.auth_token,
               "N8N_RUNNERS_MAX_CONCURRENCY": str(concurrency),
               "N8N_RUNNERS_TASK_TIMEOUT": str(TASK_TIMEOUT_S)}
        args = [sys.executable, "-m", "sandbox", "n8n-runner", "--types", "javascript",
                "--isolation", isolation]
        name = OURS_WORKER if isolation == "worker" else OURS
        return cls._start(name, broker, args, env, concurrency, directory)

    @classmethod
    def _start(cls, name: str, broker: MockBroker, args: list[str], env: dict[str, str],
               concurrency: int, directory: str) -> MockSystem:
        log_path = Path(directory) / f"{name.split()[0]}-{secrets.token_hex(4)}.log"
        try:
            with open(log_path, "wb") as log:
                # started in the run's directory: `python -m` puts the working directory
                # first on sys.path, and a checkout there would shadow the tree PYTHONPATH names
                proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True,
                                        cwd=directory)
        except BaseException:
            broker.close()
            raise
        return cls(name, broker, proc, log_path, concurrency)

    def call(self) -> None:
        """One trivial task; raises unless its answer is the Code node's right result."""
        outcome = self.broker.run(TRIVIAL)
        if outcome.status != "done" or outcome.result != EXPECTED:
            raise RuntimeError(f"{self.name}: {outcome.status} {outcome.message or outcome.value!r}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def close(self) -> None:
        """The broker drains and closes (n8n's runner exits on that), then the runner stops."""
        self.broker.close()
        if self.exits_on_drain:
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        if self.proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait(5)

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass


def start(concurrency: int, directory: str, *, install: bool) -> tuple[list[MockSystem], dict[str, str]]:
    """Both systems, or the ones that could start and why the others did not. n8n comes
    from the cache of ``benchmarks/n8n_peer/install.py``; with ``install`` it is installed when missing
    (about 6 minutes on an empty cache)."""
    from benchmarks.n8n_peer.install import ensure_installed, installed

    systems: list[MockSystem] = []
    skipped: dict[str, str] = {}
    found = installed()
    if found is None and install:
        try:
            found = ensure_installed()
        except Exception as exc:  # no npm, no registry: the rest of the run is still worth having
            skipped[THEIRS] = f"could not install n8n through benchmarks/n8n_peer/install.py: {exc}"
    elif found is None:
        skipped[THEIRS] = ("n8n is not installed and --quick does not install it "
                           "(python -m benchmarks.n8n_peer.install, about 6 minutes, or a full run)")
    if found is not None:
        try:
            systems.append(MockSystem.theirs(found.node, found.task_runner_start, concurrency, directory))
        except Exception as exc:
            skipped[THEIRS] = f"could not start n8n's runner: {exc}"
    for name, isolation in ((OURS, "process"), (OURS_WORKER, "worker")):
        try:
            systems.append(MockSystem.ours(concurrency, directory, isolation))
        except Exception as exc:
            skipped[name] = f"could not start `sandbox n8n-runner --isolation {isolation}`: {exc}"
    return systems, skipped
