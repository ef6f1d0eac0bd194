"""What an orchestrator and a scraper read over HTTP: liveness, readiness and Prometheus
metrics, for ``sandbox serve`` and ``sandbox n8n-runner`` alike.

The names are Kubernetes' own (its API server serves them): ``GET /livez`` (is the process
sound: restart it if not), ``GET /readyz`` (send it work: take it out of a Service if not),
and ``GET /healthz``, which each program keeps with the meaning it had (the daemon: readiness;
the n8n runner: n8n's, alive). ``GET /metrics`` is the registry in Prometheus' text format.
Each answer is JSON whose ``status`` is "ok" exactly when the code is 200 (503 otherwise);
query strings are ignored (``/readyz?verbose``), HEAD answers as GET does.

A program gives two checks, each returning its body (a dict with a ``status``); what a
check reads must be safe to read from another thread: the server runs in a thread of its
own (``sandbox.http.serving``), never on the program's loop.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.http.serving import ThreadedServer

Check = Callable[[], dict[str, Any]]
HEALTHZ = ("live", "ready")  # what /healthz means in a program


def package_version() -> str:
    try:
        return version("snippet-sandbox")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "unknown"


def add_process_metrics(registry: CollectorRegistry, component: str) -> None:
    """``sandbox_build_info`` (the package's version, the program, the host's Python) and the
    process' own (``process_cpu_seconds_total``, ``process_resident_memory_bytes``,
    ``process_open_fds``, ``process_start_time_seconds``...; ``python_info``), from
    prometheus_client's collectors, into ``registry``."""
    Info("sandbox_build", "The running build: version, program, Python", registry=registry).info(
        {"version": package_version(), "component": component,
         "python": platform.python_version()})
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)


def idle_children_gauge(idle: dict[str, int]) -> GaugeMetricFamily:
    """``sandbox_idle_children{runtime}`` of a runner's pools (the n8n runner's, a standalone
    runner's: one shape wherever a runner is scraped)."""
    gauge = GaugeMetricFamily("sandbox_idle_children", "Idle pre-forked children, per runtime",
                              labels=["runtime"])
    for runtime, count in sorted(idle.items()):
        gauge.add_metric([runtime], count)
    return gauge


def make_app(live: Check, ready: Check, registry: CollectorRegistry, *,
             healthz: str = "ready") -> Starlette:
    """The probe routes; ``healthz`` says which check ``/healthz`` answers."""
    if healthz not in HEALTHZ:
        raise ValueError(f"healthz must be live or ready, not {healthz!r}")

    def answer(check: Check) -> Callable[[Request], Any]:
        async def route(request: Request) -> Response:
            body = check()
            return Response(json.dumps(body), status_code=200 if body["status"] == "ok" else 503,
                            media_type="application/json")
        return route

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def not_found(request: Request, exc: Exception) -> Response:
        return Response(json.dumps({"status": "not found", "path": request.url.path}),
                        status_code=404, media_type="application/json")

    routes = [Route("/livez", answer(live), methods=["GET", "HEAD"]),
              Route("/readyz", answer(ready), methods=["GET", "HEAD"]),
              Route("/healthz", answer(live if healthz == "live" else ready),
                    methods=["GET", "HEAD"]),
              Route("/metrics", metrics, methods=["GET", "HEAD"])]
    return Starlette(routes=routes, exception_handlers={404: not_found})


class ProbeServer(ThreadedServer):
    """The probe routes on ``address`` (HOST:PORT), served from a thread: started by
    ``start()``, stopped by ``close()``."""

    def __init__(self, address: str, live: Check, ready: Check, registry: CollectorRegistry,
                 *, healthz: str = "ready", name: str = "http") -> None:
        super().__init__(make_app(live, ready, registry, healthz=healthz), address, name=name,
                         read_timeout_s=10.0)
