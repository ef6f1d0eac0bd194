"""The broker's thin I/O shell: ROUTER sockets around ``BrokerCore``.

Clients connect to a client socket, runners to a runner socket (over tcp each has its
own CURVE key set and ZAP domain; over ipc the runner socket is a file only the service
user can open), so what a peer may say follows from where it connected, never from what it
claims. A role's endpoints are served by one socket per security: its tcp endpoints by a
CURVE socket when keys are given, its ipc (and inproc) endpoints by a plain one, guarded by
the socket file's mode, so ``--bind ipc://X --bind tcp://Y --curve-dir K`` asks no key of a
local client. The core knows a peer by its routing id behind one byte naming its socket:
peers of two sockets never share an identity, and a principal comes from the socket's
transport (a CURVE key, or a connection or uid).

Every frame is decoded by ``protocol.decode``; a frame that does not parse is
answered with ``rejected`` (clients) or counted (runners), and the loop goes on. The
sockets' ZMQ_MAXMSGSIZE caps a frame before it is even read into memory (ZeroMQ then drops
that connection, which is counted).

No answer of an accepted task is dropped: the sockets are ROUTER_MANDATORY, so a peer whose
pipe is full makes the send fail instead of vanishing; its messages wait in an outbox, in
order, and are retried until its socket takes them (and the core counts them against the
client's cap, so it accepts no task whose answer could not wait). Only refusals (of submits
the core did not take on, of malformed frames, pongs) beyond ``max_per_client`` +
``_OUTBOX_SLACK`` waiting messages are dropped, and counted: a client that keeps sending
without reading cannot grow the broker. A peer the socket cannot reach any more is reported
to the core (its tasks are cancelled, or the runner is lost).
"""

from __future__ import annotations

from typing import Any, cast

import errno
import functools
import hashlib
import logging
import os
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

import zmq
from zmq.utils.monitor import parse_monitor_message

from broker import protocol as p
from broker.auth import CLIENTS, RUNNERS, Authenticator, CurveServer, make_server
from broker.core import BrokerConfig, BrokerCore, Outcome, Send
from broker.errors import BrokerConfigError

__all__ = ["BrokerServer", "CurveServer"]

log = logging.getLogger("sandbox.broker")

_POLL_MS = 50  # the longest the loop sleeps between ticks
_RETRY_MS = 5  # how soon a full peer's outbox is tried again
_READ_BATCH = 1000  # frames read from one socket before the loop looks at the other
_OUTBOX_SLACK = 1024  # refusals an outbox may hold beyond the per-client cap
_FLUSH_ON_CLOSE_S = 1.0  # how long the last answers may take to leave at the end of a drain
_CLIENT, _RUNNER = 0, 1
# plain ints: the enum members' ``&`` builds an enum (about 1 us, on every message)
_EVENTS, _POLLIN = int(zmq.EVENTS), int(zmq.POLLIN)
_ROLE_NAMES = ("client", "runner")


class _Socket:
    """One ROUTER: its role, whether it has CURVE, and who its clients are."""

    def __init__(self, sock: zmq.Socket[Any], role: int, curve: bool) -> None:
        self.sock = sock
        self.role = role
        self.curve = curve
        self.by_uid = False  # its ipc clients' principal is their uid (ipc_principal "uid")


