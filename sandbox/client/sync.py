"""What a host application embeds: ``Client`` and ``AsyncClient``, the same surface twice.

    with Client() as c:                       # no endpoint: an embedded broker and runner
        c.run("python", "return data + 1", data=41).value

    with Client("ipc:///run/sandbox.sock") as c:     # a ``sandbox serve`` daemon
        handle = c.submit("javascript", "return 1")
        handle.result()

The pure part (``ClientBase``: building and validating requests, turning replies into
``Result``s, deadlines) is shared; only the send/receive loop is written twice. The promises
both keep:

* a caller never waits forever: each task has a client-side deadline (its timeout + its
  queue wait + ``grace_s``), after which it ends as ``crashed`` "no answer from the broker";
  ``submit`` waits for the broker's socket at most the task's queue wait, and a refused
  CURVE key is reported at once ("the server refused this key");
* every task gets one answer: the first reply for a task is its answer, anything later for
  it (or for an id this client is not waiting for) is dropped, and a cancel never replaces
  a result that came first;
* abandoned work is cancelled: a task carries its caller's deadline to the broker, and a
  task whose caller stops waiting (deadline passed, ``close()``, a cancelled ``await``) is
  cancelled there;
* the queue wait is one number: the client sends its own (``queue_timeout_s``) with every
  task, so client and broker agree on when a task has waited too long.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import math
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any, cast

import zmq
import zmq.asyncio
from zmq.utils.monitor import parse_monitor_message

from broker import protocol as p
from broker.core import BrokerConfig
from broker.server import BrokerServer
from runtimes import codec
from runtimes.outcome import Status
from sandbox import registry
from sandbox.config import Limits, PoolConfig, check_endpoint
from sandbox.errors import ClosedError, ConfigError
from sandbox.link import CurveClient, Link, LinkState, close_monitored, monitored, prepare
from sandbox.result import Result
from sandbox.host.runner import Runner, RunnerConfig

__all__ = ["AsyncClient", "AsyncHandle", "Client", "CurveClient", "Handle"]

_GRACE_S = 5.0  # on top of a task's own timeout and queue wait, before the client gives up
_MIN_SEND_WAIT_S = 1.0  # the least a submit waits for the broker's socket (queue wait 0)
_CLOSE_LINGER_MS = 500  # how long the cancels sent by close() may take to leave
CLOSED_MESSAGE = "the client was closed before a result came"
_MONITOR_EVENTS = (zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_AUTH
                   | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
                   | zmq.EVENT_DISCONNECTED)


class Handle:
    """A submitted task: its id, and a way to wait for (or cancel) it."""

    def __init__(self, client: Client, submit: p.Submit | None, conn: _Conn | None,
                 started: float, done: Result | None = None) -> None:
        self.id = submit.id if submit is not None else ""
        self._client, self._submit, self._conn, self._started = client, submit, conn, started
        self._result = done

    def result(self, timeout: float | None = None) -> Result:
        """Wait for the Result; TimeoutError if ``timeout`` passes first. Past the task's
        client-side deadline the Result is ``crashed`` "no answer from the broker"."""
        if self._result is None:
            self._result = self._client._wait(self, timeout)
        return self._result

    def done(self) -> bool:
        """Whether ``result()`` would return at once."""
        if self._result is not None:
            return True
        return self._conn is not None and self._conn.answered(self.id)

    def cancel(self) -> None:
        """Ask the broker to cancel the task; never waits. Its answer says how it ended (a
        result that came before the cancel stays the answer)."""
        self._client.cancel(self)

    def __del__(self) -> None:
        conn = self._conn
        if conn is not None and self._result is None:
            conn.forget(self.id)  # nobody can ask for it any more: keep no answer for it


class AsyncHandle:
    """A task submitted through ``AsyncClient``: ``await handle`` gives its Result.
    Cancelling the await (``asyncio.wait_for`` timing out, a cancelled task) cancels the
    task at the broker."""

    def __init__(self, client: AsyncClient, task_id: str, future: asyncio.Future) -> None:
        self.id, self._client, self.future = task_id, client, future

    def __await__(self):
        return self.future.__await__()

    def done(self) -> bool:
        return self.future.done()

    def cancel(self) -> None:
        self._client.cancel(self)


class ClientBase:
    """The pure core both clients share: no sockets, no threads."""

    def __init__(self, defaults: Limits, queue_timeout_s: float, grace_s: float = _GRACE_S) -> None:
        self.defaults = defaults
        self.queue_timeout_s = queue_timeout_s
        self.grace_s = grace_s
        self._ids = itertools.count(1)
        self._prefix = uuid.uuid4().hex[:8]

    def build(
        self,
        runtime: str,
        code: str,
        data: Any,
        *,
        timeout_s: float | None,
        memory_mb: int | None,
        stdout_bytes: int | None,
        result_bytes: int | None,
        priority: int,
        lane: str,
        group: str | None,
        version: str,
        wait_for_runner: bool,
        queue_timeout_s: float | None,
        idempotent: bool,
        max_attempts: int,
        policy: str = "default",
        imports: Any = None,
        isolation: str = "process",
        reuse_key: str | None = None,
    ) -> p.Submit | Result:
        """A Submit message, or a ``rejected`` Result when the request cannot be sent."""
        if registry.canonical(runtime) is None:
            known = ", ".join(sorted(registry.ALIASES))
            return Result.rejected(f"unknown runtime {runtime!r} (known: {known})")
        if not isinstance(code, str):
            return Result.rejected(f"code must be a str, not {type(code).__name__}")
        try:
            limits = self.defaults.replace(timeout_s=timeout_s, memory_mb=memory_mb,
                                           stdout_bytes=stdout_bytes, result_bytes=result_bytes)
        except ConfigError as exc:
            return Result.rejected(f"bad limits: {exc}")
        try:
            encoded = codec.encode(data, max_bytes=p.MAX_DATA_BYTES, path="data")
        except codec.EncodeError as exc:
            return Result.rejected(f"data cannot be sent to the sandbox: {exc}")
        # the client's queue wait travels with the task: the broker holds it exactly as long
        wait = self.queue_timeout_s if queue_timeout_s is None else queue_timeout_s
        if registry.RUNTIMES[registry.canonical(runtime) or runtime].worker_children:
            # its tasks always run in workers (pyodide): so named, the broker keys them by
            # lane too, and a worker never serves two lanes
            isolation = "worker"
        submit = p.Submit(
            id=f"{self._prefix}-{next(self._ids)}",
            runtime=registry.canonical(runtime) or runtime,
            code=code,
            data=encoded,
            limits=p.TaskLimits(timeout_s, memory_mb, stdout_bytes, result_bytes),
            priority=priority, lane=lane, group=group, version=version,
            wait_for_runner=wait_for_runner, queue_timeout_s=wait,
            idempotent=idempotent, max_attempts=max_attempts, policy=policy,
            # any iterable of names becomes a tuple; a bare string is left for validate to refuse
            imports=imports if imports is None or isinstance(imports, str) else tuple(imports),  # type: ignore[arg-type]
            deadline_s=limits.timeout_s + wait + self.grace_s,
            isolation=isolation, reuse_key=reuse_key,
        )
        try:
            p.validate(submit)  # the broker would refuse it: say so here, clearly
        except p.ProtocolError as exc:
            return Result.rejected(str(exc))
        return submit

    @staticmethod
    def deadline_s(submit: p.Submit) -> float:
        """How long the caller waits for the task, from sending it."""
        assert submit.deadline_s is not None  # build() sets it
        return submit.deadline_s

    @staticmethod
    def send_wait_s(submit: p.Submit) -> float:
        """How long sending the task may wait for the broker's socket: its queue wait."""
        return max(submit.queue_timeout_s or 0.0, _MIN_SEND_WAIT_S)

    def envelope_limit(self, submit: p.Submit) -> int:
        lim = submit.limits  # valid: build() checked them
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
            return Result.rejected(msg.message)
        return Result(Status.CRASHED, "the broker sent a malformed reply", duration_ms=duration)

    @staticmethod
    def no_answer(endpoint: str, waited_s: float) -> Result:
        return Result(Status.CRASHED, f"no answer from the broker at {endpoint} within "
                                      f"{waited_s:g} s (is it running?)")


