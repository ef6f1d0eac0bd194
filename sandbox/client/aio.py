"""The asyncio client: ``AsyncClient``, with ``Client``'s surface (``await run(...)``,
``submit``, ``cancel``, ``aclose``) on the same pure base; only its send/receive loop is its
own. The promises are ``sandbox.client.sync``'s."""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import AsyncIterator, Generator, Mapping
from typing import TYPE_CHECKING, Any, cast

import zmq
import zmq.asyncio
from zmq.utils.monitor import parse_monitor_message

from broker import protocol as p
from broker.core import BrokerConfig
from runtimes.outcome import Status
from sandbox.client.base import (CLOSE_LINGER_MS, CLOSED_MESSAGE, GRACE_S, MONITOR_EVENTS,
                                 ClientBase, OnOutput, OutputDecoder, keys)
from sandbox.client.embedded import endpoint_for
from sandbox.config import PoolConfig
from sandbox.errors import ClosedError
from sandbox.link import CurveClient, LinkState, close_monitored, monitored, prepare
from sandbox.request import Options, Request
from sandbox.result import OutputChunk, Result

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from sandbox.request import RunOptions

__all__ = ["AsyncClient", "AsyncClientSession", "AsyncHandle"]


class AsyncHandle:
    """A task submitted through ``AsyncClient``: ``await handle`` gives its Result.
    Cancelling the await (``asyncio.wait_for`` timing out, a cancelled task) cancels the
    task at the broker."""

    def __init__(self, client: AsyncClient, task_id: str, future: asyncio.Future[Result],
                 output: asyncio.Queue[OutputChunk | None] | None = None) -> None:
        self.id, self._client, self.future = task_id, client, future
        self._output = output

    async def output(self) -> AsyncIterator[OutputChunk]:
        """A streaming task's output (``stream=True``), chunk by chunk as it comes, until its
        result is in (then ``await handle`` returns at once); nothing for a task that does
        not stream. Ends, like the result, by the task's client-side deadline."""
        if self._output is None:
            return
        while True:
            chunk = await self._output.get()
            if chunk is None:
                return
            yield chunk

    def __await__(self) -> Generator[Any, None, Result]:
        return self.future.__await__()

    async def result(self, timeout: float | None = None) -> Result:
        """The Result, as ``await handle`` gives it; TimeoutError if ``timeout`` passes first
        (the task goes on: ``cancel()`` stops it)."""
        return await asyncio.wait_for(asyncio.shield(self.future), timeout)

    def done(self) -> bool:
        return self.future.done()

    def cancel(self) -> None:
        self._client.cancel(self)