class BrokerServer:
    """Binds both sockets, then ``serve(stop)`` until ``stop`` is set.

    ``on_outcome(outcome)`` is called once per finished task, in the loop's thread, under
    ``lock``: metrics hang off it. ``lock`` guards ``core`` for readers in other threads."""

    def __init__(
        self,
        endpoints: Sequence[str],
        config: BrokerConfig | None = None,
        *,
        runner_endpoints: Sequence[str] = (),
        context: zmq.Context[Any] | None = None,
        curve: CurveServer | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> None:
        self.core = BrokerCore(config)
        self.context = context or zmq.Context.instance()
        self.on_outcome = on_outcome or (lambda outcome: None)
        self.lock = threading.Lock()
        self.auth: Authenticator | None = None
        self._created: list[tuple[str, int]] = []  # ipc socket files we made: (path, inode)
        self._outbox: dict[bytes, deque[bytes]] = {}  # by the core's identity of the peer
        self._overflowing: set[bytes] = set()  # peers told of in the log
        self._sockets: list[zmq.Socket[Any]] = []
        self._routers: list[_Socket] = []  # the core's identity of a peer starts with its index
        self._monitors: list[zmq.Socket[Any]] = []
        self._runner_events = 0  # registrations and losses the log has said
        # the registered runners, as the log named them: (name, what it serves)
        self._runners: dict[bytes, tuple[str, str]] = {}
        try:
            wants_curve = [curve is not None and any(e.startswith("tcp://") for e in group)
                           for group in (endpoints, runner_endpoints)]
            if curve is not None and any(wants_curve):
                domains = [d for d, on in zip((CLIENTS, RUNNERS), wants_curve, strict=True) if on]
                self.auth = Authenticator(self.context, curve, domains)
            self.endpoints = self._serve(_CLIENT, endpoints, curve, CLIENTS)
            self.runner_endpoints = self._serve(_RUNNER, runner_endpoints, curve, RUNNERS)
        except BaseException:
            self.close()
            raise

    # -- set-up -----------------------------------------------------------------------------

    def _serve(self, role: int, endpoints: Sequence[str], curve: CurveServer | None,
               domain: str) -> list[str]:
        """Bind a role's endpoints: tcp ones on a CURVE socket when there are keys, the
        others on a plain one; the bound endpoints, in the order given."""
        secure = {e for e in endpoints if curve is not None and e.startswith("tcp://")}
        routers: dict[bool, _Socket] = {}
        for on in (True, False):
            if any((e in secure) == on for e in endpoints):
                router = _Socket(self._router(curve if on else None, domain), role, on)
                # who a client is (core rule 7t): its CURVE key on a CURVE socket; else its
                # connection, or its uid where the operator shares principals by uid (ipc)
                router.by_uid = (self.core.config.ipc_principal == "uid" and not on and all(
                    e.startswith("ipc://") for e in endpoints if e not in secure))
                routers[on] = router
                self._routers.append(router)
        return [self._bind(routers[e in secure].sock, e) for e in endpoints]

    def _router(self, curve: CurveServer | None, domain: str) -> zmq.Socket[Any]:
        sock: zmq.Socket[Any] = self.context.socket(zmq.ROUTER)
        self._sockets.append(sock)
        sock.setsockopt(zmq.MAXMSGSIZE, p.MAX_FRAME_BYTES)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.ROUTER_HANDOVER, 1)  # a reconnecting peer keeps its identity
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)  # a full or vanished peer is an error, not a drop
        if curve is not None:
            make_server(sock, curve, domain)
        self._monitors.append(sock.get_monitor_socket(
            zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
            | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL))
        return sock

    def _bind(self, sock: zmq.Socket[Any], endpoint: str) -> str:
        if not endpoint.startswith("ipc://"):
            _bind_or_say(sock, endpoint)
            return sock.getsockopt_string(zmq.LAST_ENDPOINT)
        path = endpoint[len("ipc://"):]
        _refuse_if_taken(endpoint, path)
        old = os.umask(0o177)  # the socket file is created 0600: only our user may connect
        try:
            _bind_or_say(sock, endpoint)
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        self._created.append((path, os.stat(path).st_ino))
        return sock.getsockopt_string(zmq.LAST_ENDPOINT)

    # -- the loop -----------------------------------------------------------------------------

    def serve(self, stop: threading.Event) -> None:
        self._loop(stop.is_set)

    def _loop(self, done: Callable[[], bool]) -> None:
        poller = zmq.Poller()
        for sock in (*(r.sock for r in self._routers), *self._monitors):
            poller.register(sock, zmq.POLLIN)
        while not done():
            events = dict(poller.poll(_RETRY_MS if self._outbox else _POLL_MS))
            for index, router in enumerate(self._routers):
                if router.sock in events:
                    self._read(index, router)
            for monitor in self._monitors:
                if monitor in events:
                    self._read_monitor(monitor)
            if self._outbox:
                self._flush()
            self._emit(self._core(lambda now: self.core.tick(now)))

    def _read(self, index: int, router: _Socket) -> None:
        # read what is waiting before the next tick: batches under load
        sock = router.sock
        prefix = bytes([index])
        for _ in range(_READ_BATCH):
            try:
                # the identity the ROUTER put first, behind its socket's byte
                sender = prefix + sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            # the body is not copied: it is decoded from ZeroMQ's own buffer, and its frame
            # carries who sent it (the CURVE key, the peer's address). A message arrives whole,
            # so its other frames are there already.
            body = sock.recv(copy=False)
            extra = 0
            while body.more:  # a message of several frames: refused, read to its end
                body = sock.recv(copy=False)
                extra += 1
            try:
                sends = self._handle(router, sender, body, extra)
            except Exception:  # a bug must cost one message, never the broker
                log.exception("handling a message failed; it is dropped")
                with self.lock:
                    self.core.counters["internal_error"] += 1
                continue
            finally:
                del body  # a large frame is not kept while the loop waits for the next
            self._emit(sends)
            if not cast(int, sock.get(_EVENTS)) & _POLLIN:  # the batch is over: no Again
                return

    def _handle(self, router: _Socket, sender: bytes, body: zmq.Frame,
                extra: int) -> list[Send]:
        runner = router.role == _RUNNER
        if extra:
            return self._core(lambda now: self.core.on_malformed(
                sender, "a message is exactly one frame", None, from_runner=runner))
        msg, error, msg_id = _decode(body)
        if msg is None:
            if runner:
                log.warning("malformed message from runner %s: %s", sender.hex(), error)
            return self._core(lambda now: self.core.on_malformed(
                sender, error, msg_id, from_runner=runner))
        if runner:
            return self._core(lambda now: self.core.on_runner(sender, msg, now))
        principal = self._principal(router, sender, body, msg)
        return self._core(lambda now: self.core.on_client(sender, msg, now, principal))

    def _principal(self, router: _Socket, sender: bytes, frame: zmq.Frame,
                   msg: p.Message) -> str:
        """Who sent a client's message, as the transport says: the CURVE key; over ipc the
        connection, or the uid where the operator says so. A message's own word counts only
        beside the kernel's: connections of one process (its pid, from SO_PEERCRED) that send
        the same client secret are one principal (a secret of 16 random bytes, so no other
        client names it by chance, and the pid, so no other process can by design)."""
        if router.curve:  # the key ZAP let in, z85
            try:
                return f"curve:{frame.get('User-Id')}"
            except zmq.ZMQError:  # an inproc peer: no handshake, no key; it is its connection
                pass
        try:
            peer = str(frame.get("Peer-Address"))  # over ipc: "host:uid:gid:pid" (SO_PEERCRED)
        except zmq.ZMQError:  # inproc has none
            peer = ""
        return _transport_principal(router.by_uid, peer, getattr(msg, "client_secret", None),
                                    sender)

    def _core(self, event: Callable[[float], list[Send]]) -> list[Send]:
        """Feed one event to the core under the lock; hand its outcomes to ``on_outcome``."""
        with self.lock:
            sends = event(time.monotonic())
            if self.core.outcomes:
                for outcome in self.core.take_outcomes():
                    self.on_outcome(outcome)
            counters = self.core.counters
            if (counters["runners_registered"] + counters["runners_lost"]
                    + counters["runners_left"]) != self._runner_events:
                self._log_runners()
        return sends

    def _log_runners(self) -> None:
        """A line for each runner that registered or was lost since the last look (under
        the lock): what an operator reads to see capacity come and go."""
        counters = self.core.counters
        self._runner_events = (counters["runners_registered"] + counters["runners_lost"]
                               + counters["runners_left"])
        now = {identity: (r.name or identity.hex(), _serves(r.runtimes, r.slots))
               for identity, r in self.core.runners.items()}
        for identity, (name, _) in self._runners.items():
            if now.get(identity) != self._runners[identity]:
                log.info("runner %s is gone (%d registered)", name, len(now))
        for identity, (name, serves) in now.items():
            if self._runners.get(identity) != now[identity]:
                log.info("runner %s registered: %s (%d registered)", name, serves, len(now))
        self._runners = now

    def _read_monitor(self, monitor: zmq.Socket[Any]) -> None:
        while True:
            try:
                event = parse_monitor_message(monitor.recv_multipart(zmq.NOBLOCK))
            except zmq.Again:
                return
            name = ("disconnects" if event["event"] == zmq.EVENT_DISCONNECTED
                    else "handshakes_failed")
            with self.lock:
                self.core.counters[name] += 1

    # -- sending: in order per peer, never dropped silently -------------------------------------

    def _emit(self, sends: list[Send]) -> None:
        for send in sends:
            try:
                frame = p.encode(send.msg)
            except p.ProtocolError:  # cannot happen for what the core builds; never fatal
                log.exception("a message could not be encoded; it is dropped")
                with self.lock:
                    self.core.counters["internal_error"] += 1
                continue
            if isinstance(send.msg, p.Output):
                self._send_output(send.to, frame)
            else:
                self._send(send.to, frame, send.droppable)

    def _send_output(self, to: bytes, frame: bytes) -> None:
        """A streaming task's output goes now or not at all (core rule 10s): never into the
        outbox, so that a client that does not read (or a runner's flood) holds no memory
        here beyond the socket's own high-water mark; the result carries it all anyway."""
        if to not in self._outbox:
            try:
                self._routers[to[0]].sock.send_multipart([to[1:], frame], zmq.NOBLOCK)
                return
            except zmq.ZMQError:
                pass
        with self.lock:
            self.core.counters["output_dropped"] += 1

    def _send(self, to: bytes, frame: bytes, droppable: bool = False) -> None:
        key = to
        router = self._routers[to[0]]
        role = router.role
        queue = self._outbox.get(key)
        if queue is not None:  # behind earlier messages to the same peer
            # only a refusal is ever dropped: an accepted task's answer always waits (the
            # core accepts no more of a client's tasks than its cap counts, unread included)
            if droppable and len(queue) >= self.core.config.max_per_client + _OUTBOX_SLACK:
                with self.lock:
                    self.core.counters["refusals_dropped"] += 1
                if key not in self._overflowing:  # once until its socket takes them again
                    self._overflowing.add(key)
                    log.warning("dropping refusals to %s %s: %d messages wait for it already "
                                "(counted as refusals_dropped)", _ROLE_NAMES[role], to.hex(),
                                len(queue))
                return
            queue.append(frame)
            self._backlog(role, to, len(queue))
            return
        try:
            router.sock.send_multipart([to[1:], frame], zmq.NOBLOCK)
        except zmq.Again:
            self._outbox[key] = deque([frame])
            with self.lock:
                self.core.counters["answers_deferred"] += 1
            self._backlog(role, to, 1)
        except zmq.ZMQError as exc:
            self._send_failed(role, to, exc)

    def _flush(self) -> None:
        for key in list(self._outbox):
            to = key
            router = self._routers[to[0]]
            role, sock = router.role, router.sock
            queue = self._outbox[key]
            try:
                while queue:
                    sock.send_multipart([to[1:], queue[0]], zmq.NOBLOCK)
                    queue.popleft()
            except zmq.Again:
                pass
            except zmq.ZMQError as exc:
                del self._outbox[key]
                self._send_failed(role, to, exc)
                continue
            if not queue:
                del self._outbox[key]
                self._overflowing.discard(key)
            self._backlog(role, to, len(queue))

    def _backlog(self, role: int, to: bytes, count: int) -> None:
        if role == _CLIENT:
            with self.lock:
                self.core.on_backlog(to, count)

    def _send_failed(self, role: int, to: bytes, exc: zmq.ZMQError) -> None:
        self._outbox.pop(to, None)
        self._overflowing.discard(to)
        if exc.errno != errno.EHOSTUNREACH:
            log.warning("send to %s %s failed: %s", _ROLE_NAMES[role], to.hex(), exc)
            with self.lock:
                self.core.counters["send_failed"] += 1
            return
        with self.lock:
            self.core.counters[f"{_ROLE_NAMES[role]}_unreachable"] += 1
        if role == _RUNNER:
            sends = self._core(lambda now: self.core.on_runner_gone(to, now))
        else:
            sends = self._core(lambda now: self.core.on_client_gone(to, now))
        self._emit(sends)

    def backlog(self) -> int:
        """Messages waiting in outboxes for peers whose sockets are full."""
        return sum(len(q) for q in self._outbox.values())

    # -- draining ------------------------------------------------------------------------------

    @property
    def draining(self) -> bool:
        return self.core.draining

    def drain(self, grace_s: float, stop: threading.Event) -> None:
        """Start no more work: queued tasks are answered at once ("the broker is shutting
        down"); in-flight tasks get ``grace_s`` to finish, then are cancelled."""
        self._emit(self._core(lambda now: self.core.drain(now)))
        end = time.monotonic() + grace_s
        self._loop(lambda: time.monotonic() >= end or not self.core.running)
        self._emit(self._core(lambda now: self.core.shutdown(now)))
        end = time.monotonic() + _FLUSH_ON_CLOSE_S
        while self._outbox and time.monotonic() < end:
            self._flush()
            time.sleep(_RETRY_MS / 1000)
        stop.set()

    def close(self) -> None:
        for sock in self._sockets:
            try:
                sock.disable_monitor()
            except zmq.ZMQError:
                pass
        for monitor in self._monitors:
            monitor.close(linger=0)
        for sock in self._sockets:
            sock.close(linger=0)
        if self.auth is not None:
            self.auth.stop()
            self.auth = None
        for path, inode in self._created:  # only what is still ours: a successor's stays
            try:
                if os.stat(path).st_ino == inode:
                    os.unlink(path)
            except OSError:
                pass
        self._created = []


