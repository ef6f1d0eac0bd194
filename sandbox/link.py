"""A DEALER connected to a broker, with a socket monitor that says why it is not connected.

Clients and runners both connect this way (``Link`` for the threaded ones; the asyncio client
shares ``prepare`` and ``LinkState`` and reads the monitor in its own loop):

* ZMQ_IMMEDIATE: a message is queued only on a connection whose handshake completed, never
  for a broker that is not there (so nothing sent while the broker is down is delivered
  minutes later), and a send to a broker that is not there fails at once instead of
  blocking;
* the monitor's events are folded into a ``LinkState`` (pure): connected or not, and for a
  CURVE handshake the server refused, the message "the server refused this key" (ZeroMQ
  does not retry a refused connection; ``Link.retry`` does, once per call that needs it);
* ``reach(context, endpoint, curve, timeout_s)`` says whether a broker answers there, and if
  not why, bounded.

Over tcp a peer presents a CURVE key pair: a client's key (``DIR/client.key_secret`` by
default) opens only the client socket, a runner's (``DIR/runner.key_secret``) only the
runner socket.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import Any

import zmq
from zmq.utils.monitor import parse_monitor_message

from broker import protocol as p
from sandbox.errors import ConfigError

RECONNECT_IVL_MS = 100  # ZeroMQ's first reconnect delay, doubled per failure up to the max
RECONNECT_IVL_MAX_MS = 1000  # so a broker that is back is found within a second
# a connection attempt that has no answer (a partition drops the SYN) is given up and tried
# again after this long, instead of waiting out the kernel's SYN retries (about 2 minutes)
CONNECT_TIMEOUT_MS = 2000
# Not set, on purpose: ZMQ_HEARTBEAT_IVL/TTL/TIMEOUT would have ZeroMQ drop a silent
# connection and reconnect on the same socket, which a runner's session already does with a
# fresh socket (``sandbox.host.session``); ZMQ_TCP_KEEPALIVE probes only idle connections,
# and ours carry heartbeats every second. After a partition it is not detection that is
# slow but the old connection: its unacknowledged segments wait for TCP's retransmission
# timer, which doubles while the link is down (0.2 s, 0.4 s, ... up to 2 minutes), so both
# ends stay silent after the link is back. A new connection's SYN goes at once: the runner
# connects again, and the broker holds its tasks meanwhile (``broker.core`` rule 9h).
_EVENTS = (zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_AUTH
           | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
           | zmq.EVENT_DISCONNECTED | zmq.EVENT_CONNECT_RETRIED)


@dataclass(frozen=True)
class CurveClient:
    """CURVE keys for a tcp:// broker: ours, and the broker's public key."""

    public_key: bytes
    secret_key: bytes
    server_key: bytes

    def apply(self, sock: zmq.Socket[Any]) -> None:
        sock.curve_publickey = self.public_key
        sock.curve_secretkey = self.secret_key
        sock.curve_serverkey = self.server_key

    @classmethod
    def load(cls, curve_dir: str, name: str) -> CurveClient:
        """The key pair ``DIR/NAME.key_secret`` and the server's ``DIR/server.key``, as
        ``sandbox keys`` writes them; ConfigError naming the file when one is unusable."""
        import zmq.auth

        mine = os.path.join(curve_dir, f"{name}.key_secret")
        server = os.path.join(curve_dir, "server.key")
        for path in (mine, server):
            # said as it is: ZeroMQ's loader calls a missing file an invalid certificate
            if not os.path.exists(path):
                made = (f"`sandbox keys {curve_dir} --client {name}` makes it, or --runner {name}"
                        if path == mine
                        else f"copy it from the daemon's {os.path.basename(path)}")
                raise ConfigError(f"the key file {path} does not exist ({made})")
        try:
            public, secret = zmq.auth.load_certificate(mine)
            if secret is None:
                raise ValueError(f"{mine} holds no secret key")
            server_key, _ = zmq.auth.load_certificate(server)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load CURVE keys from {curve_dir}: {exc}") from exc
        return cls(public, secret, server_key)


def prepare(sock: zmq.Socket[Any], curve: CurveClient | None, *, immediate: bool = True,
            routing_id: bytes | None = None) -> None:
    """The options every DEALER to a broker has (before it connects). ``immediate=False``
    (runners) queues what is sent before the connection is up: a runner's session is one
    socket, its ``ready`` goes first, and what it sends for an earlier session is dropped.
    A runner's queue has no high-water mark: what it sends is bounded by its slots (one
    ``done`` per task) and its heartbeats, and a ``done`` refused for a full queue would be an
    answer lost. ``routing_id``: the identity the broker knows this peer by, the same on
    every connection (a runner's, for its whole life)."""
    sock.setsockopt(zmq.MAXMSGSIZE, p.MAX_FRAME_BYTES)
    if routing_id is not None:
        sock.setsockopt(zmq.ROUTING_ID, routing_id)
    if not immediate:
        sock.setsockopt(zmq.SNDHWM, 0)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.IMMEDIATE, 1 if immediate else 0)
    sock.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_IVL_MAX_MS)
    sock.setsockopt(zmq.CONNECT_TIMEOUT, CONNECT_TIMEOUT_MS)
    if curve is not None:
        curve.apply(sock)