class _Embedded:
    """An in-process broker and runner on inproc:// sockets: what a client with no endpoint
    uses, and what ``sandbox exec`` uses by default."""

    def __init__(self, context: zmq.Context, pool: PoolConfig, runtimes: tuple[str, ...],
                 broker: BrokerConfig) -> None:
        name = uuid.uuid4().hex
        self.endpoint = f"inproc://sandbox-broker-{name}"
        self.runner_endpoint = f"inproc://sandbox-runners-{name}"
        self.stop = threading.Event()
        self.server = BrokerServer([self.endpoint], broker, context=context,
                                   runner_endpoints=[self.runner_endpoint])
        self.runner = Runner(RunnerConfig(self.runner_endpoint, runtimes=runtimes,
                                          slots=pool.size, pool=pool, name="embedded"),
                             context=context)
        self._threads = [
            threading.Thread(target=self.server.serve, args=(self.stop,), daemon=True,
                             name="embedded-broker"),
            threading.Thread(target=self.runner.serve, args=(self.stop,), daemon=True,
                             name="embedded-runner"),
        ]
        for t in self._threads:
            t.start()
        # wait until the runner has registered, so the first task does not race it
        if not self.runner.connected.wait(10.0):
            self.close()
            raise ClosedError("the embedded runner did not register with its broker")

    def close(self) -> None:
        self.stop.set()
        self.runner.wake()
        for t in self._threads:
            t.join(timeout=5)
        self.runner.close()
        self.server.close()


