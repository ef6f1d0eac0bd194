"""The broker's thin I/O shell: one ROUTER socket around ``BrokerCore``.

Clients and runners both connect to the ROUTER (each with a DEALER); the message type tells
which is which. Every frame is decoded by ``protocol.decode``; a frame that does not parse is
answered with ``rejected`` and counted, and the loop goes on. The socket's ZMQ_MAXMSGSIZE
caps a frame before it is even read into memory.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import zmq

from broker import protocol as p
from broker.core import BrokerConfig, BrokerCore, Send

log = logging.getLogger("sandbox.broker")

_POLL_MS = 50  # the longest the loop sleeps between ticks


@dataclass(frozen=True)
class CurveServer:
    """CURVE for a tcp:// endpoint: the broker's key pair and the clients it lets in."""

    public_key: bytes
    secret_key: bytes
    authorized_dir: str  # public key certificates of allowed clients and runners


class BrokerServer:
    """Binds, then ``serve(stop)`` until ``stop`` is set.

    ``observe(kind, peer, message)`` sees every event ("received", "sent", "malformed") in
    the loop's thread, under ``lock``; metrics hang off it."""

    def __init__(
        self,
        endpoints: list[str],
        config: BrokerConfig | None = None,
        *,
        context: zmq.Context | None = None,
        curve: CurveServer | None = None,
        observe: Callable[[str, bytes, p.Message | str], None] | None = None,
    ) -> None:
        self.core = BrokerCore(config)
        self.context = context or zmq.Context.instance()
        self.observe = observe or (lambda kind, peer, payload: None)
        self.draining = False
        self._auth = None
        self.socket = self.context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.MAXMSGSIZE, p.MAX_FRAME_BYTES)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.ROUTER_HANDOVER, 1)  # a reconnecting peer keeps its identity
        if curve is not None:
            from zmq.auth.thread import ThreadAuthenticator

            self._auth = ThreadAuthenticator(self.context)
            self._auth.start()
            self._auth.configure_curve(domain="*", location=curve.authorized_dir)
            self.socket.curve_server = True
            self.socket.curve_publickey = curve.public_key
            self.socket.curve_secretkey = curve.secret_key
        for endpoint in endpoints:
            self._bind(endpoint)
        self.endpoints = [self.socket.getsockopt_string(zmq.LAST_ENDPOINT)] if endpoints else []
        self.lock = threading.Lock()  # guards core for readers of stats from other threads

    def _bind(self, endpoint: str) -> None:
        if endpoint.startswith("ipc://"):
            path = endpoint[len("ipc://"):]
            old = os.umask(0o177)  # the socket file is created 0600: only our user may connect
            try:
                self.socket.bind(endpoint)
            finally:
                os.umask(old)
            os.chmod(path, 0o600)
        else:
            self.socket.bind(endpoint)

    def serve(self, stop: threading.Event) -> None:
        poller = zmq.Poller()
        poller.register(self.socket, zmq.POLLIN)
        while not stop.is_set():
            if poller.poll(_POLL_MS):
                self._drain_socket()
            self._emit(self._tick())

    def _drain_socket(self) -> None:
        # read everything that is waiting before the next tick: batches under load
        for _ in range(1000):
            try:
                frames = self.socket.recv_multipart(zmq.NOBLOCK, copy=True)
            except zmq.Again:
                return
            try:
                sends = self._handle(frames)
            except Exception:  # a bug must cost one message, never the broker
                log.exception("handling a message failed; it is dropped")
                with self.lock:
                    self.core.counters["internal_error"] += 1
                continue
            self._emit(sends)

    def _handle(self, frames: list[bytes]) -> list[Send]:
        now = time.monotonic()
        sender = frames[0]
        with self.lock:
            if len(frames) != 2:
                return self.core.on_malformed(sender, "a message is exactly one frame", None)
            try:
                msg = p.decode(frames[1])
            except p.ProtocolError as exc:
                self.observe("malformed", sender, str(exc))
                return self.core.on_malformed(sender, str(exc), exc.msg_id)
            self.observe("received", sender, msg)
            if isinstance(msg, p.CLIENT_MESSAGES):
                if self.draining and isinstance(msg, p.Submit):
                    return [Send(sender, p.Rejected(msg.id, "the broker is shutting down"))]
                return self.core.on_client(sender, msg, now)
            if isinstance(msg, p.RUNNER_MESSAGES):
                return self.core.on_runner(sender, msg, now)
            return self.core.on_malformed(sender, f"unexpected message type {msg.TYPE!r}", None)

    def _tick(self) -> list[Send]:
        with self.lock:
            return self.core.tick(time.monotonic())

    def _emit(self, sends: list[Send]) -> None:
        for send in sends:
            with self.lock:
                self.observe("sent", send.to, send.msg)
            try:
                self.socket.send_multipart([send.to, p.encode(send.msg)], zmq.NOBLOCK)
            except zmq.ZMQError as exc:  # a vanished peer or a full pipe: the message is lost
                self.core.counters["send_failed"] += 1
                log.debug("send to %r failed: %s", send.to, exc)

    def drain(self, grace_s: float, stop: threading.Event) -> None:
        """Stop taking work, let in-flight tasks finish within ``grace_s``, cancel the rest."""
        self.draining = True
        end = time.monotonic() + grace_s
        poller = zmq.Poller()
        poller.register(self.socket, zmq.POLLIN)
        while time.monotonic() < end and (self.core.running or self.core.queued):
            if poller.poll(_POLL_MS):
                self._drain_socket()
            self._emit(self._tick())
        with self.lock:
            sends: list[Send] = []
            for task in list(self.core.queued.values()):
                sends += self.core.on_client(task.client, p.Cancel(task.submit.id), time.monotonic())
            for task in list(self.core.running.values()):
                sends += self.core.on_client(task.client, p.Cancel(task.submit.id), time.monotonic())
        self._emit(sends)
        stop.set()

    def close(self) -> None:
        self.socket.close(linger=0)
        if self._auth is not None:
            self._auth.stop()
