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

import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import zmq

from broker import protocol as p
from broker.core import BrokerConfig
from sandbox.client.base import (CLOSE_LINGER_MS, CLOSED_MESSAGE, GRACE_S, ClientBase, OnOutput,
                                 OutputDecoder, keys)
from sandbox.client.embedded import endpoint_for
from sandbox.config import PoolConfig
from sandbox.errors import ClosedError
from sandbox.link import CurveClient, Link
from sandbox.request import Options, Request
from sandbox.result import OutputChunk, Result

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from sandbox.request import RunOptions

__all__ = ["Client", "ClientSession", "Handle"]


class Handle:
    """A submitted task: its id, and a way to wait for (or cancel) it."""

    def __init__(self, client: Client, submit: p.Submit | None, conn: _Conn | None,
                 started: float, done: Result | None = None) -> None:
        self.id = submit.id if submit is not None else ""
        self._client, self._submit, self._conn, self._started = client, submit, conn, started
        self._result = done

    def output(self) -> Iterator[OutputChunk]:
        """A streaming task's output (``stream=True``), chunk by chunk as it comes, until
        its result is in (then ``result()`` returns at once). For a task that does not
        stream it yields nothing and ends when the result is in. Never longer than the
        task's client-side deadline."""
        if self._conn is None or self._submit is None or self._result is not None:
            return
        until = self._started + self._client.deadline_s(self._submit)
        while True:
            chunks, answered = self._conn.take_output(self.id, until)
            yield from chunks
            if answered or time.perf_counter() >= until or self._conn.closed:
                return

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

    def __init__(self, context: zmq.Context[Any], endpoint: str, curve: CurveClient | None) -> None:
        self.link = Link(context, endpoint, curve)
        self.cond = threading.Condition()
        self.closed = False
        self._driving = False
        self._retry = False
        self.outbox: deque[_Sending] = deque()
        self.pending: set[str] = set()  # ids whose answer is awaited
        self.answers: dict[str, p.Message | None] = {}  # first answers not yet taken
        # streaming tasks awaited: their output come so far, not yet taken, and its decoder
        self.outputs: dict[str, deque[OutputChunk]] = {}
        self._decoders: dict[str, OutputDecoder] = {}
        # idempotent tasks awaited: sent again should the broker go away before answering
        self._resend: dict[str, bytes] = {}
        self._drops = 0  # connection drops already handled
        self._forgotten: deque[str] = deque()  # appended without the lock (from __del__)
        self._wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._poller = zmq.Poller()
        self._poller.register(self.link.sock, zmq.POLLIN)
        if self.link.monitor is not None:
            self._poller.register(self.link.monitor, zmq.POLLIN)
        self._poller.register(self._wake, zmq.POLLIN)
        self._polling_out = False

    # -- what callers do (any thread) --------------------------------------------------------

    def send(self, task_id: str | None, frame: bytes, wait_s: float, *,
             resend: bool = False, stream: bool = False) -> str | None:
        """Send ``frame`` (a task ``task_id`` whose answer is then awaited; ``resend``: it
        is idempotent, sent again if the broker goes away before it answers); None once the
        socket took it, else why it could not within ``wait_s``."""
        item = _Sending(frame)
        with self.cond:
            if self.closed:
                return CLOSED_MESSAGE
            if self.link.state.refused:
                self._retry = True  # the key may be authorized by now: one handshake more
            if task_id is not None:
                self.pending.add(task_id)
                if resend:
                    self._resend[task_id] = frame
                if stream:
                    self.outputs[task_id] = deque()
                    self._decoders[task_id] = OutputDecoder()
            self.outbox.append(item)
            until = time.perf_counter() + self.link.state.send_wait_s(wait_s)
        self._drive(lambda: item.sent or item.error is not None, until)
        with self.cond:
            if item.sent:
                return None
            if item in self.outbox:
                self.outbox.remove(item)
            if task_id is not None:
                self._drop(task_id)
            if item.error is not None:
                return item.error
            if self.closed:
                return CLOSED_MESSAGE
            return self.link.state.give_up(wait_s)

    def wait(self, task_id: str, until: float) -> tuple[bool, p.Message | None]:
        """(True, reply) when the answer for ``task_id`` came before ``until`` (perf_counter
        seconds), else (False, None)."""
        self._drive(lambda: task_id in self.answers, until)
        with self.cond:
            if task_id in self.answers:
                answer = self.answers.pop(task_id)
                self._drop(task_id)
                return True, answer
            return False, None

    def take_output(self, task_id: str, until: float) -> tuple[list[OutputChunk], bool]:
        """The output of ``task_id`` come since the last call (waiting for some, or for its
        answer, until ``until``), and whether its answer is in."""
        self._drive(lambda: task_id in self.answers or bool(self.outputs.get(task_id)), until)
        with self.cond:
            chunks = self.outputs.get(task_id)
            taken = list(chunks) if chunks else []
            if chunks:
                chunks.clear()
            return taken, task_id in self.answers

    def _drop(self, task_id: str) -> None:
        """Forget what is kept for ``task_id`` but its answer (under the lock)."""
        self.pending.discard(task_id)
        self._resend.pop(task_id, None)
        self.outputs.pop(task_id, None)
        self._decoders.pop(task_id, None)

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
                self._drop(task_id)
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
            self._drop(task_id)
            self.answers.pop(task_id, None)
        if self._retry:
            self._retry = False
            link.retry()
        state = link.update()
        changed = self._on_drops(state.drops)
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
            state.sent()
        while True:
            try:
                frame = link.sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            reply_to, msg = ClientBase.reply_id(frame)
            if isinstance(msg, p.Output):  # a streaming task's output, before its answer
                decoder = self._decoders.get(msg.id)
                if decoder is not None and msg.id not in self.answers:
                    chunk = decoder.feed(msg)
                    if chunk is not None:
                        self.outputs[msg.id].append(chunk)
                        changed = True
                continue
            # the first answer for an awaited id is its answer; anything else is dropped
            if reply_to in self.pending and reply_to not in self.answers:
                self.answers[reply_to] = msg
                changed = True
        if changed:
            self.cond.notify_all()

    def _on_drops(self, drops: int) -> bool:
        """The connection dropped (the broker died or restarted): it will answer none of the
        tasks it had, so each awaited one ends now, ``crashed``, or, if idempotent, is sent
        again once a broker is back (its caller's deadline still holds)."""
        if drops == self._drops:
            return False
        self._drops = drops
        for task_id in sorted(self.pending - set(self.answers)):
            frame = self._resend.get(task_id)
            if frame is not None:
                self.outbox.append(_Sending(frame))
            else:
                self.answers[task_id] = p.ResultMsg(
                    task_id, p.CRASHED, f"the broker at {self.link.endpoint} went away before "
                    "it answered (the task may have run)")
        return True

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
        self.link.close(linger_ms=CLOSE_LINGER_MS)
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
        self.context: zmq.Context[Any] = zmq.Context.instance()
        self.endpoint, self._embedded = endpoint_for(endpoint, curve, insecure, pool, runtimes,
                                                     broker, self.context)
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

    def submit(self, runtime: str, code: str, data: Any = None,
               **options: Unpack[RunOptions]) -> Handle:
        """Send a task; the Handle's ``result()`` waits for it. Waits for the broker's socket
        at most the task's queue wait (then the Handle holds a ``rejected`` Result). The
        options are ``sandbox.request.Options``'."""
        built = self.request(runtime, code, data, Options.of(**options))
        if isinstance(built, Result):
            return Handle(self, None, None, 0.0, done=built)
        return self.submit_request(built)

    def submit_request(self, req: Request) -> Handle:
        """Send a request checked already (``sandbox.request.request``), as it is."""
        submit = self.submit_message(req)
        conn = self._conn()
        started = time.perf_counter()
        error = conn.send(submit.id, p.encode(submit), self.send_wait_s(submit),
                          resend=submit.idempotent, stream=submit.stream)
        if error is not None:
            return Handle(self, submit, None, started, done=Result.rejected(error))
        return Handle(self, submit, conn, started)

    def run(self, runtime: str, code: str, data: Any = None, *, on_output: OnOutput | None = None,
            **options: Unpack[RunOptions]) -> Result:
        """Run a task and wait for its Result (never longer than its client-side deadline).
        ``on_output``: called with each ``OutputChunk`` while the task runs (in this thread;
        it streams the task: ``stream=True``)."""
        if on_output is None:
            return self.submit(runtime, code, data, **options).result()
        options["stream"] = True
        handle = self.submit(runtime, code, data, **options)
        try:
            for chunk in handle.output():
                on_output(chunk)
        except BaseException:
            handle.cancel()  # its callback failed (or Ctrl-C): nobody waits for the task
            raise
        return handle.result()

    def session(self, runtime: str = "python", session_id: str | None = None, *,
                memory_mb: int | None = None, idle_timeout_s: float | None = None,
                max_lifetime_s: float | None = None) -> ClientSession:
        """Open a session (or attach to this principal's open one of that id): one held
        process on one runner whose interpreter state lives across calls (see
        ``sandbox.Sandbox.session``). ``memory_mb`` caps its whole process; the idle timeout
        and lifetime default to the runner's. SessionError says why it did not open."""
        sid = self.new_session_id(session_id)
        built = self.session_request(runtime, sid, "open", options=Options(memory_mb=memory_mb),
                                     idle_timeout_s=idle_timeout_s, max_lifetime_s=max_lifetime_s)
        result = built if isinstance(built, Result) else self.submit_request(built).result()
        self.opened(result)
        assert not isinstance(built, Result)
        return ClientSession(self, built.runtime, sid)

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