def _options(endpoint: str | None, curve: CurveClient | None, insecure: bool) -> None:
    if endpoint is not None:
        check_endpoint(endpoint)  # ConfigError now, not ZeroMQ's "Invalid argument" later
    if insecure:
        return
    if endpoint and endpoint.startswith("tcp://") and curve is None:
        raise ConfigError("a tcp:// endpoint needs CURVE keys (pass curve=...)")


class _Sending:
    """A frame waiting for the socket; ``error`` says why it will not be sent."""

    __slots__ = ("frame", "sent", "error")

    def __init__(self, frame: bytes) -> None:
        self.frame = frame
        self.sent = False
        self.error: str | None = None


class _Conn:
    """One DEALER (a ``Link``) and the answers that came on it, with no thread of its own.

    Whichever caller needs the socket drives it (sends what waits in the outbox, reads every
    reply into ``answers``) while the others wait on ``cond`` for what they need; a caller
    from another thread (a cancel, a close) queues its frame and wakes the driver instead
    of waiting for it. So the usual call, one thread with its own socket, is one send and
    one receive with no hand-off; and a cancel or close never waits for a wait."""

    def __init__(self, context: zmq.Context, endpoint: str, curve: CurveClient | None) -> None:
        self.link = Link(context, endpoint, curve)
        self.cond = threading.Condition()
        self.closed = False
        self._driving = False
        self._retry = False
        # a send gave up on an unreachable broker, and it has not been up since: the next
        # sends try once and fail at once instead of each waiting its whole queue wait
        self._gave_up = False
        self.outbox: deque[_Sending] = deque()
        self.pending: set[str] = set()  # ids whose answer is awaited
        self.answers: dict[str, p.Message | None] = {}  # first answers not yet taken
        self._forgotten: deque[str] = deque()  # appended without the lock (from __del__)
        self._wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._poller = zmq.Poller()
        self._poller.register(self.link.sock, zmq.POLLIN)
        if self.link.monitor is not None:
            self._poller.register(self.link.monitor, zmq.POLLIN)
        self._poller.register(self._wake, zmq.POLLIN)
        self._polling_out = False

    # -- what callers do (any thread) --------------------------------------------------------

    def send(self, task_id: str | None, frame: bytes, wait_s: float) -> str | None:
        """Send ``frame`` (a task ``task_id`` whose answer is then awaited); None once the
        socket took it, else why it could not within ``wait_s``."""
        item = _Sending(frame)
        with self.cond:
            if self.closed:
                return CLOSED_MESSAGE
            if self.link.state.refused:
                self._retry = True  # the key may be authorized by now: one handshake more
            if task_id is not None:
                self.pending.add(task_id)
            self.outbox.append(item)
            until = time.perf_counter() + (0.0 if self._gave_up else wait_s)
        self._drive(lambda: item.sent or item.error is not None, until)
        with self.cond:
            if item.sent:
                return None
            if item in self.outbox:
                self.outbox.remove(item)
            if task_id is not None:
                self.pending.discard(task_id)
            if item.error is not None:
                return item.error
            if self.closed:
                return CLOSED_MESSAGE
            self._gave_up = True
            return self.link.state.unreachable(wait_s)

    def wait(self, task_id: str, until: float) -> tuple[bool, p.Message | None]:
        """(True, reply) when the answer for ``task_id`` came before ``until`` (perf_counter
        seconds), else (False, None)."""
        self._drive(lambda: task_id in self.answers, until)
        with self.cond:
            if task_id in self.answers:
                self.pending.discard(task_id)
                return True, self.answers.pop(task_id)
            return False, None

    def answered(self, task_id: str) -> bool:
        self._drive(lambda: True, 0.0)  # reads what arrived if nobody else is driving
        with self.cond:
            return task_id in self.answers

    def cancel(self, task_id: str, *, abandon: bool = False) -> None:
        """Queue a cancel for ``task_id`` and see it sent if the socket is free; never waits.
        ``abandon``: nobody waits for its answer any more either."""
        with self.cond:
            if self.closed or (task_id in self.answers and not abandon):
                return  # closed, or answered already: a cancel would change nothing
            if abandon:
                self.pending.discard(task_id)
                self.answers.pop(task_id, None)
            self.outbox.append(_Sending(p.encode(p.Cancel(task_id))))
        self._drive(lambda: True, 0.0)

    def forget(self, task_id: str) -> None:
        """Nobody will ask for ``task_id``'s answer (its handle is gone): lock-free, so it is
        safe from a finalizer in any thread."""
        self._forgotten.append(task_id)

    def close(self) -> None:
        """Cancel every task still awaited, close the socket (now, or when the driver
        leaves it), and wake every waiter; never waits."""
        with self.cond:
            if self.closed:
                return
            for task_id in sorted(self.pending - set(self.answers)):
                self.outbox.append(_Sending(p.encode(p.Cancel(task_id))))
            self.closed = True
        self._drive(lambda: True, 0.0, closing=True)

    # -- the driver ---------------------------------------------------------------------------

    def _drive(self, done: Callable[[], bool], until: float, closing: bool = False) -> None:
        """Drive the socket until ``done()`` or ``until``; if another thread drives it,
        wait for that thread instead (it notifies ``cond`` on every change)."""
        with self.cond:
            while self._driving:
                if self.outbox or closing:
                    self._poke()  # the driver sends what we queued (or shuts the socket)
                if closing or done() or self.closed:
                    return
                left = until - time.perf_counter()
                if left <= 0:
                    return
                self.cond.wait(left)
            self._driving = True
        try:
            with self.cond:
                while True:
                    if self.link is None:
                        return
                    self._io()
                    if done() or self.closed:
                        return
                    left = until - time.perf_counter()
                    if left <= 0:
                        return
                    self._poll(left)
        finally:
            with self.cond:
                self._driving = False
                if self.closed and self.link is not None:
                    self._shut()
                self.cond.notify_all()

    def _poll(self, left_s: float) -> None:
        """Wait (without the lock) for the socket, the monitor or a poke; whole ms, rounded
        up: the caller's loop decides when ``until`` has come, never the rounding."""
        assert self.link is not None
        want_out = bool(self.outbox)
        if want_out != self._polling_out:
            self._poller.modify(self.link.sock, zmq.POLLIN | (zmq.POLLOUT if want_out else 0))
            self._polling_out = want_out
        self.cond.release()
        try:
            events = dict(self._poller.poll(max(1, math.ceil(left_s * 1000))))
        finally:
            self.cond.acquire()
        if self._wake in events:
            try:
                os.eventfd_read(self._wake)
            except BlockingIOError:
                pass

    def _io(self) -> None:
        """One non-blocking pass, under the lock, by the driver: monitor, sends, replies."""
        link = self.link
        assert link is not None
        while self._forgotten:
            task_id = self._forgotten.popleft()
            self.pending.discard(task_id)
            self.answers.pop(task_id, None)
        if self._retry:
            self._retry = False
            link.retry()
        state = link.update()
        if state.up:
            self._gave_up = False
        changed = False
        if state.refused and self.outbox:
            for item in self.outbox:
                item.error = state.refused
            self.outbox.clear()
            changed = True
        while self.outbox:
            item = self.outbox[0]
            try:
                link.sock.send(item.frame, zmq.NOBLOCK)
            except zmq.Again:
                break
            self.outbox.popleft()
            item.sent = changed = True
            self._gave_up = False
        while True:
            try:
                frame = link.sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            reply_to, msg = ClientBase.reply_id(frame)
            # the first answer for an awaited id is its answer; anything else is dropped
            if reply_to in self.pending and reply_to not in self.answers:
                self.answers[reply_to] = msg
                changed = True
        if changed:
            self.cond.notify_all()

    def _poke(self) -> None:
        if self._wake < 0:
            return  # shut: the number may belong to another file by now
        try:
            os.eventfd_write(self._wake, 1)
        except OSError:
            pass

    def _shut(self) -> None:
        assert self.link is not None
        try:
            self._io()  # the cancels close() queued, as far as the socket takes them now
        except zmq.ZMQError:
            pass
        self.link.close(linger_ms=_CLOSE_LINGER_MS)
        self.link = None  # type: ignore[assignment]
        os.close(self._wake)
        self._wake = -1
        self.cond.notify_all()