class AsyncClient(ClientBase):
    """asyncio client with the same surface: ``await run(...)``, ``submit``, ``cancel``."""

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        curve: CurveClient | None = None,
        curve_dir: str | None = None,
        key: str = "client",
        insecure: bool = False,
        pool: PoolConfig | None = None,
        runtimes: tuple[str, ...] = ("python", "javascript"),
        broker: BrokerConfig | None = None,
        queue_timeout_s: float = 30.0,
        grace_s: float = GRACE_S,
    ) -> None:
        curve = keys(curve, curve_dir, key)
        super().__init__((pool or PoolConfig()).default_limits, queue_timeout_s, grace_s)
        sync_context: zmq.Context[Any] = zmq.Context.instance()
        self.context = zmq.asyncio.Context.shadow(sync_context.underlying)
        self.endpoint, self._embedded = endpoint_for(endpoint, curve, insecure, pool, runtimes,
                                                     broker, sync_context)
        self._state = LinkState(self.endpoint)
        self._sock = self.context.socket(zmq.DEALER)
        prepare(self._sock, curve)
        self._monitor = (self._sock.get_monitor_socket(MONITOR_EVENTS) if monitored(self.endpoint)
                         else None)
        self._sock.connect(self.endpoint)
        self._pending: dict[str, tuple[asyncio.Future[Any], p.Submit, float]] = {}
        # streaming tasks: where their output goes, and its decoder (ended by None)
        self._outputs: dict[str, tuple[asyncio.Queue[OutputChunk | None], OutputDecoder]] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._changed: asyncio.Event | None = None
        self._closed = False

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def submit(self, runtime: str, code: str, data: Any = None,
                     **options: Unpack[RunOptions]) -> AsyncHandle:
        """Send a task; ``await`` the handle for its Result. The options are
        ``sandbox.request.Options``'."""
        built = self.request(runtime, code, data, Options.of(**options))
        if isinstance(built, Result):
            future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
            future.set_result(built)
            return AsyncHandle(self, "", future)
        return await self.submit_request(built)

    async def submit_request(self, req: Request) -> AsyncHandle:
        """Send a request checked already (``sandbox.request.request``), as it is."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        built = self.submit_message(req)
        if self._closed:
            raise ClosedError("the client is closed")
        self._start()
        started = time.perf_counter()
        self._pending[built.id] = (future, built, started)
        output: asyncio.Queue[OutputChunk | None] | None = None
        if built.stream:
            # unbounded, yet bounded by the task: the broker forwards at most its output cap
            output = asyncio.Queue()
            self._outputs[built.id] = (output, OutputDecoder())
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
        return AsyncHandle(self, built.id, future, output)

    async def run(self, runtime: str, code: str, data: Any = None, *,
                  on_output: OnOutput | None = None, **options: Unpack[RunOptions]) -> Result:
        """Run a task and return its Result. ``on_output``: called with each
        ``OutputChunk`` while the task runs (awaited if it returns an awaitable; it streams
        the task: ``stream=True``)."""
        if on_output is None:
            return await (await self.submit(runtime, code, data, **options))
        options["stream"] = True
        handle = await self.submit(runtime, code, data, **options)
        try:
            async for chunk in handle.output():
                called = on_output(chunk)
                if inspect.isawaitable(called):
                    await called
        except BaseException:
            handle.cancel()  # cancelled (or its callback failed) while it streamed
            raise
        return await handle

    async def session(self, runtime: str = "python", session_id: str | None = None, *,
                      memory_mb: int | None = None, idle_timeout_s: float | None = None,
                      max_lifetime_s: float | None = None) -> AsyncClientSession:
        """``Client.session``, awaited."""
        sid = self.new_session_id(session_id)
        built = self.session_request(runtime, sid, "open", options=Options(memory_mb=memory_mb),
                                     idle_timeout_s=idle_timeout_s, max_lifetime_s=max_lifetime_s)
        result = built if isinstance(built, Result) else await (await self.submit_request(built))
        self.opened(result)
        assert not isinstance(built, Result)
        return AsyncClientSession(self, built.runtime, sid)

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
        until = time.perf_counter() + self._state.send_wait_s(wait_s)
        sending = cast(asyncio.Future[Any], self._sock.send(frame))
        if sending.done():  # the usual case: the socket took it at once
            sending.result()
            self._state.sent()
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
                    return self._state.give_up(wait_s)
                self._changed.clear()
                changed = asyncio.ensure_future(self._changed.wait())
                try:
                    await asyncio.wait({sending, changed}, timeout=left,
                                       return_when=asyncio.FIRST_COMPLETED)
                finally:
                    changed.cancel()
            sending.result()
            self._state.sent()
            return None
        finally:
            if not sending.done():
                sending.cancel()

    async def _read(self) -> None:
        while not self._closed:
            frame = await self._sock.recv()
            task_id, msg = self.reply_id(frame)
            if isinstance(msg, p.Output):  # a streaming task's output, before its answer
                stream = self._outputs.get(msg.id)
                if stream is not None:
                    chunk = stream[1].feed(msg)
                    if chunk is not None:
                        stream[0].put_nowait(chunk)
                continue
            # the first answer for an awaited id is its answer; anything else is dropped
            entry = self._pending.pop(task_id, None) if task_id else None
            if entry is not None and not entry[0].done():
                future, submit, started = entry
                future.set_result(self.result_of(msg, submit, started))

    async def _watch(self, monitor: zmq.asyncio.Socket) -> None:
        drops = 0
        while not self._closed:
            event = parse_monitor_message(await monitor.recv_multipart())
            self._state.on_event(event["event"], event["value"])
            if self._state.drops != drops:
                drops = self._state.drops
                self._broker_went_away()
            if self._changed is not None:
                self._changed.set()

    def _broker_went_away(self) -> None:
        """The connection dropped (the broker died or restarted): it will answer none of the
        tasks it had, so each awaited one ends now, ``crashed``, or, if idempotent, is sent
        again once a broker is back (its caller's deadline still holds)."""
        for task_id, (future, submit, _) in sorted(self._pending.items()):
            if future.done():
                continue
            if submit.idempotent:
                sending = cast(asyncio.Future[Any], self._sock.send(p.encode(submit)))
                sending.add_done_callback(_consume)
            else:
                del self._pending[task_id]
                future.set_result(Result(Status.CRASHED, f"the broker at {self.endpoint} went "
                                         "away before it answered (the task may have run)"))

    def _settled(self, task_id: str, future: asyncio.Future[Any]) -> None:
        stream = self._outputs.pop(task_id, None)
        if stream is not None:
            stream[0].put_nowait(None)  # its output ends with its answer, however it came
        if future.cancelled():  # the await was cancelled: nobody waits for the task
            self._abandon(task_id)

    def _abandon(self, task_id: str) -> None:
        if self._pending.pop(task_id, None) is not None and not self._closed:
            self._send_cancel(task_id)

    def _send_cancel(self, task_id: str) -> None:
        sending = cast(asyncio.Future[Any], self._sock.send(p.encode(p.Cancel(task_id))))
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
        close_monitored(self._sock, self._monitor, CLOSE_LINGER_MS)
        if self._embedded is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._embedded.close)


