"""The local API: ``Sandbox``, pre-forked jails for each runtime in this process.

One loop (``sandbox.host.loop``) owns every jail and child fd of the pools
(``sandbox.host.pools``). ``run`` may be called from any number of threads: it checks the request
where it enters (``sandbox.request``), hands it to the loop and waits for that task's one
outcome. The loop is a ``SharedLoop``: a caller that finds it free runs it itself while it
waits (no thread hand-off on a task's path); one that finds it busy hands its request in
through the loop's queue and wake fd; a background thread runs it between callers.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
import uuid
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any

from runtimes import codec, outcome
from runtimes.outcome import Status
from sandbox import registry, request
from sandbox.config import PoolConfig
from sandbox.errors import ClosedError, ConfigError, RequestError, SessionError
from sandbox.jail.launch import Launcher, files_bytes
from sandbox.host.loop import Loop, SharedLoop
from sandbox.result import OutputChunk, OutputText, Result
from sandbox.host.pools import Pools

OnOutput = Callable[[OutputChunk], Any]  # ``run(..., on_output=...)``: called per chunk

# A caller waits for its outcome at most this much beyond the task's own timeout and the
# pool's acquire timeout: the loop always answers well before, unless it is gone.
_ANSWER_SLACK_S = 10.0


class _Call:
    __slots__ = ("done", "envelope", "chunks")

    def __init__(self, streams: bool = False) -> None:
        self.done = False
        self.envelope: bytes | bytearray = b""
        # a streaming call's output as it came (loop thread), until its caller takes it
        self.chunks: list[tuple[str, bytes]] | None = [] if streams else None


class Sandbox:
    """Run snippets in local jails.

    >>> with Sandbox() as sb:
    ...     sb.run("python", "return data * 2", data=21).value
    42

    Each runtime gets one jail with a pool of ``config.size`` children forked ahead of demand;
    runtimes named in ``runtimes`` start at once (a JailError says why one cannot), others on
    first use. ``run`` is thread-safe.
    """

    def __init__(self, config: PoolConfig | None = None, runtimes: Iterable[str] = ("python",), *,
                 launcher: Launcher | None = None) -> None:
        self.config = config or PoolConfig()
        self._imports = self.config.import_policy()
        self._loop = Loop()
        self._worker = Pools(self.config, self._loop, self._on_outcome, launcher=launcher,
                             output=self._on_output)
        self._calls: dict[Hashable, _Call] = {}
        self._ids = itertools.count()
        self._closed = False
        try:
            for name in runtimes:
                runtime = registry.canonical(name)
                if runtime is None:
                    raise ConfigError(f"unknown runtime {name!r}")
                self._worker.start(runtime, wait=True)  # the loop has no thread yet: run it here
        except BaseException:
            self._worker.close()
            self._loop.close()
            raise
        self._shared = SharedLoop(self._loop)
        self._shared.start()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(
        self,
        runtime: str,
        code: str,
        data: Any = None,
        *,
        timeout_s: float | None = None,
        memory_mb: int | None = None,
        stdout_bytes: int | None = None,
        result_bytes: int | None = None,
        policy: str | None = None,
        imports: Iterable[str] | None = None,
        isolation: str | None = None,
        reuse_key: str | None = None,
        stdin: str | bytes | None = None,
        separate_stderr: bool = False,
        files: Mapping[str, str | bytes] | None = None,
        return_files: bool = False,
        on_output: OnOutput | None = None,
    ) -> Result:
        """Run ``code`` (a function body; ``data`` is bound to ``data``) and return its Result.

        Python only: ``policy="restricted"`` compiles the snippet with RestrictedPython;
        ``imports`` narrows the modules it may import to these (within the pool's
        ``stdlib_allow`` / ``external_allow``). ``isolation="worker"`` runs it in a warm
        worker that serves tasks of ``reuse_key`` only (see the README for what such a task
        can learn of earlier ones); the default is a fresh process. ``stdin`` is what the
        snippet reads from its standard input (python); ``separate_stderr`` keeps stderr out
        of ``stdout``, in ``Result.stderr``. ``files`` go into the task's own directory
        (a pool with ``files_mb``), ``return_files`` brings back what it wrote there
        (``Result.files``). ``on_output`` streams the task: it is called, in this thread,
        with each ``OutputChunk`` as the snippet prints it, before ``run`` returns (the
        Result still holds the whole output); if it raises, the task is killed and the
        exception goes on up. Bad requests (unknown
        runtime, invalid limits, unencodable data, imports the operator does not allow) come
        back as status ``rejected``; nothing about a request raises.
        """
        started = time.perf_counter()
        try:
            encoded = codec.encode(data, path="data")
        except codec.EncodeError as exc:
            return Result.rejected(f"data cannot be sent to the sandbox: {exc}")
        try:
            if isinstance(stdin, str):
                try:
                    stdin = stdin.encode("utf-8")
                except UnicodeEncodeError as exc:
                    raise RequestError(f"stdin is not valid Unicode text ({exc.reason})") from exc
            task = self._request(runtime, code, encoded, timeout_s, memory_mb, stdout_bytes,
                                 result_bytes, policy, imports, isolation, reuse_key, stdin,
                                 separate_stderr, files, return_files,
                                 stream=on_output is not None)
        except RequestError as exc:
            return Result.rejected(str(exc))
        envelope = self._submit(task, on_output)
        return Result.from_wire(envelope, max_bytes=task.limits.envelope_bytes,
                                duration_ms=(time.perf_counter() - started) * 1000.0)

    def session(self, runtime: str = "python", session_id: str | None = None, *,
                memory_mb: int | None = None, idle_timeout_s: float | None = None,
                max_lifetime_s: float | None = None) -> Session:
        """Open a session: one process of ``runtime``'s pool, taken from the pre-forked pool
        (no fork on the way) and held for this session, whose interpreter state lives from
        call to call. ``session_id`` names it: an id not open is opened, an open one is
        attached to (another handle on the same session). ``memory_mb`` caps the session's
        process as a whole (default: the pool's default ``memory_mb``); it ends after
        ``idle_timeout_s`` without a call and ``max_lifetime_s`` in all (defaults:
        ``PoolConfig.session_idle_timeout_s`` and ``session_max_lifetime_s``), or at
        ``Session.close``. SessionError says why one cannot open."""
        name = registry.canonical(runtime)
        if name is None:
            raise SessionError(f"unknown runtime {runtime!r} (known: {registry.known()})")
        sid = uuid.uuid4().hex if session_id is None else session_id
        if not isinstance(sid, str) or not 0 < len(sid) <= request.MAX_REUSE_KEY_CHARS:
            raise SessionError(f"session_id must be a string of 1 to "
                               f"{request.MAX_REUSE_KEY_CHARS} characters")
        try:
            memory = self.config.default_limits.replace(memory_mb=memory_mb).memory_mb
            for value, what in ((idle_timeout_s, "idle_timeout_s"),
                                (max_lifetime_s, "max_lifetime_s")):
                if value is not None and not (isinstance(value, (int, float)) and 0 < value <= 30 * 86400):
                    raise ConfigError(f"{what} must be a number of seconds above 0 and at "
                                      "most 30 days")
        except ConfigError as exc:
            raise SessionError(f"bad session limits: {exc}") from exc
        envelope = self._hand_over(
            lambda key: self._worker.open_session(key, name, sid, memory, idle_timeout_s,
                                                  max_lifetime_s),
            self.config.acquire_timeout_s + self.config.start_timeout_s + _ANSWER_SLACK_S)
        said = outcome.decode(envelope, max_bytes=len(envelope))
        if said.status is not Status.OK:
            raise SessionError(said.message)
        return Session(self, name, sid)

    def session_count(self) -> int:
        """Sessions open now, in all runtimes."""
        return int(self._ask(self._worker.session_count))

    def idle_children(self) -> int:
        return int(self._ask(self._worker.idle_children))

    def snapshot(self) -> dict[str, Any]:
        """Each pool's state: jail and zygote pids, children by state (for tests, metrics)."""
        return dict(self._ask(self._worker.snapshot))

    def close(self) -> None:
        """Stop every jail; children in flight are killed. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        closed: list[bool] = []

        def close() -> None:
            self._worker.close()
            closed.append(True)

        self._shared.run_until(close, lambda: bool(closed))
        self._shared.stop()
        self._loop.close()

    # -- the hand-over to the loop -----------------------------------------------------------

    def _request(self, runtime: str, code: str, data: bytes, timeout_s: float | None,
                 memory_mb: int | None, stdout_bytes: int | None, result_bytes: int | None,
                 policy: str | None, imports: Iterable[str] | None, isolation: str | None = None,
                 reuse_key: str | None = None, stdin: bytes | None = None,
                 separate_stderr: bool = False, files: Mapping[str, str | bytes] | None = None,
                 return_files: bool = False, stream: bool = False) -> request.TaskRequest:
        served = registry.canonical(runtime)
        return request.build(
            runtime, code, data, defaults=self.config.default_limits, import_policy=self._imports,
            timeout_s=timeout_s, memory_mb=memory_mb, stdout_bytes=stdout_bytes,
            result_bytes=result_bytes, policy=policy, imports=imports, isolation=isolation,
            reuse_key=reuse_key, stdin=stdin, separate_stderr=separate_stderr, files=files,
            return_files=return_files, stream=stream,
            files_bytes=files_bytes(self.config, served) if served is not None else 0)

    def _hand_over(self, start: Any, bound: float) -> bytes | bytearray:
        """Run ``start(key)`` in the loop and wait (at most ``bound``) for ``key``'s one
        outcome: a session's opening or closing."""
        if self._closed:
            raise ClosedError("the sandbox is closed")
        key = next(self._ids)
        call = self._calls[key] = _Call()
        if not self._shared.run_until(lambda: start(key), lambda: call.done, bound):
            self._calls.pop(key, None)
            return outcome.encode(Status.CRASHED, f"the sandbox's worker loop did not answer "
                                                  f"within {bound:g} s")
        return call.envelope

    def _submit(self, task: request.TaskRequest,
                on_output: OnOutput | None = None) -> bytes | bytearray:
        if self._closed:
            raise ClosedError("the sandbox is closed")
        key = next(self._ids)
        call = self._calls[key] = _Call(streams=on_output is not None)
        bound = (task.limits.timeout_s + self.config.acquire_timeout_s
                 + self.config.start_timeout_s + _ANSWER_SLACK_S)
        if on_output is not None:
            answered = self._stream(key, task, call, on_output, time.monotonic() + bound)
        else:
            answered = self._shared.run_until(lambda: self._worker.submit(key, task),
                                              lambda: call.done, bound)
        if not answered:
            self._loop.call_soon_threadsafe(lambda: self._worker.cancel(key))
            self._calls.pop(key, None)
            return outcome.encode(Status.CRASHED, f"the sandbox's worker loop did not answer within "
                                                  f"{bound:g} s")
        return call.envelope

    def _stream(self, key: Hashable, task: request.TaskRequest, call: _Call,
                on_output: OnOutput, end: float) -> bool:
        """Wait for ``call`` as ``_submit`` does, handing its output to ``on_output`` in this
        thread as it comes (the loop thread only keeps it: a slow callback holds back its
        own task, whose channel then fills, never the loop). A callback that raises kills
        the task, and its exception goes on up."""
        chunks = call.chunks
        assert chunks is not None
        text = OutputText()
        hand_in: Any = lambda: self._worker.submit(key, task)  # noqa: E731
        try:
            while True:
                left = end - time.monotonic()
                if left <= 0 or not self._shared.run_until(
                        hand_in, lambda: call.done or bool(chunks), left):
                    return False
                hand_in = _nothing
                while chunks:  # the loop thread appends; only this thread takes
                    piece = text.feed(*chunks.pop(0))
                    if piece is not None:
                        on_output(piece)
                if call.done:
                    return True
        except BaseException:
            self._loop.call_soon_threadsafe(lambda: self._worker.cancel(key))
            self._calls.pop(key, None)
            raise

    def _on_output(self, key: Hashable, stream: str, data: bytes) -> None:
        call = self._calls.get(key)
        if call is not None and call.chunks is not None:
            call.chunks.append((stream, data))
            self._shared.changed()

    def _on_outcome(self, key: Hashable, envelope: bytes | bytearray, status: Status) -> None:
        call = self._calls.pop(key, None)
        if call is not None:
            call.envelope = envelope
            call.done = True
            self._shared.changed()

    def _ask(self, fn: Any) -> Any:
        """Run ``fn`` in the loop's thread and return what it returns."""
        if self._closed:
            raise ClosedError("the sandbox is closed")
        box: list[Any] = []
        if not self._shared.run_until(lambda: box.append(fn()), lambda: bool(box), 10.0):
            raise ClosedError("the sandbox's worker loop did not answer")
        return box[0]


def _nothing() -> None:
    """What a streaming call hands the loop after its task: nothing more."""


class Session:
    """A session of a ``Sandbox``: one held process whose interpreter state (Python's
    globals and imports) lives from call to call. Made by ``Sandbox.session``.

    >>> with Sandbox() as sb, sb.session("python") as s:
    ...     s.run("import json\nx = 41").status, s.run("return x + 1").value
    (<Status.OK: 'ok'>, 42)

    A call's ``timeout_s`` interrupts it (``timeout``, the state kept); one that ignores the
    interrupt is killed and the session lost. A call of a session that ended (closed, idle,
    past its lifetime, its process or jail gone) is ``session_lost``, saying why; never a new
    empty session. Calls of one session run one at a time (a second call while one runs is
    ``rejected``). Thread-safe like ``Sandbox.run``.
    """

    def __init__(self, sandbox: Sandbox, runtime: str, session_id: str) -> None:
        self._sandbox = sandbox
        self.runtime = runtime
        self.id = session_id

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Session({self.runtime!r}, {self.id!r})"

    def run(self, code: str, data: Any = None, *, timeout_s: float | None = None,
            stdout_bytes: int | None = None, result_bytes: int | None = None,
            imports: Iterable[str] | None = None,
            files: Mapping[str, str | bytes] | None = None, return_files: bool = False,
            on_output: OnOutput | None = None) -> Result:
        """Run ``code`` (a function body, ``data`` bound to ``data``) in the session. Names
        its top level binds (assignments, imports, ``def``) are the session's and the next
        call sees them; ``return`` gives the result. With the pool's ``files_mb``, the
        session has one directory (``/work``) for its whole life: ``files`` are written
        there before the code runs (replacing files of the same name), and ``return_files``
        brings back all it holds after (``Result.files``). ``on_output`` streams the call
        as in ``Sandbox.run``. Never raises for a bad request (the Result is ``rejected``)."""
        sb = self._sandbox
        started = time.perf_counter()
        try:
            encoded = codec.encode(data, path="data")
            task = sb._request(self.runtime, code, encoded, timeout_s, None, stdout_bytes,
                               result_bytes, None, imports, files=files,
                               return_files=return_files, stream=on_output is not None)
        except codec.EncodeError as exc:
            return Result.rejected(f"data cannot be sent to the sandbox: {exc}")
        except RequestError as exc:
            return Result.rejected(str(exc))
        envelope = sb._submit(dataclasses.replace(task, session=self.id), on_output)
        return Result.from_wire(envelope, max_bytes=task.limits.envelope_bytes,
                                duration_ms=(time.perf_counter() - started) * 1000.0)

    def upload(self, files: Mapping[str, str | bytes], *, timeout_s: float | None = None) -> Result:
        """Write ``files`` into the session's directory (a call that runs no code): ``ok``,
        or why not (``rejected`` for a bad name or over a cap, ``error`` when the directory
        is full, ``session_lost``)."""
        return self.run("", files=files, timeout_s=timeout_s)

    def download(self, *, timeout_s: float | None = None,
                 result_bytes: int | None = None) -> Result:
        """What the session's directory holds now, in ``Result.files`` (at most 64 files
        and ``result_bytes``; what did not fit is named in ``Result.files_skipped``)."""
        return self.run("", return_files=True, timeout_s=timeout_s, result_bytes=result_bytes)

    def close(self) -> None:
        """End the session: its process is killed, its state gone. Safe to call twice, and
        on a session that ended on its own."""
        sb = self._sandbox
        if sb._closed:
            return
        sb._hand_over(lambda key: sb._worker.close_session(key, self.runtime, self.id),
                      _ANSWER_SLACK_S)