class Client(ClientBase):
    """Synchronous client; thread-safe. Each calling thread talks to the broker on a socket
    of its own, so a call is one send and one receive with no hand-off between threads."""

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        curve: CurveClient | None = None,
        insecure: bool = False,
        pool: PoolConfig | None = None,
        runtimes: tuple[str, ...] = ("python", "javascript"),
        broker: BrokerConfig | None = None,
        queue_timeout_s: float = 30.0,
        grace_s: float = _GRACE_S,
    ) -> None:
        _options(endpoint, curve, insecure)
        super().__init__((pool or PoolConfig()).default_limits, queue_timeout_s, grace_s)
        self.context: zmq.Context = zmq.Context.instance()
        self._embedded = None
        if endpoint is None:
            self._embedded = _Embedded(self.context, pool or PoolConfig(), runtimes,
                                       broker or BrokerConfig())
            endpoint = self._embedded.endpoint
        self.endpoint = endpoint
        self._curve = curve
        self._local = threading.local()
        self._conns: list[_Conn] = []
        self._lock = threading.Lock()
        self._closed = False

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _conn(self) -> _Conn:
        if self._closed:
            raise ClosedError("the client is closed")
        conn = getattr(self._local, "conn", None)
        if conn is None:
            with self._lock:
                if self._closed:
                    raise ClosedError("the client is closed")
                conn = _Conn(self.context, self.endpoint, self._curve)
                self._conns.append(conn)
            self._local.conn = conn
        return conn

    def submit(self, runtime: str, code: str, data: Any = None, *, timeout_s: float | None = None,
               memory_mb: int | None = None, stdout_bytes: int | None = None,
               result_bytes: int | None = None, priority: int = 0, lane: str = p.DEFAULT_LANE,
               group: str | None = None, version: str = "", wait_for_runner: bool = True,
               queue_timeout_s: float | None = None, idempotent: bool = False,
               max_attempts: int = 1, policy: str = "default",
               imports: list[str] | None = None, isolation: str = "process",
               reuse_key: str | None = None) -> Handle:
        """Send a task; the Handle's ``result()`` waits for it. Waits for the broker's socket
        at most the task's queue wait (then the Handle holds a ``rejected`` Result)."""
        built = self.build(runtime, code, data, timeout_s=timeout_s, memory_mb=memory_mb,
                           stdout_bytes=stdout_bytes, result_bytes=result_bytes,
                           priority=priority, lane=lane, group=group, version=version,
                           wait_for_runner=wait_for_runner, queue_timeout_s=queue_timeout_s,
                           idempotent=idempotent, max_attempts=max_attempts, policy=policy,
                           imports=imports, isolation=isolation, reuse_key=reuse_key)
        if isinstance(built, Result):
            return Handle(self, None, None, 0.0, done=built)
        conn = self._conn()
        started = time.perf_counter()
        error = conn.send(built.id, p.encode(built), self.send_wait_s(built))
        if error is not None:
            return Handle(self, built, None, started, done=Result.rejected(error))
        return Handle(self, built, conn, started)

    def run(self, runtime: str, code: str, data: Any = None, **options: Any) -> Result:
        """Run a task and wait for its Result (never longer than its client-side deadline)."""
        return self.submit(runtime, code, data, **options).result()

    def cancel(self, handle: Handle | str) -> None:
        """Ask the broker to cancel a task; never waits (from any thread)."""
        if isinstance(handle, Handle):
            if handle._result is not None or handle._conn is None:
                return  # its answer is in hand (or it was never sent): nothing to cancel
            handle._conn.cancel(handle.id)
        elif handle:
            self._conn().cancel(handle)

    def _wait(self, handle: Handle, timeout: float | None) -> Result:
        submit, conn, started = handle._submit, handle._conn, handle._started
        assert submit is not None and conn is not None
        deadline = started + self.deadline_s(submit)
        user_until = math.inf if timeout is None else time.perf_counter() + timeout
        got, msg = conn.wait(submit.id, min(deadline, user_until))
        if got:
            return self.result_of(msg, submit, started)
        if conn.closed:
            return Result.rejected(CLOSED_MESSAGE)
        if user_until < deadline:
            raise TimeoutError(f"task {submit.id} did not finish within {timeout} s")
        conn.cancel(submit.id, abandon=True)  # nobody waits for it any more
        return self.no_answer(self.endpoint, self.deadline_s(submit))

    def close(self) -> None:
        """Cancel the tasks still awaited and close every socket; never waits for a wait
        (a thread blocked in ``result()`` gets a Result at once)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()
        if self._embedded is not None:
            self._embedded.close()


class AsyncClient(ClientBase):
    """asyncio client with the same surface: ``await run(...)``, ``submit``, ``cancel``."""

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        curve: CurveClient | None = None,
        insecure: bool = False,
        pool: PoolConfig | None = None,
        runtimes: tuple[str, ...] = ("python", "javascript"),
        broker: BrokerConfig | None = None,
        queue_timeout_s: float = 30.0,
        grace_s: float = _GRACE_S,
    ) -> None:
        _options(endpoint, curve, insecure)
        super().__init__((pool or PoolConfig()).default_limits, queue_timeout_s, grace_s)
        sync_context: zmq.Context = zmq.Context.instance()
        self.context = zmq.asyncio.Context.shadow(sync_context.underlying)
        self._embedded = None
        if endpoint is None:
            self._embedded = _Embedded(sync_context, pool or PoolConfig(), runtimes,
                                       broker or BrokerConfig())
            endpoint = self._embedded.endpoint
        self.endpoint = endpoint
        self._state = LinkState(endpoint)
        self._sock = self.context.socket(zmq.DEALER)
        prepare(self._sock, curve)
        self._monitor = (self._sock.get_monitor_socket(_MONITOR_EVENTS) if monitored(endpoint)
                         else None)
        self._sock.connect(endpoint)
        self._pending: dict[str, tuple[asyncio.Future, p.Submit, float]] = {}
        self._tasks: list[asyncio.Task] = []
        self._changed: asyncio.Event | None = None
        self._closed = False
        self._gave_up = False  # as _Conn's: fail at once while the broker stays unreachable

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def submit(self, runtime: str, code: str, data: Any = None, **options: Any) -> AsyncHandle:
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        defaults = dict(timeout_s=None, memory_mb=None, stdout_bytes=None, result_bytes=None,
                        priority=0, lane=p.DEFAULT_LANE, group=None, version="",
                        wait_for_runner=True, queue_timeout_s=None, idempotent=False,
                        max_attempts=1, policy="default", imports=None, isolation="process",
                        reuse_key=None)
        unknown = set(options) - set(defaults)
        if unknown:
            raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}")
        built = self.build(runtime, code, data, **{**defaults, **options})
        if isinstance(built, Result):
            future.set_result(built)
            return AsyncHandle(self, "", future)
        if self._closed:
            raise ClosedError("the client is closed")
        self._start()
        started = time.perf_counter()
        self._pending[built.id] = (future, built, started)
        future.add_done_callback(functools.partial(self._settled, built.id))
        try:
            error = await self._send(p.encode(built), self.send_wait_s(built))
        except asyncio.CancelledError:
            self._abandon(built.id)  # it may have left: whoever waited for it is gone
            raise
        if error is not None:
            self._pending.pop(built.id, None)
            future.set_result(Result.rejected(error))
        else:
            loop.call_later(self.deadline_s(built), self._expire, built.id)
        return AsyncHandle(self, built.id, future)

    async def run(self, runtime: str, code: str, data: Any = None, **options: Any) -> Result:
        handle = await self.submit(runtime, code, data, **options)
        return await handle

    def cancel(self, handle: AsyncHandle | str) -> None:
        """Ask the broker to cancel a task; its awaited Result says how it ended."""
        if isinstance(handle, AsyncHandle):
            if not handle.id or handle.future.done():
                return
            task_id = handle.id
        else:
            task_id = handle
        if task_id and not self._closed:
            self._send_cancel(task_id)

    # -- the loop ------------------------------------------------------------------------------

    def _start(self) -> None:
        if self._tasks:
            return
        self._changed = asyncio.Event()
        self._tasks.append(asyncio.ensure_future(self._read()))
        if self._monitor is not None:
            self._tasks.append(asyncio.ensure_future(self._watch(self._monitor)))

    async def _send(self, frame: bytes, wait_s: float) -> str | None:
        """Send ``frame``; None once the socket took it, else why it could not within
        ``wait_s``."""
        until = time.perf_counter() + (0.0 if self._gave_up and not self._state.up else wait_s)
        sending = cast(asyncio.Future, self._sock.send(frame))
        if sending.done():  # the usual case: the socket took it at once
            sending.result()
            self._gave_up = False
            return None
        assert self._changed is not None
        retried = False
        try:
            while not sending.done():
                if self._closed:
                    return CLOSED_MESSAGE
                if self._state.refused:
                    if retried:
                        return self._state.refused
                    retried = True
                    self._state.refused = None  # one more handshake: the key may be allowed now
                    try:
                        self._sock.disconnect(self.endpoint)
                    except zmq.ZMQError:
                        pass
                    self._sock.connect(self.endpoint)
                left = until - time.perf_counter()
                if left <= 0:
                    self._gave_up = True
                    return self._state.unreachable(wait_s)
                self._changed.clear()
                changed = asyncio.ensure_future(self._changed.wait())
                try:
                    await asyncio.wait({sending, changed}, timeout=left,
                                       return_when=asyncio.FIRST_COMPLETED)
                finally:
                    changed.cancel()
            sending.result()
            self._gave_up = False
            return None
        finally:
            if not sending.done():
                sending.cancel()

    async def _read(self) -> None:
        while not self._closed:
            frame = await self._sock.recv()
            task_id, msg = self.reply_id(frame)
            # the first answer for an awaited id is its answer; anything else is dropped
            entry = self._pending.pop(task_id, None) if task_id else None
            if entry is not None and not entry[0].done():
                future, submit, started = entry
                future.set_result(self.result_of(msg, submit, started))

    async def _watch(self, monitor: zmq.asyncio.Socket) -> None:
        while not self._closed:
            event = parse_monitor_message(await monitor.recv_multipart())
            self._state.on_event(event["event"], event["value"])
            if self._changed is not None:
                self._changed.set()

    def _settled(self, task_id: str, future: asyncio.Future) -> None:
        if future.cancelled():  # the await was cancelled: nobody waits for the task
            self._abandon(task_id)

    def _abandon(self, task_id: str) -> None:
        if self._pending.pop(task_id, None) is not None and not self._closed:
            self._send_cancel(task_id)

    def _send_cancel(self, task_id: str) -> None:
        sending = cast(asyncio.Future, self._sock.send(p.encode(p.Cancel(task_id))))
        sending.add_done_callback(_consume)

    def _expire(self, task_id: str) -> None:
        entry = self._pending.pop(task_id, None)
        if entry is not None and not entry[0].done():
            entry[0].set_result(self.no_answer(self.endpoint, self.deadline_s(entry[1])))
            if not self._closed:
                self._send_cancel(task_id)

    async def aclose(self) -> None:
        """Cancel the tasks still awaited (their awaits get a Result at once) and close."""
        if self._closed:
            return
        pending, self._pending = self._pending, {}
        for task_id in sorted(pending):
            try:
                self._send_cancel(task_id)
            except zmq.ZMQError:
                pass
        self._closed = True
        for future, _, _ in pending.values():
            if not future.done():
                future.set_result(Result.rejected(CLOSED_MESSAGE))
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, zmq.ZMQError):
                pass
        close_monitored(self._sock, self._monitor, _CLOSE_LINGER_MS)
        if self._embedded is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._embedded.close)


def _consume(future: asyncio.Future) -> None:
    """A fire-and-forget send's outcome, read so that asyncio does not report it."""
    if not future.cancelled():
        future.exception()
