"""An ASGI application served by uvicorn in a thread of its own: the one HTTP server of the
project (the HTTP/JSON API, and the probes and metrics of ``sandbox serve`` and
``sandbox n8n-runner``).

Why uvicorn: it is the reference ASGI server (h11 underneath, HTTP/1.1 with keep-alive,
maintained by the encode/Starlette team), already what the API runs on; one event loop in
one thread holds every connection, so a probe or a scrape never takes a thread of the
program it watches, and a slow client costs nothing but a socket.

The listening socket is bound here, in the caller's thread, so an address in use is a
ConfigError before anything starts (and port 0 gives a free port, which ``address`` names).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any, Literal, Self

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from sandbox.errors import ConfigError

START_TIMEOUT_S = 30.0


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


def bind(address: str, name: str) -> socket.socket:
    """A listening TCP socket on HOST:PORT (``[::1]:80`` for IPv6; an empty host is every
    interface), Nagle off; ConfigError naming the setting ``name`` when it cannot be bound."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets that
    # say they are TCP, and with Nagle on, a response written as head and body waits for the
    # client's delayed ACK: 40 ms a request
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, int(port)))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot serve {name} on {address}: {exc.strerror or exc}") from exc
    return sock


class ThreadedServer:
    """``app`` on ``address`` in a thread: ``start()`` returns once it accepts connections,
    ``stop_accepting()`` takes no new ones, ``close()`` stops it, letting requests in flight
    finish within ``grace_s``. ``name`` is what a ConfigError calls it."""

    def __init__(self, app: Any, address: str, *, name: str, read_timeout_s: float = 10.0,
                 grace_s: float = 1.0, lifespan: Literal["on", "off"] = "off") -> None:
        self.sock = bind(address, name)
        host = self.sock.getsockname()[0]
        self.address = f"[{host}]:{self.sock.getsockname()[1]}" if ":" in host else (
            f"{host}:{self.sock.getsockname()[1]}")
        self.name = name
        self.server = uvicorn.Server(uvicorn.Config(
            app, http=timed_head(read_timeout_s),
            log_level="warning", access_log=False,  # a log line could carry a key
            lifespan=lifespan, timeout_graceful_shutdown=int(grace_s) + 1,
            server_header=False))
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)

    def _serve(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.sock]))

    def start(self) -> Self:
        """Serve; returns once it accepts connections (ConfigError if it cannot start)."""
        self._thread.start()
        end = time.monotonic() + START_TIMEOUT_S
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > end:
                self.sock.close()
                raise ConfigError(f"{self.name} on {self.address} did not start")
            time.sleep(0.01)
        return self

    def stop_accepting(self) -> None:
        """Take no new connections; requests in flight go on (until ``close``)."""
        self.server.should_exit = True

    def close(self) -> None:
        self.server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self.sock.close()