def monitored(endpoint: str) -> bool:
    """inproc connections have no handshake and no monitor events: they are up at once."""
    return not endpoint.startswith("inproc://")


class LinkState:
    """What the monitor's events say about one connection (pure: events in, state out)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.up = not monitored(endpoint)
        self.refused: str | None = None  # the server refused our key: ZeroMQ will not retry
        self.failure: str | None = None  # the last failed handshake (ZeroMQ retries these)
        # a connection attempt was refused: nothing listens there (or no socket file)
        self.absent = False
        # a send gave up on an unreachable broker, and it has not been up since: the next
        # sends try once and fail at once instead of each waiting its whole queue wait
        self.gave_up = False
        self.drops = 0  # connections that went down after their handshake

    def on_event(self, event: int, value: int = 0) -> None:
        if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            self.up, self.refused, self.failure, self.absent = True, None, None, False
            self.gave_up = False
        elif event == zmq.EVENT_CONNECT_RETRIED:
            self.absent = True
        elif event == zmq.EVENT_DISCONNECTED:
            if self.up:
                self.drops += 1
            self.up = False
        elif event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            self.up = False
            self.refused = f"the server refused this key (broker {self.endpoint}, status {value})"
        elif event in (zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL, zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL):
            self.up = False
            self.failure = (f"the handshake with the broker at {self.endpoint} failed "
                            "(wrong server key, or not a broker?)")

    def send_wait_s(self, wait_s: float) -> float:
        """How long the next send may wait for the socket: none after a give-up, until the
        broker is up again."""
        return 0.0 if self.gave_up and not self.up else wait_s

    def sent(self) -> None:
        self.gave_up = False

    def give_up(self, waited_s: float) -> str:
        """A send could not leave within ``waited_s``: why, and fail the next ones at once."""
        self.gave_up = True
        return self.unreachable(waited_s)

    def unreachable(self, waited_s: float) -> str:
        """Why nothing could be sent within ``waited_s``."""
        if self.refused:
            return self.refused
        if self.failure:
            return f"{self.failure}; gave up after {waited_s:g} s"
        return (f"cannot reach the broker at {self.endpoint} within {waited_s:g} s "
                "(is it running?)")


def reach(context: zmq.Context[Any], endpoint: str, curve: CurveClient | None,
          timeout_s: float) -> str | None:
    """Whether a broker answers at ``endpoint``: None once a handshake with it completed,
    else why not, as soon as that is known: "no daemon at ENDPOINT" when the connection is
    refused (nothing listens there, or no socket file), the server refused our key, a failed
    handshake, or nothing within ``timeout_s`` (a host that drops packets)."""
    link = Link(context, endpoint, curve)
    try:
        end = time.monotonic() + timeout_s
        while True:
            state = link.update()
            if state.up or link.monitor is None:
                return None
            if state.refused or state.failure:
                return state.refused or state.failure
            if state.absent:
                return (f"no daemon at {endpoint} (nothing accepts connections there: is "
                        "`sandbox serve` running?)")
            left = end - time.monotonic()
            if left <= 0:
                return f"no daemon answered at {endpoint} within {timeout_s:g} s"
            link.monitor.poll(max(1, math.ceil(min(left, 0.1) * 1000)))
    finally:
        link.close()


class Link:
    """One DEALER to a broker endpoint and its monitor, for one thread at a time."""

    def __init__(self, context: zmq.Context[Any], endpoint: str, curve: CurveClient | None, *,
                 immediate: bool = True, routing_id: bytes | None = None) -> None:
        self.endpoint = endpoint
        self.state = LinkState(endpoint)
        self.sock = context.socket(zmq.DEALER)
        self.monitor: zmq.Socket[Any] | None = None
        try:
            prepare(self.sock, curve, immediate=immediate, routing_id=routing_id)
            if monitored(endpoint):
                self.monitor = self.sock.get_monitor_socket(_EVENTS)
            self.sock.connect(endpoint)
        except BaseException:
            self.close()
            raise

    def update(self) -> LinkState:
        """Fold the monitor events that arrived into the state (never blocks)."""
        while self.monitor is not None:
            try:
                event = parse_monitor_message(self.monitor.recv_multipart(zmq.NOBLOCK))
            except zmq.Again:
                break
            self.state.on_event(event["event"], event["value"])
        return self.state

    def retry(self) -> None:
        """Connect again after the server refused our key (it may be authorized now)."""
        self.state.refused = None
        try:
            self.sock.disconnect(self.endpoint)
        except zmq.ZMQError:
            pass
        self.sock.connect(self.endpoint)

    def close(self, linger_ms: int = 0) -> None:
        """Close both sockets (see ``close_monitored``)."""
        close_monitored(self.sock, self.monitor, linger_ms)
        self.monitor = None


def close_monitored(sock: zmq.Socket[Any], monitor: zmq.Socket[Any] | None, linger_ms: int = 0) -> None:
    """Close a socket and its monitor, the monitor first (its events stop before its socket
    goes); ``linger_ms``: how long what is still queued may take to leave (in ZeroMQ's I/O
    thread: close itself never waits)."""
    if monitor is not None:
        try:
            sock.disable_monitor()
        except zmq.ZMQError:
            pass
        monitor.close(linger=0)
    sock.close(linger=linger_ms)
