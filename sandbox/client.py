"""What a host application embeds: ``Client`` and ``AsyncClient``, the same surface twice.

    with Client() as c:                       # no endpoint: an embedded broker and runner
        c.run("python", "return data + 1", data=41).value

    with Client("ipc:///run/sandbox.sock") as c:     # a ``sandbox serve`` daemon
        handle = c.submit("javascript", "return 1")
        handle.result()

The pure part (``ClientBase``: building and validating requests, turning replies into
``Result``s, deadlines) is shared; only the send/receive loop is written twice. A caller never
waits forever: each task has a client-side deadline (its timeout + queue wait + grace), after
which it ends as ``crashed`` with a message that says the broker did not answer.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
import uuid
from typing import Any

import zmq
import zmq.asyncio

from broker import protocol as p
from broker.core import BrokerConfig
from broker.server import BrokerServer
from runtimes import codec
from runtimes.outcome import Status
from sandbox.config import RUNTIME_ALIASES, Limits, PoolConfig, canonical_runtime
from sandbox.errors import ClosedError, ConfigError
from sandbox.result import Result
from sandbox.runner import CurveClient, Runner, RunnerConfig

_GRACE_S = 5.0  # on top of a task's own timeout and queue wait, before the client gives up


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
            assert self._submit is not None and self._conn is not None
            self._result = self._client._wait(self._conn, self._submit, self._started, timeout)
        return self._result

    def done(self) -> bool:
        return self._result is not None

    def cancel(self) -> None:
        self._client.cancel(self)


class AsyncHandle:
    """A task submitted through ``AsyncClient``: ``await handle`` gives its Result."""

    def __init__(self, client: AsyncClient, task_id: str, future: asyncio.Future) -> None:
        self.id, self._client, self.future = task_id, client, future

    def __await__(self):
        return self.future.__await__()

    def cancel(self) -> None:
        self._client.cancel(self)


class ClientBase:
    """The pure core both clients share: no sockets, no threads."""

    def __init__(self, defaults: Limits, queue_timeout_s: float) -> None:
        self.defaults = defaults
        self.queue_timeout_s = queue_timeout_s
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
    ) -> p.Submit | Result:
        """A Submit message, or a ``rejected`` Result when the request cannot be sent."""
        if canonical_runtime(runtime) is None:
            known = ", ".join(sorted(RUNTIME_ALIASES))
            return Result.rejected(f"unknown runtime {runtime!r} (known: {known})")
        if not isinstance(code, str):
            return Result.rejected(f"code must be a str, not {type(code).__name__}")
        try:
            self.defaults.replace(timeout_s=timeout_s, memory_mb=memory_mb,
                                  stdout_bytes=stdout_bytes, result_bytes=result_bytes)
        except ConfigError as exc:
            return Result.rejected(f"bad limits: {exc}")
        try:
            encoded = codec.encode(data, max_bytes=p.MAX_DATA_BYTES)
        except codec.EncodeError as exc:
            return Result.rejected(f"data cannot be sent to the sandbox: {exc}")
        submit = p.Submit(
            id=f"{self._prefix}-{next(self._ids)}",
            runtime=canonical_runtime(runtime) or runtime,
            code=code,
            data=encoded,
            limits=p.TaskLimits(timeout_s, memory_mb, stdout_bytes, result_bytes),
            priority=priority, lane=lane, group=group, version=version,
            wait_for_runner=wait_for_runner, queue_timeout_s=queue_timeout_s,
            idempotent=idempotent, max_attempts=max_attempts, policy=policy,
            # any iterable of names becomes a tuple; a bare string is left for validate to refuse
            imports=imports if imports is None or isinstance(imports, str) else tuple(imports),  # type: ignore[arg-type]
        )
        try:
            p.validate(submit)  # the broker would refuse it: say so here, clearly
        except p.ProtocolError as exc:
            return Result.rejected(str(exc))
        return submit

    def deadline_s(self, submit: p.Submit) -> float:
        timeout = submit.limits.timeout_s or self.defaults.timeout_s
        wait = self.queue_timeout_s if submit.queue_timeout_s is None else submit.queue_timeout_s
        return timeout + wait + _GRACE_S

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
            return Result.from_wire(msg.envelope, max_bytes=self.envelope_limit(submit),
                                    duration_ms=duration)
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
        self.endpoint = f"inproc://sandbox-broker-{uuid.uuid4().hex}"
        self.stop = threading.Event()
        self.server = BrokerServer([self.endpoint], broker, context=context)
        self.runner = Runner(RunnerConfig(self.endpoint, runtimes=runtimes, slots=pool.size,
                                          pool=pool, name="embedded"), context=context)
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


def _options(endpoint: str | None, curve: CurveClient | None) -> None:
    if endpoint and endpoint.startswith("tcp://") and curve is None:
        raise ConfigError("a tcp:// endpoint needs CURVE keys (pass curve=...)")


class _Conn:
    """One DEALER socket, used by one thread at a time (its lock), with replies that arrived
    for other tasks of the same socket kept until someone asks for them."""

    def __init__(self, context: zmq.Context, endpoint: str, curve: CurveClient | None) -> None:
        self.sock = context.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.MAXMSGSIZE, p.MAX_FRAME_BYTES)
        self.sock.setsockopt(zmq.LINGER, 0)
        if curve is not None:
            curve.apply(self.sock)
        self.sock.connect(endpoint)
        self.lock = threading.Lock()
        self.stash: dict[str, p.Message | None] = {}

    def send(self, body: bytes) -> None:
        with self.lock:
            self.sock.send(body)

    def wait(self, task_id: str, until: float) -> tuple[bool, p.Message | None]:
        """(True, reply) when the reply for ``task_id`` came before ``until``, else (False, None)."""
        with self.lock:
            while True:
                if task_id in self.stash:
                    return True, self.stash.pop(task_id)
                remaining = until - time.perf_counter()
                if remaining <= 0 or not self.sock.poll(max(1, int(remaining * 1000))):
                    return False, None
                reply_to, msg = ClientBase.reply_id(self.sock.recv())
                if reply_to == task_id:
                    return True, msg
                if reply_to is not None:
                    self.stash[reply_to] = msg

    def close(self) -> None:
        self.sock.close(linger=0)


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
    ) -> None:
        if not insecure:
            _options(endpoint, curve)
        super().__init__((pool or PoolConfig()).default_limits, queue_timeout_s)
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
               imports: list[str] | None = None) -> Handle:
        """Send a task; the Handle's ``result()`` waits for it."""
        built = self.build(runtime, code, data, timeout_s=timeout_s, memory_mb=memory_mb,
                           stdout_bytes=stdout_bytes, result_bytes=result_bytes,
                           priority=priority, lane=lane, group=group, version=version,
                           wait_for_runner=wait_for_runner, queue_timeout_s=queue_timeout_s,
                           idempotent=idempotent, max_attempts=max_attempts, policy=policy,
                           imports=imports)
        if isinstance(built, Result):
            return Handle(self, None, None, 0.0, done=built)
        conn = self._conn()
        started = time.perf_counter()
        conn.send(p.encode(built))
        return Handle(self, built, conn, started)

    def run(self, runtime: str, code: str, data: Any = None, **options: Any) -> Result:
        """Run a task and wait for its Result (never longer than its client-side deadline)."""
        return self.submit(runtime, code, data, **options).result()

    def cancel(self, handle: Handle | str) -> None:
        task_id = handle.id if isinstance(handle, Handle) else handle
        if not task_id:
            return
        conn = handle._conn if isinstance(handle, Handle) and handle._conn else self._conn()
        conn.send(p.encode(p.Cancel(task_id)))

    def _wait(self, conn: _Conn, submit: p.Submit, started: float,
              timeout: float | None) -> Result:
        deadline = started + self.deadline_s(submit)
        until = deadline if timeout is None else min(deadline, time.perf_counter() + timeout)
        got, msg = conn.wait(submit.id, until)
        if got:
            return self.result_of(msg, submit, started)
        if time.perf_counter() < deadline:
            raise TimeoutError(f"task {submit.id} did not finish within {timeout} s")
        return self.no_answer(self.endpoint, self.deadline_s(submit))

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            conns, self._conns = self._conns, []
        for conn in conns:
            with conn.lock:
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
    ) -> None:
        if not insecure:
            _options(endpoint, curve)
        super().__init__((pool or PoolConfig()).default_limits, queue_timeout_s)
        sync_context: zmq.Context = zmq.Context.instance()
        self.context = zmq.asyncio.Context.shadow(sync_context.underlying)
        self._embedded = None
        if endpoint is None:
            self._embedded = _Embedded(sync_context, pool or PoolConfig(), runtimes,
                                       broker or BrokerConfig())
            endpoint = self._embedded.endpoint
        self.endpoint = endpoint
        self._sock = self.context.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.MAXMSGSIZE, p.MAX_FRAME_BYTES)
        self._sock.setsockopt(zmq.LINGER, 0)
        if curve is not None:
            curve.apply(self._sock)
        self._sock.connect(endpoint)
        self._pending: dict[str, tuple[asyncio.Future, p.Submit, float]] = {}
        self._reader: asyncio.Task | None = None
        self._closed = False

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
                        max_attempts=1, policy="default", imports=None)
        unknown = set(options) - set(defaults)
        if unknown:
            raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}")
        built = self.build(runtime, code, data, **{**defaults, **options})
        if isinstance(built, Result):
            future.set_result(built)
            return AsyncHandle(self, "", future)
        if self._closed:
            raise ClosedError("the client is closed")
        if self._reader is None:
            self._reader = asyncio.ensure_future(self._read())
        self._pending[built.id] = (future, built, time.perf_counter())
        loop.call_later(self.deadline_s(built), self._expire, built.id)
        await self._sock.send(p.encode(built))
        return AsyncHandle(self, built.id, future)

    async def run(self, runtime: str, code: str, data: Any = None, **options: Any) -> Result:
        handle = await self.submit(runtime, code, data, **options)
        return await handle.future

    def cancel(self, handle: AsyncHandle | str) -> None:
        task_id = handle.id if isinstance(handle, AsyncHandle) else handle
        if task_id:
            asyncio.ensure_future(self._sock.send(p.encode(p.Cancel(task_id))))

    async def _read(self) -> None:
        while not self._closed:
            frame = await self._sock.recv()
            task_id, msg = self.reply_id(frame)
            entry = self._pending.pop(task_id, None) if task_id else None
            if entry is not None and not entry[0].done():
                future, submit, started = entry
                future.set_result(self.result_of(msg, submit, started))

    def _expire(self, task_id: str) -> None:
        entry = self._pending.pop(task_id, None)
        if entry is not None and not entry[0].done():
            entry[0].set_result(self.no_answer(self.endpoint, self.deadline_s(entry[1])))

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, zmq.ZMQError):
                pass
        for future, _, _ in self._pending.values():
            if not future.done():
                future.set_result(Result.rejected("the client was closed before a result came"))
        self._pending.clear()
        self._sock.close(linger=0)
        if self._embedded is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._embedded.close)
