"""The HTTP API's server in ``sandbox serve``: uvicorn in a thread of the daemon, its tasks
sent to the daemon's broker through our own ``AsyncClient``.

Why these: uvicorn is the reference ASGI server (h11 underneath, maintained by the
encode/Starlette team, asyncio), and an async server needs no thread per waiting request:
one event loop holds every HTTP request that waits for its task. ``AsyncClient`` runs in that
same loop on one DEALER socket, so a request's path is loop -> socket -> broker with no
hand-off between threads, and the broker sees one more client, under the same rules (queue
caps, deadlines, drain) as any other. The sync ``Client`` in a thread pool would cap the
requests in flight at the pool's size and add a thread hand-off to every call.

The listening socket is bound here, in the daemon's thread, so an address in use is a
ConfigError before anything starts (and port 0 gives a free port, which the daemon reports).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from sandbox.client.aio import AsyncClient
from sandbox.config import ServiceConfig
from sandbox.errors import ConfigError
from sandbox.http.app import make_app
from sandbox.http.keys import ApiKeys
from sandbox.http.mapping import SessionOpen
from sandbox.request import Options, Request
from sandbox.result import OutputChunk, Result, Status

log = logging.getLogger("sandbox.http")
START_TIMEOUT_S = 30.0
_RUNTIMES_KEPT = 100_000  # sessions whose runtime the API remembers (calls name only the id)


class BrokerBackend:
    """The API's tasks, to the broker on its client ``endpoint``, from this event loop."""

    def __init__(self, endpoint: str, runtimes: Callable[[], list[tuple[Mapping[str, str], int]]],
                 queue_timeout_s: float) -> None:
        self.client = AsyncClient(endpoint, queue_timeout_s=queue_timeout_s)
        self.defaults = self.client.defaults
        self.runtimes = runtimes
        # the runtime of each session opened here, by its key (a call names only the id;
        # the broker refuses a call naming another runtime than its session's)
        self._runtimes: OrderedDict[str, str] = OrderedDict()

    async def run(self, req: Request, principal: str,
                  on_output: Callable[[OutputChunk], None] | None = None) -> Result:
        # The principal's seam: the broker's submit has no field for it yet, so it stays
        # here (it scopes worker reuse keys: ``sandbox.http.mapping.scoped``). When the
        # protocol carries principals, it goes into the submit from this line.
        handle = await self.client.submit_request(req)
        try:
            if on_output is not None:
                async for chunk in handle.output():
                    on_output(chunk)
            return await handle
        except asyncio.CancelledError:
            handle.cancel()  # its caller went away while it streamed: nobody waits for it
            raise

    async def open_session(self, opening: SessionOpen, key: str) -> Result:
        built = self.client.session_request(
            opening.runtime, key, "open", options=Options(memory_mb=opening.memory_mb),
            idle_timeout_s=opening.idle_timeout_s, max_lifetime_s=opening.max_lifetime_s)
        if isinstance(built, Result):
            return built
        result = await (await self.client.submit_request(built))
        if result.status is Status.OK:
            self._runtimes[key] = opening.runtime
            while len(self._runtimes) > _RUNTIMES_KEPT:
                self._runtimes.popitem(last=False)
        return result

    async def call_session(self, key: str, code: str, data: Any, options: Options) -> Result:
        built = self.client.session_request(self._runtimes.get(key, "python"), key, "call",
                                            code, data, options)
        if isinstance(built, Result):
            return built
        return await (await self.client.submit_request(built))

    async def close_session(self, key: str) -> Result:
        built = self.client.session_request(self._runtimes.pop(key, "python"), key, "close")
        if isinstance(built, Result):
            return built
        return await (await self.client.submit_request(built))

    async def aclose(self) -> None:
        await self.client.aclose()


def timed_head(timeout_s: float) -> type[H11Protocol]:
    """uvicorn's HTTP/1.1 protocol with a deadline on each request's head: a client that
    connects and sends nothing, or a head byte by byte (slowloris), is cut off ``timeout_s``
    after it connected or after its previous response; the body's own deadline is the app's
    (``sandbox.http.app.read_body``). uvicorn has neither: its keep-alive timeout ends only
    an idle connection that sent nothing since its last response."""

    class TimedHead(H11Protocol):
        _late: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def handle_events(self) -> None:
            super().handle_events()
            if self.cycle is not None and not self.cycle.response_complete:
                self._disarm()  # a head arrived: its request is the app's now

        def on_response_complete(self) -> None:
            self._arm()  # first: a pipelined request's head may be read inside the call
            super().on_response_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._late = self.loop.call_later(timeout_s, self._cut)

        def _disarm(self) -> None:
            if self._late is not None:
                self._late.cancel()
                self._late = None

        def _cut(self) -> None:
            self._late = None
            if not self.transport.is_closing():
                self.transport.close()

    return TimedHead


class ApiServer:
    """uvicorn serving the API on ``config.api_bind`` in a thread; ``close()`` stops it,
    letting requests in flight finish within ``grace_s``."""

    def __init__(self, config: ServiceConfig, endpoint: str,
                 runtimes: Callable[[], list[tuple[Mapping[str, str], int]]], version: str) -> None:
        keys = ApiKeys.load(config.api_keys_file) if config.api_keys_file else None
        host, _, port = config.api_bind.rpartition(":")
        host = host.strip("[]") or "0.0.0.0"
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # IPPROTO_TCP named, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets
        # that say they are TCP, and with Nagle on, a response written as head and body
        # waits for the client's delayed ACK: 40 ms a request
        self.sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind((host, int(port)))
        except OSError as exc:
            self.sock.close()
            raise ConfigError(f"cannot serve the HTTP API on {config.api_bind}: "
                              f"{exc.strerror or exc}") from exc
        self.address = f"{host}:{self.sock.getsockname()[1]}"
        app = make_app(lambda: BrokerBackend(endpoint, runtimes, config.queue_timeout_s),
                       keys=keys, body_bytes=config.api_body_bytes,
                       body_timeout_s=config.api_read_timeout_s, version=version)
        self.server = uvicorn.Server(uvicorn.Config(
            app, http=timed_head(config.api_read_timeout_s),
            log_level="warning", access_log=False,  # a log line could carry a key
            lifespan="on", timeout_graceful_shutdown=int(config.grace_s) + 1,
            server_header=False))
        self._thread = threading.Thread(target=self._serve, name="http-api", daemon=True)

    def _serve(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.sock]))

    def start(self) -> None:
        """Serve; returns once it accepts connections (ConfigError if it cannot start)."""
        self._thread.start()
        end = time.monotonic() + START_TIMEOUT_S
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > end:
                self.sock.close()
                raise ConfigError(f"the HTTP API on {self.address} did not start")
            time.sleep(0.01)

    def stop_accepting(self) -> None:
        """Take no new connections; requests in flight go on (until ``close``)."""
        self.server.should_exit = True

    def close(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=30)
        self.sock.close()
