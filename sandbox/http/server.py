"""The HTTP API's server in ``sandbox serve``: uvicorn in a thread of the daemon, its tasks
sent to the daemon's broker through our own ``AsyncClient``.

Why these: uvicorn is the reference ASGI server (h11 underneath, maintained by the
encode/Starlette team, asyncio), and an async server needs no thread per waiting request:
one event loop holds every HTTP request that waits for its task. ``AsyncClient`` runs in that
same loop on one DEALER socket, so a request's path is loop -> socket -> broker with no
hand-off between threads, and the broker sees one more client, under the same rules (queue
caps, deadlines, drain) as any other. The sync ``Client`` in a thread pool would cap the
requests in flight at the pool's size and add a thread hand-off to every call.

The server itself, its socket and its thread are ``sandbox.http.serving``'s, shared with
the probes and metrics of the daemon and of the n8n runner.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from sandbox.client.aio import AsyncClient
from sandbox.config import ServiceConfig
from sandbox.http.app import make_app
from sandbox.http.keys import ApiKeys
from sandbox.http.mapping import SessionOpen
from sandbox.http.serving import ThreadedServer
from sandbox.request import Options, Request
from sandbox.result import OutputChunk, Result, Status

log = logging.getLogger("sandbox.http")
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


class ApiServer(ThreadedServer):
    """uvicorn serving the API on ``config.api_bind`` in a thread (``ThreadedServer``);
    ``close()`` stops it, letting requests in flight finish within ``grace_s``."""

    def __init__(self, config: ServiceConfig, endpoint: str,
                 runtimes: Callable[[], list[tuple[Mapping[str, str], int]]], version: str) -> None:
        keys = ApiKeys.load(config.api_keys_file) if config.api_keys_file else None
        app = make_app(lambda: BrokerBackend(endpoint, runtimes, config.queue_timeout_s),
                       keys=keys, body_bytes=config.api_body_bytes,
                       body_timeout_s=config.api_read_timeout_s, version=version)
        super().__init__(app, config.api_bind, name="the HTTP API",
                         read_timeout_s=config.api_read_timeout_s, grace_s=config.grace_s,
                         lifespan="on")