def _decode(frame: zmq.Frame) -> tuple[p.Message | None, str, str | None]:
    """The message a frame holds, or None with why it was refused and its id (when one could
    be read). Only text leaves here, never the exception: its traceback holds the frame, and
    an exception kept (by a closure, say) makes a cycle that holds the frame's bytes until the
    next cyclic collection (a flood of refused frames inflated the broker by gigabytes)."""
    try:
        return p.decode(frame.buffer), "", None
    except p.ProtocolError as exc:
        return None, str(exc), exc.msg_id


@functools.lru_cache(maxsize=4096)
def _transport_principal(by_uid: bool, peer: str, secret: bytes | None, sender: bytes) -> str:
    """The principal of a client's message that is not CURVE's (``BrokerServer._principal``):
    a function of what the transport and the message say alone, so it is worked out once per
    connection and client secret, not per message (a hash and a parse per task)."""
    creds = ipc_credentials(peer)
    if creds is not None:
        uid, _, pid = creds
        if by_uid:
            return f"uid:{uid}"
        if secret is not None and pid > 0:
            return f"proc:{uid}:{pid}/{hashlib.blake2b(secret, digest_size=16).hexdigest()}"
    # the connection: its routing id, and where it comes from (over ipc its process), so
    # that a peer that takes over another's routing id does not take over its principal
    return f"conn:{peer}/{sender.hex()}"


