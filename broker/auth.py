"""Who may connect over CURVE: one key ring per broker socket, checked by pyzmq's ZAP thread.

Clients and runners connect to different sockets, each with its own ZAP domain and its own
directory of authorized public keys (``sandbox keys`` writes ``authorized/`` for clients and
``runners/`` for runners), so a client's key can never open the runner socket. Every refused
key is counted and logged (once a minute per key, so a peer retrying cannot flood the log).
"""

from __future__ import annotations

from typing import Any

import errno
import logging
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass

import zmq

from broker.errors import BrokerConfigError

log = logging.getLogger("sandbox.broker")

CLIENTS = "clients"  # the ZAP domain of the client socket
RUNNERS = "runners"  # the ZAP domain of the runner socket
_LOG_EVERY_S = 60.0
_ZAP_BIND_WAIT_S = 5.0  # the most a new authenticator waits for an earlier one's ZAP endpoint


@dataclass(frozen=True)
class CurveServer:
    """CURVE for the broker's tcp:// sockets: its key pair and who may connect to which."""

    public_key: bytes
    secret_key: bytes
    authorized_dir: str  # public keys of the clients that may connect
    runners_dir: str  # public keys of the runners that may connect


class KeyRing:
    """The public keys allowed in one ZAP domain (z85), as pyzmq's credentials provider."""

    def __init__(self, domain: str, directory: str, refusals: Counter[str],
                 lock: threading.Lock) -> None:
        import zmq.auth

        if not os.path.isdir(directory):
            raise BrokerConfigError(f"no directory of authorized {domain}' keys at {directory} "
                              "(see `sandbox keys`)")
        self.domain, self.directory = domain, directory
        self.keys = frozenset(zmq.auth.load_certificates(directory))
        self._refusals, self._lock = refusals, lock
        self._logged: dict[bytes, float] = {}

    def callback(self, domain: str, key: bytes) -> bool:
        if key in self.keys:
            return True
        with self._lock:
            self._refusals[self.domain] += 1
        now = time.monotonic()
        if now - self._logged.get(key, -_LOG_EVERY_S) >= _LOG_EVERY_S:
            if len(self._logged) > 10_000:
                self._logged.clear()
            self._logged[key] = now
            log.warning("refused CURVE key %s on the %s socket: not in %s",
                        key.decode("ascii", "replace"), self.domain, self.directory)
        return False


class Authenticator:
    """pyzmq's ZAP handler thread with one key ring per domain served (``CLIENTS``,
    ``RUNNERS``); ``refusals`` counts refused keys by domain."""

    def __init__(self, context: zmq.Context[Any], curve: CurveServer, domains: list[str]) -> None:
        from zmq.auth.thread import ThreadAuthenticator

        self.lock = threading.Lock()
        self.refusals: Counter[str] = Counter()
        where = {CLIENTS: curve.authorized_dir, RUNNERS: curve.runners_dir}
        rings = [KeyRing(domain, where[domain], self.refusals, self.lock) for domain in domains]
        # libzmq frees the ZAP endpoint (a fixed inproc address of the context) of an earlier
        # authenticator when its reaper gets to the closed socket, not when close() returns:
        # a broker started right after another in one process may find it still taken
        deadline = time.monotonic() + _ZAP_BIND_WAIT_S
        while True:
            self._thread = ThreadAuthenticator(context)
            try:
                self._thread.start()
                break
            except zmq.ZMQError as exc:
                self._thread.stop()
                if exc.errno != errno.EADDRINUSE or time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)
        for ring in rings:
            self._thread.configure_curve_callback(ring.domain, ring)

    def refused(self) -> dict[str, int]:
        with self.lock:
            return dict(self.refusals)

    def stop(self) -> None:
        self._thread.stop()


def make_server(sock: zmq.Socket[Any], curve: CurveServer, domain: str) -> None:
    """Turn ``sock`` into a CURVE server whose peers are checked in ``domain``."""
    sock.zap_domain = domain.encode()
    sock.curve_server = True
    sock.curve_publickey = curve.public_key
    sock.curve_secretkey = curve.secret_key
