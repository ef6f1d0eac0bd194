"""``sandbox serve``: a broker, its local runner processes, its probes (/livez, /readyz,
/healthz) and /metrics (``sandbox.http.probes``), and the HTTP/JSON API when ``api_bind`` is
set (``sandbox.http``: it reaches the broker on a private inproc:// endpoint of the client
socket, stops taking connections when the drain starts, and answers what is in flight within
the grace).

The broker loop runs in a thread of its own. Local runners are child processes
(``python -m sandbox runner``) that a watcher thread starts and restarts with backoff
(1 s doubling to 32 s) when they exit, like a launcher; they connect to the broker's runner
endpoint (a private ipc socket by default), never to the client one. SIGTERM (or SIGINT)
drains: the broker starts no more work (queued tasks are answered at once), in-flight tasks
get ``grace_s`` to finish, the rest are cancelled, then the runners are stopped and the
socket files the daemon made are removed. An ipc path a live daemon serves is refused
("already in use by pid N"), never taken over.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from dataclasses import replace
import sys
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import zmq

from broker.auth import CurveServer
from broker.core import BrokerConfig
from broker.errors import BrokerConfigError
from broker.metrics import BrokerMetrics
from broker.server import BrokerServer
from sandbox.config import RUNNER, ServiceConfig, settings_for
from sandbox import backoff, registry
from sandbox.errors import ConfigError, JailError
from sandbox.jail import cgroups, launch, packages
from sandbox.link import CurveClient

if TYPE_CHECKING:
    from sandbox.http.probes import ProbeServer
    from sandbox.http.server import ApiServer

log = logging.getLogger("sandbox.service.daemon")



def load_curve_server(curve_dir: str) -> CurveServer:
    import zmq.auth

    try:
        public, secret = zmq.auth.load_certificate(os.path.join(curve_dir, "server.key_secret"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load the server key from {curve_dir}: {exc}") from exc
    if secret is None:
        raise ConfigError(f"{curve_dir}/server.key_secret has no secret key")
    return CurveServer(public, secret, os.path.join(curve_dir, "authorized"),
                       os.path.join(curve_dir, "runners"))


class RunnerWatcher:
    """Starts ``count`` local runner processes and restarts any that exits.

    Each runner gets the read end of a lifeline pipe whose write end only this process holds:
    if the daemon dies (even by ``kill -9``) the runner reads EOF and stops, rather than join
    the next broker. Runners run in a session of their own and ignore SIGTERM and SIGINT, so
    a signal to the daemon's process group (Ctrl-C, systemd) reaches the daemon alone, which
    drains first and then closes the lifelines."""

    def __init__(self, config: ServiceConfig, endpoint: str) -> None:
        self.config = config
        self.endpoint = endpoint
        self.stop = threading.Event()
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * config.runners
        self._lifelines: list[int | None] = [None] * config.runners  # write ends
        self.restarts = 0
        self._thread = threading.Thread(target=self._watch, daemon=True, name="runner-watcher")

    def settings(self) -> ServiceConfig:
        """The local runners' settings: the daemon's own, with the keys they need for the
        runner socket (which speaks CURVE on all its endpoints when one of them is tcp://)."""
        cfg = self.config
        own = {s.name: getattr(cfg, s.name) for s in settings_for(RUNNER)}
        if cfg.curve_dir and any(e.startswith("tcp://") for e in cfg.runner_endpoints()):
            return ServiceConfig(**{**own, "curve_dir": cfg.curve_dir, "insecure": False})
        return ServiceConfig(**{**own, "curve_dir": "",
                                "insecure": self.endpoint.startswith("tcp://")})

    def argv(self, index: int) -> list[str]:
        """A local runner's command line: its settings are handed over as the schema holds
        them (``--settings``), never re-spelled as flags for the runner to parse again."""
        return [sys.executable, "-m", "sandbox", "runner", "--connect", self.endpoint,
                "--name", f"local-{index}", "--settings", self.settings().to_json(RUNNER)]

    def start(self) -> None:
        self._thread.start()

    def _watch(self) -> None:
        failures = [0] * len(self.procs)
        next_start = [0.0] * len(self.procs)
        while not self.stop.is_set():
            now = time.monotonic()
            for i, proc in enumerate(self.procs):
                if proc is not None and proc.poll() is not None:
                    log.warning("runner %d exited with %s; restarting", i, proc.returncode)
                    started = getattr(proc, "started_at", now)
                    failures[i] = 0 if now - started > 60 else failures[i] + 1
                    next_start[i] = now + backoff.delay_s(failures[i])
                    self.procs[i] = None
                    self._cut(i)
                    self.restarts += 1
                if self.procs[i] is None and now >= next_start[i] and not self.stop.is_set():
                    self.procs[i] = self._start(i, now)
            self.stop.wait(0.2)

    def _start(self, index: int, now: float) -> subprocess.Popen[bytes]:
        read_end, write_end = os.pipe()  # both non-inheritable: only this runner gets one
        try:
            proc = subprocess.Popen(self.argv(index) + ["--lifeline", str(read_end)],
                                    pass_fds=(read_end,), stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        proc.started_at = now  # type: ignore[attr-defined]
        self._lifelines[index] = write_end
        return proc

    def _cut(self, index: int) -> None:
        fd, self._lifelines[index] = self._lifelines[index], None
        if fd is not None:
            os.close(fd)

    def close(self, grace_s: float = 5.0) -> None:
        """Stop the runners: their lifelines close, they stop their jails and exit."""
        self.stop.set()
        self._thread.join(timeout=5)
        live = [p for p in self.procs if p is not None and p.poll() is None]
        for i in range(len(self.procs)):
            self._cut(i)
        end = time.monotonic() + grace_s
        for proc in live:
            try:
                proc.wait(timeout=max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


LIVE_LOCK_S = 2.0  # the broker loop holds its lock for microseconds; seconds is a wedge


def health(draining: bool, runners: int, queued: int, in_flight: int,
           own_runners: bool = True) -> dict[str, Any]:
    """The body of /readyz (and /healthz); its status decides the HTTP code (200 only for
    "ok"), so the two always agree: "draining" (SIGTERM), "no runners" (the daemon starts
    runners of its own and none has registered yet: nothing would run), or "ok". A broker
    whose runners are elsewhere (``runners = 0``) is ready without them: they find it
    through the address that readiness guards (a Kubernetes Service), and what waits for
    them meanwhile is what an autoscaler reads."""
    status = ("draining" if draining else "no runners" if runners == 0 and own_runners
              else "ok")
    return {"status": status, "runners": runners, "queued": queued, "in_flight": in_flight}


def _probe_server(config: ServiceConfig, server: BrokerServer, metrics: BrokerMetrics
                  ) -> ProbeServer:
    from sandbox.http.probes import ProbeServer, add_process_metrics

    def live() -> dict[str, Any]:
        # the broker's loop takes this lock for every event: held for seconds, it is stuck
        if not server.lock.acquire(timeout=LIVE_LOCK_S):
            return {"status": "broker loop stuck"}
        server.lock.release()
        return {"status": "ok"}

    def ready() -> dict[str, Any]:
        with server.lock:
            return health(server.draining, len(server.core.runners), len(server.core.queued),
                          len(server.core.running), own_runners=config.runners > 0)

    add_process_metrics(metrics.registry, "serve")
    return ProbeServer(config.http, live, ready, metrics.registry, healthz="ready").start()


def api_endpoint() -> str:
    """The broker's private client endpoint for the HTTP API: in-process, so only the API
    (in this process) can use it."""
    return f"inproc://sandbox-http-api-{os.getpid()}"


def _api_server(config: ServiceConfig, server: BrokerServer) -> ApiServer:
    from sandbox.http.server import ApiServer  # uvicorn and Starlette load only when it is on

    def served() -> list[tuple[Mapping[str, str], int]]:
        with server.lock:
            return [(dict(r.runtimes), r.slots) for r in server.core.runners.values()]

    from sandbox.http.probes import package_version

    api = ApiServer(config, api_endpoint(), served, package_version())
    api.start()
    return api


def preflight(config: ServiceConfig) -> None:
    """What would stop every local runner from starting, found before any starts (a runner
    that cannot start would be restarted forever while clients wait): the runners' CURVE key
    pair, the packages environment, the cgroup layer, and for pyodide Node and its
    distribution. ConfigError or JailError naming the setting."""
    if config.runners == 0:
        return
    if config.curve_dir and any(e.startswith("tcp://") for e in config.runner_endpoints()):
        CurveClient.load(config.curve_dir, "runner")  # what each local runner loads first
    pool = config.pool()
    if pool.packages_dir:
        packages.check_reachable(pool.packages_dir, as_root=os.geteuid() == 0)
    plan = launch.cgroup_plan(pool)
    if plan is not None:
        cgroups.check(plan)
    if "pyodide" in (registry.canonical(r) for r in config.runtimes):
        from sandbox.pyodide import dist as pyodide_dist

        try:
            pyodide_dist.check_usable(pool.pyodide.cache_dir, pool.pyodide.node)
        except JailError as exc:
            raise JailError(f"runtimes pyodide: {exc}") from exc


def serve(config: ServiceConfig, ready: threading.Event | None = None) -> int:
    """Run the daemon until SIGTERM/SIGINT; returns the exit code."""
    if config.packages:
        directory = config.packages_dir or packages.default_dir()
        packages.ensure(config.packages, directory)  # progress on stderr; ConfigError if pip fails
        config = replace(config, packages_dir=directory)
    preflight(config)
    endpoints, runner_endpoints = list(config.endpoints()), list(config.runner_endpoints())
    curve = None
    if config.curve_dir and any(e.startswith("tcp://") for e in endpoints + runner_endpoints):
        curve = load_curve_server(config.curve_dir)
    broker_config = BrokerConfig(
        max_queued=config.max_queued, max_in_flight=config.max_in_flight,
        max_per_client=config.max_per_client, lane_caps=config.lane_caps(),
        max_timeout_s=config.max_timeout_s, max_memory_mb=config.max_memory_mb,
        max_stdout_bytes=config.max_stdout_bytes, max_result_bytes=config.max_result_bytes,
        max_workers_per_principal=config.max_workers_per_principal,
        max_sessions=config.max_sessions,
        max_sessions_per_principal=config.max_sessions_per_principal,
        ipc_principal=config.ipc_principal,
        queue_timeout_s=config.queue_timeout_s, heartbeat_s=config.heartbeat_s,
        liveness=config.liveness, runner_hold_s=config.runner_hold_s,
        near_tolerance_ms=config.near_tolerance_ms,
        runtimes=tuple(registry.canonical(r) or r for r in config.runtimes),
    )
    metrics = BrokerMetrics()
    try:
        server = BrokerServer(endpoints + ([api_endpoint()] if config.api_bind else []),
                              broker_config, runner_endpoints=runner_endpoints,
                              context=zmq.Context.instance(), curve=curve,
                              on_outcome=metrics.on_outcome)
    except BrokerConfigError as exc:
        raise ConfigError(str(exc)) from exc
    watcher = RunnerWatcher(config, server.runner_endpoints[0])
    metrics.attach(server, restarts=lambda: watcher.restarts)
    httpd = api = None
    try:
        httpd = _probe_server(config, server, metrics) if config.http else None
        if config.api_bind:
            api = _api_server(config, server)
    except BaseException:
        if httpd is not None:
            httpd.close()
        server.close()
        raise
    watcher.start()
    stop, term = threading.Event(), threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        term.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("serving clients on %s, runners on %s%s%s",
             ", ".join(server.endpoints[:len(endpoints)]), ", ".join(server.runner_endpoints),
             f", http://{httpd.address}" if httpd else "",
             f", api http://{api.address}" if api else "")
    if ready is not None:
        ready.set()
    loop = threading.Thread(target=server.serve, args=(stop,), name="broker")
    loop.start()
    try:
        while not term.wait(0.2):
            pass
    finally:
        if api is not None:
            api.stop_accepting()  # its requests in flight are answered by the drain
        stop.set()
        loop.join()
        log.info("draining for up to %g s", config.grace_s)
        server.drain(config.grace_s, threading.Event())
        if api is not None:
            api.close()
        watcher.close()
        server.close()
        if httpd is not None:
            httpd.close()
        log.info("stopped")
    return 0