def ipc_credentials(peer: str) -> tuple[int, int, int] | None:
    """(uid, gid, pid) of an ipc peer from its "Peer-Address" ("host:uid:gid:pid", which
    ZeroMQ reads with SO_PEERCRED); None for any other peer. A tcp peer's address never
    reads as one: an IPv4 address has no colon, and an IPv6 one leaves a colon in the host
    part or an empty field among the last three."""
    fields = peer.rsplit(":", 3)
    if len(fields) != 4 or ":" in fields[0] or not all(f.isdigit() for f in fields[1:]):
        return None
    return int(fields[1]), int(fields[2]), int(fields[3])


def _serves(runtimes: dict[str, str], slots: int) -> str:
    return ", ".join(f"{rt} {v}" for rt, v in sorted(runtimes.items())) + f", {slots} slots"


def _bind_or_say(sock: zmq.Socket[Any], endpoint: str) -> None:
    """Bind, or BrokerConfigError naming the endpoint ("tcp://0.0.0.0:7700: address already in
    use"), not ZeroMQ's bare "Address already in use"."""
    try:
        sock.bind(endpoint)
    except zmq.ZMQError as exc:
        why = os.strerror(exc.errno) if exc.errno and exc.errno in errno.errorcode else str(exc)
        raise BrokerConfigError(f"cannot bind {endpoint}: {why.lower()}") from exc


def _refuse_if_taken(endpoint: str, path: str) -> None:
    """ZeroMQ unlinks whatever is at an ipc path before it binds: refuse a path that a live
    process is serving (naming it) or that is not a socket at all; a stale socket is fine."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    import stat

    if not stat.S_ISSOCK(mode):
        raise BrokerConfigError(f"{endpoint}: {path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        return  # left behind by a process that is gone
    except OSError as exc:
        raise BrokerConfigError(f"{endpoint}: cannot tell whether {path} is in use: {exc}") from exc
    else:
        creds = probe.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid = struct.unpack("3i", creds)[0]
        raise BrokerConfigError(f"{endpoint} is already in use by pid {pid}")
    finally:
        probe.close()