def _consume(future: asyncio.Future[Any]) -> None:
    """A fire-and-forget send's outcome, read so that asyncio does not report it."""
    if not future.cancelled():
        future.exception()


class AsyncClientSession:
    """``ClientSession`` for ``AsyncClient``: ``await run(...)``, ``await close()``."""

    def __init__(self, client: AsyncClient, runtime: str, session_id: str) -> None:
        self._client = client
        self.runtime = runtime
        self.id = session_id

    async def __aenter__(self) -> AsyncClientSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"AsyncClientSession({self.runtime!r}, {self.id!r})"

    async def run(self, code: str, data: Any = None, *, timeout_s: float | None = None,
                  stdout_bytes: int | None = None, result_bytes: int | None = None,
                  imports: Any = None, files: Mapping[str, str | bytes] | None = None,
                  return_files: bool = False) -> Result:
        options = Options.of(timeout_s=timeout_s, stdout_bytes=stdout_bytes,
                             result_bytes=result_bytes, imports=imports, files=files,
                             return_files=return_files)
        built = self._client.session_request(self.runtime, self.id, "call", code, data, options)
        if isinstance(built, Result):
            return built
        return await (await self._client.submit_request(built))

    async def upload(self, files: Mapping[str, str | bytes], *,
                     timeout_s: float | None = None) -> Result:
        return await self.run("", files=files, timeout_s=timeout_s)

    async def download(self, *, timeout_s: float | None = None,
                       result_bytes: int | None = None) -> Result:
        return await self.run("", return_files=True, timeout_s=timeout_s,
                              result_bytes=result_bytes)

    async def close(self) -> Result:
        if self._client._closed:
            return Result.rejected(CLOSED_MESSAGE)
        built = self._client.session_request(self.runtime, self.id, "close")
        if isinstance(built, Result):
            return built
        return await (await self._client.submit_request(built))
