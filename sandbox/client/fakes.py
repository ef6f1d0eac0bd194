"""In-package fakes of the service's peers, for the unit tier of the clients and the broker.

* ``FakeBroker``: a real ROUTER socket that answers a client as a script says (at once,
  late, twice, for ids nobody asked about, never) and records what it received: the
  clients' shells are tested against it without a runner or a jail.
* ``FakeRunner``: speaks the runner protocol to a real ``BrokerServer`` (answers each task
  with an ``ok`` result after a delay, honours cancels): the broker's shell is tested with
  real sockets and no jail.

Both are real ZeroMQ peers on real sockets; only what stands behind them is scripted. The
real broker and runner are tested beside them (tests/integration).
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import zmq

from broker import protocol as p
from broker.auth import CLIENTS, Authenticator, CurveServer, make_server
from runtimes import codec, outcome
from runtimes.outcome import Status
from sandbox.link import CurveClient, Link

Script = Callable[[p.Submit], Sequence[tuple[float, p.Message]]]


def ok_result(task_id: str, value: Any = None, attempts: int = 1) -> p.ResultMsg:
    """The answer a runner's ``ok`` result makes, envelope and all."""
    envelope = outcome.encode(Status.OK, "ok", value=codec.encode(value))
    return p.ResultMsg(task_id, p.OK, "", envelope, attempts)


def answer_at_once(submit: p.Submit) -> list[tuple[float, p.Message]]:
    """The default script: every task returns its id, at once."""
    return [(0.0, ok_result(submit.id, submit.id))]