class ClientSession:
    """A session opened through ``Client.session``: ``run`` calls it, ``close`` ends it.
    A call of a session that ended is ``session_lost``, saying why; never a new session."""

    def __init__(self, client: Client, runtime: str, session_id: str) -> None:
        self._client = client
        self.runtime = runtime
        self.id = session_id

    def __enter__(self) -> ClientSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ClientSession({self.runtime!r}, {self.id!r})"

    def run(self, code: str, data: Any = None, *, timeout_s: float | None = None,
            stdout_bytes: int | None = None, result_bytes: int | None = None,
            imports: Any = None, files: Mapping[str, str | bytes] | None = None,
            return_files: bool = False) -> Result:
        """Run ``code`` in the session (its names live on to the next call). ``files`` go
        into the session's directory first, ``return_files`` brings back all it holds (see
        ``sandbox.Session.run``)."""
        options = Options.of(timeout_s=timeout_s, stdout_bytes=stdout_bytes,
                             result_bytes=result_bytes, imports=imports, files=files,
                             return_files=return_files)
        built = self._client.session_request(self.runtime, self.id, "call", code, data, options)
        if isinstance(built, Result):
            return built
        return self._client.submit_request(built).result()

    def upload(self, files: Mapping[str, str | bytes], *, timeout_s: float | None = None) -> Result:
        """Write ``files`` into the session's directory (``sandbox.Session.upload``)."""
        return self.run("", files=files, timeout_s=timeout_s)

    def download(self, *, timeout_s: float | None = None,
                 result_bytes: int | None = None) -> Result:
        """What the session's directory holds, in ``Result.files`` (``sandbox.Session.download``)."""
        return self.run("", return_files=True, timeout_s=timeout_s, result_bytes=result_bytes)

    def close(self) -> Result:
        """End the session; its process and state are gone. Safe on an ended session."""
        if self._client._closed:
            return Result.rejected(CLOSED_MESSAGE)
        built = self._client.session_request(self.runtime, self.id, "close")
        if isinstance(built, Result):
            return built
        return self._client.submit_request(built).result()
