"""The pure part both clients share (``ClientBase``): building a request and its message,
deadlines, and turning replies into ``Result``s. No sockets, no threads: the send/receive
loop is written twice, in ``sync`` and ``aio``."""

from __future__ import annotations

import dataclasses
import itertools
import secrets
import time
import uuid
from collections.abc import Callable
from typing import Any

import zmq

from broker import protocol as p
from runtimes.outcome import Status
from sandbox.config import Limits, check_endpoint
from sandbox.errors import ConfigError, RequestError, SessionError
from sandbox.link import CurveClient
from sandbox.request import Options, Request, request, to_submit
from sandbox.result import OutputChunk, OutputText, Result

OnOutput = Callable[[OutputChunk], Any]  # ``run(..., on_output=...)``: called per chunk

GRACE_S = 5.0  # on top of a task's own timeout and queue wait, before the client gives up
_MIN_SEND_WAIT_S = 1.0  # the least a submit waits for the broker's socket (queue wait 0)
CLOSE_LINGER_MS = 500  # how long the cancels sent by close() may take to leave
CLOSED_MESSAGE = "the client was closed before a result came"
MONITOR_EVENTS = (zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_AUTH
                  | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
                  | zmq.EVENT_DISCONNECTED)


class ClientBase:
    """The pure core both clients share: no sockets, no threads."""

    def __init__(self, defaults: Limits, queue_timeout_s: float, grace_s: float = GRACE_S) -> None:
        self.defaults = defaults
        self.queue_timeout_s = queue_timeout_s
        self.grace_s = grace_s
        self._ids = itertools.count(1)
        self._prefix = uuid.uuid4().hex[:8]
        # sent with every task: over ipc the broker makes this client's connections (one per
        # thread) one principal, so its threads share its warm workers (broker/server.py)
        self._secret = secrets.token_bytes(p.CLIENT_SECRET_BYTES)

    def request(self, runtime: object, code: object, data: Any, options: Options) -> Request | Result:
        """The request checked once (``sandbox.request``), or a ``rejected`` Result saying why
        it cannot be sent."""
        try:
            return request(runtime, code, data, options, defaults=self.defaults)
        except RequestError as exc:
            return Result.rejected(str(exc))

    def session_request(self, runtime: object, session: str, op: str, code: object = "",
                        data: Any = None, options: Options | None = None,
                        idle_timeout_s: float | None = None,
                        max_lifetime_s: float | None = None) -> Request | Result:
        """A session's open, call or close (``op``), checked once like any request, or a
        ``rejected`` Result saying why it cannot be sent."""
        built = self.request(runtime, code, data, options or Options())
        if isinstance(built, Result):
            return built
        message = dataclasses.replace(built.message, session=session, session_op=op,
                                      idle_timeout_s=idle_timeout_s,
                                      max_lifetime_s=max_lifetime_s)
        try:
            p.validate(message)
        except p.ProtocolError as exc:
            return Result.rejected(str(exc))
        return dataclasses.replace(built, message=message)

    @staticmethod
    def new_session_id(session_id: str | None) -> str:
        """The id a session is opened under: the caller's, else a fresh random one."""
        if session_id is None:
            return uuid.uuid4().hex
        if not isinstance(session_id, str) or not 0 < len(session_id) <= p.MAX_SESSION_CHARS:
            raise SessionError(f"session_id must be a string of 1 to {p.MAX_SESSION_CHARS} "
                               "characters")
        return session_id

    @staticmethod
    def opened(result: Result) -> None:
        """SessionError unless a session's open came back ``ok``."""
        if result.status is not Status.OK:
            raise SessionError(f"{result.status.value}: {result.message}")

    def submit_message(self, req: Request) -> p.Submit:
        """The broker's message for a checked request, with a fresh id and its deadline. The
        client's queue wait travels with the task when the caller gave none: the broker holds
        it exactly as long as the client waits."""
        wait = req.options.queue_timeout_s
        if wait is None:
            wait = self.queue_timeout_s
        return to_submit(req, f"{self._prefix}-{next(self._ids)}",
                         req.limits.timeout_s + wait + self.grace_s, queue_timeout_s=wait,
                         client_secret=self._secret)

    @staticmethod
    def deadline_s(submit: p.Submit) -> float:
        """How long the caller waits for the task, from sending it."""
        assert submit.deadline_s is not None  # submit_message() sets it
        return submit.deadline_s

    @staticmethod
    def send_wait_s(submit: p.Submit) -> float:
        """How long sending the task may wait for the broker's socket: its queue wait."""
        return max(submit.queue_timeout_s or 0.0, _MIN_SEND_WAIT_S)

    def envelope_limit(self, submit: p.Submit) -> int:
        lim = submit.limits  # valid: request() checked them
        return self.defaults.replace(stdout_bytes=lim.stdout_bytes,
                                     result_bytes=lim.result_bytes).envelope_bytes

    @staticmethod
    def reply_id(frame: bytes) -> tuple[str | None, p.Message | None]:
        try:
            msg = p.decode(frame)
        except p.ProtocolError as exc:
            return exc.msg_id, None
        if isinstance(msg, (p.ResultMsg, p.Rejected)):
            return msg.id, msg
        return None, msg

    def result_of(self, msg: p.Message | None, submit: p.Submit, started: float) -> Result:
        duration = (time.perf_counter() - started) * 1000.0
        if isinstance(msg, p.ResultMsg):
            if msg.envelope is not None:
                return Result.from_wire(msg.envelope, max_bytes=self.envelope_limit(submit),
                                        duration_ms=duration)
            return Result(Status(msg.status), msg.message, duration_ms=duration)
        if isinstance(msg, p.Rejected):
            return Result.rejected(msg.message, msg.reason)
        return Result(Status.CRASHED, "the broker sent a malformed reply", duration_ms=duration)

    @staticmethod
    def no_answer(endpoint: str, waited_s: float) -> Result:
        return Result(Status.CRASHED, f"no answer from the broker at {endpoint} within "
                                      f"{waited_s:g} s (is it running?)")


class OutputDecoder:
    """A streaming task's ``output`` messages to ``OutputChunk``s (``sandbox.result.OutputText``:
    a character the wire cut in two comes whole)."""

    def __init__(self) -> None:
        self._text = OutputText()

    def feed(self, msg: p.Output) -> OutputChunk | None:
        return self._text.feed(msg.stream, msg.data)


def keys(curve: CurveClient | None, curve_dir: str | None, key: str) -> CurveClient | None:
    """A client's CURVE keys: given as they are, or ``DIR/KEY.key_secret`` and
    ``DIR/server.key`` as ``sandbox keys`` writes them (ConfigError naming a bad file)."""
    if curve is not None and curve_dir is not None:
        raise ConfigError("pass curve= or curve_dir=, not both")
    return CurveClient.load(curve_dir, key) if curve_dir is not None else curve


def check_options(endpoint: str | None, curve: CurveClient | None, insecure: bool) -> None:
    if endpoint is not None:
        check_endpoint(endpoint)  # ConfigError now, not ZeroMQ's "Invalid argument" later
    if insecure:
        return
    if endpoint and endpoint.startswith("tcp://") and curve is None:
        raise ConfigError("a tcp:// endpoint needs CURVE keys (pass curve_dir=... and key=..., "
                          "or curve=...)")