class _Peer:
    """A thread that owns one socket and sends scripted messages at their times."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._later: list[tuple[float, int, list[bytes]]] = []
        self._dropped: set[int] = set()
        self._seq = itertools.count()
        self._thread = threading.Thread(target=self._run, daemon=True, name=type(self).__name__)

    def _schedule(self, delay_s: float, frames: list[bytes]) -> int:
        seq = next(self._seq)
        heapq.heappush(self._later, (time.monotonic() + delay_s, seq, frames))
        return seq

    def _run(self) -> None:
        sock = self._socket()
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                while self._later and self._later[0][0] <= now:
                    _, seq, frames = heapq.heappop(self._later)
                    if seq in self._dropped:
                        self._dropped.discard(seq)
                        continue
                    try:
                        sock.send_multipart(frames, zmq.NOBLOCK)
                    except zmq.ZMQError:
                        pass  # a fake may lose what a full or vanished peer cannot take
                wait = min(0.05, self._later[0][0] - now) if self._later else 0.05
                if poller.poll(max(1, int(wait * 1000))):
                    while True:
                        try:
                            frames = sock.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        self._on_frames(frames, time.monotonic())
                self._on_tick(time.monotonic())
        finally:
            self._closing(sock)

    def _socket(self) -> zmq.Socket[Any]:
        raise NotImplementedError

    def _on_frames(self, frames: list[bytes], now: float) -> None:
        raise NotImplementedError

    def _on_tick(self, now: float) -> None:
        pass

    def _closing(self, sock: zmq.Socket[Any]) -> None:
        sock.close(linger=0)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class FakeBroker(_Peer):
    """A ROUTER on ``endpoint`` that answers every submit with what ``script(submit)`` gives:
    ``(delay_s, message)`` pairs (default: ``ok`` with the task's id as its value, at once).
    ``on_cancel(cancel)`` may answer cancels the same way (default: no answer). Everything
    received is in ``received`` (read it under ``lock``)."""

    def __init__(self, endpoint: str, script: Script = answer_at_once, *,
                 on_cancel: Callable[[p.Cancel], Sequence[tuple[float, p.Message]]] | None = None,
                 curve: CurveServer | None = None, context: zmq.Context[Any] | None = None) -> None:
        super().__init__()
        self.context = context or zmq.Context.instance()
        self.script, self.on_cancel, self.curve = script, on_cancel, curve
        self.received: list[p.Message] = []
        self.lock = threading.Lock()
        self.auth = Authenticator(self.context, curve, [CLIENTS]) if curve is not None else None
        self._bound = threading.Event()
        self.endpoint = endpoint

    def start(self) -> None:
        super().start()
        if not self._bound.wait(5):
            raise RuntimeError("the fake broker did not bind")

    def _socket(self) -> zmq.Socket[Any]:
        sock: zmq.Socket[Any] = self.context.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        if self.curve is not None:
            make_server(sock, self.curve, CLIENTS)
        sock.bind(self.endpoint)
        self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self._bound.set()
        return sock

    def _on_frames(self, frames: list[bytes], now: float) -> None:
        peer, body = frames[0], frames[-1]
        try:
            msg = p.decode(body)
        except p.ProtocolError:
            return
        with self.lock:
            self.received.append(msg)
        answers: Sequence[tuple[float, p.Message]] = ()
        if isinstance(msg, p.Submit):
            answers = self.script(msg)
        elif isinstance(msg, p.Cancel) and self.on_cancel is not None:
            answers = self.on_cancel(msg)
        for delay, answer in answers:
            self._schedule(delay, [peer, p.encode(answer)])

    def of_type(self, kind: type) -> list[Any]:
        with self.lock:
            return [m for m in self.received if isinstance(m, kind)]

    def close(self) -> None:
        super().close()
        if self.auth is not None:
            self.auth.stop()

    def __enter__(self) -> FakeBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FakeRunner(_Peer):
    """A runner without jails: registers with ``slots`` on a broker's runner endpoint and
    answers each task with ``ok`` (its value: the task's key) after ``delay_s``; a cancelled
    task is reported at once, as the real runner does. ``tasks`` and ``cancels`` record
    what it was sent (read them under ``lock``); ``registered`` is set once the broker
    heard from it."""

    def __init__(self, endpoint: str, *, slots: int = 4, delay_s: float = 0.0,
                 runtimes: dict[str, str] | None = None, name: str = "fake",
                 heartbeat_s: float = 0.2, curve: CurveClient | None = None,
                 context: zmq.Context[Any] | None = None) -> None:
        super().__init__()
        self.endpoint, self.slots, self.delay_s, self.name = endpoint, slots, delay_s, name
        self.runtimes = runtimes or {"python": "3.11", "javascript": "quickjs-ng"}
        self.heartbeat_s, self.curve = heartbeat_s, curve
        self.context = context or zmq.Context.instance()
        self.tasks: list[p.TaskMsg] = []
        self.cancels: list[str] = []
        self.lock = threading.Lock()
        self.registered = threading.Event()
        self.link: Link | None = None
        self._next_beat = 0.0
        self._results: dict[str, int] = {}  # task key -> its scheduled result

    def _socket(self) -> zmq.Socket[Any]:
        self.link = Link(self.context, self.endpoint, self.curve, immediate=False)
        sock: zmq.Socket[Any] = self.link.sock
        sock.send(p.encode(p.Ready(self.runtimes, self.slots, (), self.name)))
        return sock

    def _on_frames(self, frames: list[bytes], now: float) -> None:
        try:
            msg = p.decode(frames[-1])
        except p.ProtocolError:
            return
        if isinstance(msg, p.BROKER_TO_RUNNER):  # only a broker that took us in sends these
            self.registered.set()
        if isinstance(msg, p.TaskMsg):
            with self.lock:
                self.tasks.append(msg)
            envelope = outcome.encode(Status.OK, "ok", value=codec.encode(msg.task_id))
            self._results[msg.task_id] = self._schedule(
                self.delay_s, [p.encode(p.Done(msg.task_id, envelope, p.OK))])
        elif isinstance(msg, p.CancelTask):
            with self.lock:
                self.cancels.append(msg.task_id)
            seq = self._results.pop(msg.task_id, None)
            if seq is not None and any(e[1] == seq for e in self._later):
                # its result was not sent yet: the cancel's report comes instead, at once
                self._dropped.add(seq)
                self._schedule(0.0, [p.encode(p.Done(msg.task_id, b"", p.CRASHED))])

    def _on_tick(self, now: float) -> None:
        if now >= self._next_beat and self.link is not None:
            self._next_beat = now + self.heartbeat_s
            try:
                self.link.sock.send(p.encode(p.RunnerHeartbeat(self.slots)), zmq.NOBLOCK)
            except zmq.Again:
                pass

    def _closing(self, sock: zmq.Socket[Any]) -> None:
        try:
            sock.send(p.encode(p.Bye()), zmq.NOBLOCK)
        except zmq.ZMQError:
            pass
        if self.link is not None:
            self.link.close(linger_ms=100)

    def __enter__(self) -> FakeRunner:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
