"""The pools: every runtime's pool and jail, driven from one loop (``Pools``).

This is the I/O shell around ``sandbox.host.pool_core``: it feeds each pool's core the events it
sees on its fds (the zygote's control channel, each child's task channel, the jail's exit and
stderr) and the clock, and carries out the actions the core returns (start or stop a jail,
spawn, send a task frame, SIGKILL through a pidfd, close a channel, deliver an outcome).
All of it runs in the thread of one ``sandbox.host.loop.Loop``; nothing here is thread-safe, and
nothing here decides.

Fronts use it: the runner (``sandbox.host.runner``, a broker's tasks), the local API
(``sandbox.host.local``, a caller's), the n8n runner. A front hands in ``TaskRequest``s (already
checked, ``sandbox.request``) under keys of its own choosing and receives exactly one
``deliver(key, envelope, status)`` per key, in the loop's thread; a front that passes
``output`` also receives, before it, the output of each task that asked to ``stream``:
``output(key, stream, data)``, what arrived in one read of the child's channel, per stream,
within the task's ``stdout_bytes`` (counted here again: the child is not trusted to).
Every envelope a child wrote leaves here with what its task cost appended
(``sandbox.host.usage``, ``runtimes.outcome.with_usage``).

A front that passes ``call`` offers its tasks functions of its own (a task names those it
may call: ``TaskRequest.calls``): ``call(key, call_id, name, args)`` for each call a running
task makes (``runtimes.calls``), answered by the front with ``answer(key, call_id, ok,
data)`` whenever it has the answer. A child that calls what its task does not offer, or
calls again before its answer, breaks the protocol: its task ends ``crashed``. A task's
timeout runs while it waits; an answer for a task that has ended is dropped.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import resource
import signal
import socket
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import seccomp
from broker.protocol import MAX_CHUNK_BYTES
from runtimes import attempts, framing, outcome, output, protocol
from runtimes.outcome import Status
from sandbox import registry
from sandbox.jail import launch
from sandbox.jail.mounts import BACKGROUND_NICE
from sandbox.pyodide import runtime as pyodide
from sandbox.host import pool_core as core
from sandbox.config import MAX_STDOUT_BYTES, PoolConfig
from sandbox.errors import JailError
from sandbox.host import usage
from sandbox.host.loop import Loop
from sandbox.request import TaskRequest

log = logging.getLogger("sandbox.host.pools")

MiB = 1024 * 1024
Deliver = Callable[[Hashable, bytes, Status], None]
Output = Callable[[Hashable, str, bytes], None]
Call = Callable[[Hashable, int, str, str], None]
MAX_CALLS_PER_TASK = 10_000  # a snippet in a loop of calls ends, named, rather than spin on
_SEND_TIMEOUT_S = 5.0  # a task frame into an idle child's socket buffer
_FRAMES_PER_WAKE = 64  # a streaming child's frames read in one go, at most


def rules_of(config: PoolConfig, runtime: str) -> core.PoolRules:
    """A runtime's pool rules: the pool's settings, and for a runtime whose children are
    workers of their own (``registry``: pyodide) its readiness, grace and exit meanings."""
    rules = core.PoolRules(
        size=config.size,
        acquire_timeout_s=config.acquire_timeout_s,
        start_timeout_s=config.start_timeout_s,
        recycle_delay_s=config.recycle_delay_ms / 1000.0,
        worker_tasks=config.worker_tasks,
        worker_age_s=config.worker_age_s,
        max_sessions=config.max_sessions,
        interrupt_grace_s=config.session_interrupt_grace_s,
        interruptible=registry.RUNTIMES[runtime].interruptible,
        # rule 5h for forked children; a worker program's start (pyodide: seconds of Node.js)
        # stays in the background
        hurry=not registry.RUNTIMES[runtime].worker_children,
    )
    if registry.RUNTIMES[runtime].worker_children:
        rules = pyodide.pool_rules(rules, config.pyodide)
    return rules


def jail_setup(config: PoolConfig, runtime: str) -> launch.RuntimeSetup:
    """What ``runtime``'s jail adds to the common one, handed to the launcher: the pyodide
    runtime's mounts, worker spec and namespace choice; nothing for the others."""
    return pyodide.jail_setup(config) if runtime == "pyodide" else launch.RuntimeSetup()


@dataclass
class _ChildIO:
    pid: int
    channel: socket.socket
    fd: int  # kept: the loop unwatches this number even once the channel is closed
    pidfd: int
    host_pid: int
    reader: framing.FrameReader | None = None  # set while a ready or result frame is awaited
    output: int | None = None  # its shared output file (runtimes.output), unmapped here
    used: bool = False  # it has had a task: its output file holds that task's header
    key: Hashable = None  # the task it runs
    streamed: int = 0  # bytes of that task's output passed on (``stream``)
    calling: int | None = None  # the call of that task awaiting its answer
    calls: int = 0  # calls that task made
    cpu_start_ns: int | None = None  # its CPU time when the task was handed over
    accounting: usage.Accounting | None = None  # what its tasks cost (sandbox.host.usage)

    def close(self) -> None:
        self.channel.close()
        if self.accounting is not None:
            self.accounting.close()
        if self.output is not None:
            os.close(self.output)
        try:
            os.close(self.pidfd)
        except OSError:
            pass

    def spent(self) -> tuple[float | None, int | None]:
        """What its current task cost so far (None, None when it cannot be read)."""
        if self.accounting is None:
            return None, None
        return self.accounting.spent(self.cpu_start_ns)

    def signal(self, sig: int) -> None:
        try:
            signal.pidfd_send_signal(self.pidfd, sig)
        except OSError:
            pass  # gone already: the exit report says how


@dataclass
class _Pool:
    runtime: str
    core: core.PoolCore
    jail: launch.JailProcess | None = None
    watched: list[int] = field(default_factory=list)  # the jail's fds in the loop
    children: dict[int, _ChildIO] = field(default_factory=dict)
    requests: dict[Hashable, TaskRequest] = field(default_factory=dict)
    session_mb: dict[Hashable, int] = field(default_factory=dict)  # each open session's memory
    baseline_bytes: int = 0  # a fresh child's address space, measured once per jail
    oom_seen: int = 0
    # the output files sent with spawns whose children are not reported yet, in order
    outputs: deque[int] = field(default_factory=deque)
    # core.wake_at(), kept until the core next changes (every change goes through _apply):
    # the loop asks for it several times per task, and it scans every child
    due: float | None = None
    due_known: bool = False

    def wake_at(self) -> float | None:
        if not self.due_known:
            self.due, self.due_known = self.core.wake_at(), True
        return self.due


class Pools:
    """Each served runtime's pool of jailed children, and its jail, on one loop."""

    def __init__(self, config: PoolConfig, loop: Loop, deliver: Deliver, *,
                 launcher: launch.Launcher | None = None,
                 served: Iterable[str] = tuple(registry.RUNTIMES),
                 preload: Mapping[str, tuple[str, ...]] | None = None,
                 session_ended: Callable[[str, Hashable, str], None] | None = None,
                 output: Output | None = None, call: Call | None = None) -> None:
        self.config = config
        self._output = output
        self._call = call
        # what a runtime's zygote prepares beyond the operator's modules (the n8n runner: its
        # Code node API, compiled once and inherited by every child)
        self._preload = dict(preload or {})
        self.loop = loop
        self.served = tuple(served)
        self._deliver = deliver
        # told (runtime, session, why) when a session ends on its own (idle, lifetime, its
        # process or jail gone), so a runner can tell its broker
        self._session_ended = session_ended
        self._launch = launcher or launch.launch
        self._pools: dict[str, _Pool] = {}
        self._owner: dict[Hashable, _Pool] = {}  # task key -> the pool running it
        self._boost = os.geteuid() == 0  # see mounts.BACKGROUND_NICE
        self._closed = False
        loop.add_timed(self)

    # -- what fronts call (in the loop's thread) ---------------------------------------------

    def start(self, runtime: str, *, wait: bool = False,
              abandon: Callable[[], bool] = lambda: False) -> None:
        """Start ``runtime``'s jail now rather than at its first task. With ``wait``, run the
        loop here until it is ready, raising JailError with the reason if it does not come
        up (for use before the loop has a thread of its own); or until ``abandon()`` is true
        after an event (the process is told to stop: ``close()`` then ends the jail at once,
        where waiting for a Pyodide jail's workers took seconds)."""
        pool = self._pool(runtime)
        self._apply(pool, pool.core.start(time.monotonic()))
        if not wait:
            return
        while pool.core.jail is core.JailState.STARTING:
            self.loop.run_once()
            if abandon():
                return
        if pool.core.jail is not core.JailState.UP:
            raise JailError(f"the {runtime} jail did not start: {pool.core.jail_reason}")
        # its first children too: all spawned, and (workers that say ready) one of them ready
        settle = time.monotonic() + self.config.start_timeout_s + pool.core.rules.ready_timeout_s

        def settling() -> bool:
            counts = pool.core.counts()
            return bool(pool.core.pending or (counts["starting"] and not pool.core.idle_count()))

        while settling() and pool.core.jail is core.JailState.UP and time.monotonic() < settle:
            self.loop.run_once(max_wait_s=settle - time.monotonic())
            if abandon():
                return
        if pool.core.jail is not core.JailState.UP:
            raise JailError(f"the {runtime} jail did not start: {pool.core.jail_reason}")

    def submit(self, key: Hashable, request: TaskRequest) -> None:
        now = time.monotonic()
        if key in self._owner:
            self._deliver(key, outcome.encode(Status.REJECTED, f"task {key!r} is already running"),
                          Status.REJECTED)
            return
        if self._closed or request.runtime not in self.served:
            why = ("the sandbox is closed" if self._closed
                   else f"runtime {request.runtime!r} is not served here")
            self._deliver(key, outcome.encode(Status.REJECTED, why), Status.REJECTED)
            return
        pool = self._pool(request.runtime)
        pool.requests[key] = request
        self._owner[key] = pool
        if request.session is not None:
            self._apply(pool, pool.core.call(key, request.session, request.limits.timeout_s, now))
            return
        self._apply(pool, pool.core.submit(key, request.limits.timeout_s, now, request.reuse))

    def open_session(self, key: Hashable, runtime: str, session: Hashable, memory_mb: int,
                     idle_s: float | None = None, life_s: float | None = None) -> None:
        """Hold a child of ``runtime``'s pool for ``session`` (or attach to it, when open):
        ``key``'s one outcome says ``ok`` or why not. ``memory_mb`` caps the whole session's
        process (its address space), whatever its calls ask."""
        if self._closed or runtime not in self.served or key in self._owner:
            why = ("the sandbox is closed" if self._closed else
                   f"runtime {runtime!r} is not served here" if runtime not in self.served
                   else f"task {key!r} is already running")
            self._deliver(key, outcome.encode(Status.REJECTED, why), Status.REJECTED)
            return
        if registry.RUNTIMES[runtime].worker_children:
            why = f"sessions are not available for {runtime} (its workers restore their state)"
            self._deliver(key, outcome.encode(Status.REJECTED, why), Status.REJECTED)
            return
        pool = self._pool(runtime)
        self._owner[key] = pool
        if session not in pool.core.sessions:
            pool.session_mb[session] = memory_mb
        # a caller may ask for less than the operator's idle timeout and lifetime, not more
        idle, life = self.config.session_idle_timeout_s, self.config.session_max_lifetime_s
        self._apply(pool, pool.core.open_session(
            key, session, idle if idle_s is None else min(idle_s, idle),
            life if life_s is None else min(life_s, life), time.monotonic()))
        if session not in pool.core.sessions:  # refused
            pool.session_mb.pop(session, None)

    def close_session(self, key: Hashable, runtime: str, session: Hashable) -> None:
        pool = self._pools.get(runtime)
        if pool is None or key in self._owner:
            self._deliver(key, outcome.encode(Status.REJECTED, f"session {session!r} is not open"),
                          Status.REJECTED)
            return
        self._owner[key] = pool
        self._apply(pool, pool.core.close_session(key, session, time.monotonic()))

    def end_sessions(self, why: str) -> None:
        """End every session of every pool (their front forgot them)."""
        now = time.monotonic()
        for pool in list(self._pools.values()):
            self._apply(pool, pool.core.end_sessions(why, now))

    def session_count(self) -> int:
        return sum(p.core.session_count() for p in self._pools.values())

    def cancel(self, key: Hashable) -> None:
        pool = self._owner.get(key)
        if pool is not None:
            self._apply(pool, pool.core.cancel(key, time.monotonic()))

    def answer(self, key: Hashable, call_id: int, ok: bool, data: str) -> None:
        """The answer to call ``call_id`` of ``key``'s task: ``ok`` and the value's JSON
        text, or not and the error's ("" for none). Dropped when the task has ended."""
        pool = self._owner.get(key)
        io = None if pool is None else next(
            (c for c in pool.children.values() if c.key == key and c.calling == call_id), None)
        if pool is None or io is None:
            return
        io.calling = None
        body = protocol.encode(protocol.Answer(call_id, ok, data))
        if len(body) > protocol.MAX_TASK_BYTES:
            why = (f"the answer of {len(body)} bytes exceeds the limit of "
                   f"{protocol.MAX_TASK_BYTES} bytes")
            body = protocol.encode(protocol.Answer(call_id, False, json.dumps(why)))
        try:
            framing.send_frame_within(io.channel, body, _SEND_TIMEOUT_S)
        except OSError:
            self._apply(pool, pool.core.channel_lost(io.pid, time.monotonic()))

    def idle_children(self) -> int:
        return sum(p.core.idle_count() for p in self._pools.values())

    def idle_by_runtime(self) -> dict[str, int]:
        """Idle pre-forked children per runtime started (read it in the loop's thread)."""
        return {name: p.core.idle_count() for name, p in self._pools.items()}

    def snapshot(self) -> dict[str, Any]:
        """Each pool's state, for tests and metrics (read it in the loop's thread)."""
        return {
            name: {
                "jail": pool.core.jail.value,
                "jail_pid": pool.jail.pid if pool.jail else 0,
                "zygote_pid": getattr(pool.jail, "zygote_pid", 0) if pool.jail else 0,
                "counts": pool.core.counts(),
                "children": {pid: (pool.core.children[pid].state.value, io.host_pid)
                             for pid, io in pool.children.items() if pid in pool.core.children},
            }
            for name, pool in self._pools.items()
        }

    def close(self) -> None:
        """End every task (rejected or crashed), release every child, stop every jail."""
        self._closed = True
        now = time.monotonic()
        for pool in list(self._pools.values()):
            self._apply(pool, pool.core.close(now))

    # -- the loop's timer --------------------------------------------------------------------

    def wake_at(self) -> float | None:
        times = [t for t in (p.wake_at() for p in self._pools.values()) if t is not None]
        return min(times) if times else None

    def on_time(self, now: float) -> None:
        for pool in list(self._pools.values()):
            at = pool.wake_at()
            if at is not None and at <= now:
                self._apply(pool, pool.core.tick(now))

    # -- events from the fds -----------------------------------------------------------------

    def _on_control(self, pool: _Pool, events: int) -> None:
        assert pool.jail is not None
        try:
            body, fds = framing.recv_control(pool.jail.control)
        except (OSError, framing.WireError) as exc:
            self._jail_gone(pool, f"its control channel failed: {exc}")
            return
        if body is None:
            self._jail_gone(pool, None)
            return
        try:
            msg = protocol.decode(body, (protocol.Ready, protocol.Spawned, protocol.Exited))
        except framing.WireError as exc:
            framing.close_fds(fds)
            # the zygote runs no user code: a bad message is a broken jail, not a snippet
            self._jail_gone(pool, f"its zygote sent a malformed message: {exc}")
            return
        now = time.monotonic()
        if isinstance(msg, protocol.Spawned):
            self._on_spawned(pool, msg.pid, fds, now)
            return
        framing.close_fds(fds)
        if isinstance(msg, protocol.Exited):
            oom = False
            if pool.core.wants_cause(msg.pid):
                count = pool.jail.oom_kills()
                oom, pool.oom_seen = count > pool.oom_seen, max(count, pool.oom_seen)
            self._apply(pool, pool.core.exited(msg.pid, msg.status, oom, now))
        elif isinstance(msg, protocol.Ready):
            for name, why in msg.preload_failed.items():
                log.warning("%s zygote could not preload %s: %s", pool.runtime, name, why)
            pool.jail.located()
            pool.oom_seen = pool.jail.oom_kills()
            self._apply(pool, pool.core.jail_ready(now))

    def _on_spawned(self, pool: _Pool, pid: int, fds: list[int], now: float) -> None:
        if len(fds) != 2 or pid in pool.children:
            framing.close_fds(fds)
            self._jail_gone(pool, f"its zygote reported child {pid} without its channel and pidfd")
            return
        channel = socket.socket(fileno=fds[0])
        channel.setblocking(False)  # the loop reads only what has arrived, and sends likewise
        io = _ChildIO(pid, channel, channel.fileno(), fds[1], _host_pid(fds[1]))
        io.accounting = usage.Accounting(io.host_pid)
        facts = registry.RUNTIMES[pool.runtime]
        if facts.shared_output and pool.outputs:
            io.output = pool.outputs.popleft()  # the zygote hands them out in spawn order
        if facts.worker_children:  # its first frame says it is ready (pool rule 1r)
            io.reader = framing.FrameReader(framing.MAX_CONTROL_BYTES)
        pool.children[pid] = io
        if not pool.baseline_bytes and not facts.worker_children:
            pool.baseline_bytes = _address_space(io.host_pid)
        self.loop.watch(io.fd, functools.partial(self._on_channel, pool, pid))
        self._apply(pool, pool.core.spawned(pid, now))

    def _on_channel(self, pool: _Pool, pid: int, events: int) -> None:
        io = pool.children.get(pid)
        if io is None:
            return
        now = time.monotonic()
        if io.reader is None:  # nothing may come from a child that has no task
            self._apply(pool, pool.core.channel_lost(pid, now))
            return
        child = pool.core.children.get(pid)
        if child is not None and child.state is core.ChildState.STARTING:
            self._on_ready_frame(pool, io, now)
            return
        chunks: list[tuple[int, bytes]] = []
        frame = None
        try:
            # output frames (a task that streams) until its result, what has arrived, or a
            # bound: a child that never stops writing must not hold the loop (its deadline
            # is on the loop's clock); the rest is read at the next wake-up
            for _ in range(_FRAMES_PER_WAKE):
                frame = io.reader.read(io.channel)
                if frame is not None and protocol.is_call(frame):
                    self._pass_output(io, chunks)  # what it printed before the call first
                    chunks = []
                    why = self._take_call(pool, io, frame)
                    if why is not None:
                        self._apply(pool, pool.core.misbehaved(pid, why, now))
                        return
                    frame = None
                    continue
                if frame is None or not protocol.is_output(frame):
                    break
                self._take_output(pool, io, frame, chunks)
                frame = None
        except framing.OversizedFrame as exc:
            self._pass_output(io, chunks)
            self._apply(pool, pool.core.oversized(pid, exc.size, exc.limit, now))
            return
        except framing.ChannelClosed:
            self._pass_output(io, chunks)
            self._apply(pool, pool.core.channel_lost(pid, now))
            return
        self._pass_output(io, chunks)
        if frame is not None:
            io.reader = None
            seen = outcome.peek(frame)
            status, retire = seen if seen is not None else (None, True)
            if not retire and child is not None and child.bound is not None and child.session is None:
                retire = _tainted(io.host_pid)
            envelope: bytes | bytearray = frame
            if seen is not None:
                envelope = outcome.with_usage(frame, *io.spent())
            self._apply(pool, pool.core.result(pid, envelope, status, now, retire))  # type: ignore[arg-type]

    def _take_output(self, pool: _Pool, io: _ChildIO, frame: bytearray,
                     chunks: list[tuple[int, bytes]]) -> None:
        """One output frame of a running task: kept for ``_pass_output`` if the task streams
        and it is within the task's cap; dropped otherwise (a child may write anything)."""
        request = pool.requests.get(io.key)
        if request is None or not request.stream or self._output is None:
            return
        try:
            stream, data = protocol.decode_output(frame)
        except framing.WireError:
            return
        data = data[:max(0, request.limits.stdout_bytes - io.streamed)]
        if not data:
            return
        io.streamed += len(data)
        if chunks and chunks[-1][0] == stream:
            chunks[-1] = (stream, chunks[-1][1] + data)
        else:
            chunks.append((stream, data))

    def _take_call(self, pool: _Pool, io: _ChildIO, frame: bytearray) -> str | None:
        """A call of the running task, handed to the front; why not when the child broke
        the protocol (the host checks what the child checked: it is not trusted to)."""
        request = pool.requests.get(io.key)
        try:
            call = protocol.decode_call(frame)
        except framing.WireError as exc:
            return f"the sandboxed process sent a malformed call: {exc}"
        if self._call is None or request is None or call.name not in request.calls:
            return f"the sandboxed process called {call.name!r}, which its task does not offer"
        if io.calling is not None:
            return "the sandboxed process made a call before its last call was answered"
        if io.calls >= MAX_CALLS_PER_TASK:
            return f"the snippet made more than {MAX_CALLS_PER_TASK} calls"
        io.calling, io.calls = call.id, io.calls + 1
        self._call(io.key, call.id, call.name, call.args)
        return None

    def _pass_output(self, io: _ChildIO, chunks: list[tuple[int, bytes]]) -> None:
        """What arrived in one read, one piece per stream run, each at most a broker chunk."""
        if self._output is None:
            return
        for stream, data in chunks:
            name = output.STREAM_NAMES[stream]
            for at in range(0, len(data), MAX_CHUNK_BYTES):
                self._output(io.key, name, data[at:at + MAX_CHUNK_BYTES])

    def _on_ready_frame(self, pool: _Pool, io: _ChildIO, now: float) -> None:
        """A worker's first frame: ``worker_ready``, or it failed to start (rule 1r)."""
        assert io.reader is not None
        try:
            frame = io.reader.read(io.channel)
            if frame is None:
                return
            ready = protocol.decode(frame, (protocol.WorkerReady,))
        except framing.ChannelClosed:
            self._apply(pool, pool.core.channel_lost(io.pid, now))
            return
        except framing.WireError as exc:
            self._apply(pool, pool.core.not_ready(io.pid, f"its ready frame is malformed: {exc}", now))
            return
        io.reader = None
        for name, why in ready.preload_failed.items():
            log.warning("%s worker could not preload %s: %s", pool.runtime, name, why)
        self._apply(pool, pool.core.child_ready(io.pid, now))

    def _on_jail_exit(self, pool: _Pool, events: int) -> None:
        self._jail_gone(pool, None)

    def _on_stderr(self, pool: _Pool, events: int) -> None:
        if pool.jail is not None:
            pool.jail.read_stderr()

    def _jail_gone(self, pool: _Pool, reason: str | None) -> None:
        """The jail died or broke: reap it first, so its own last words make the reason."""
        process = pool.jail
        if process is None:
            return
        self._unwatch_jail(pool)
        process.close()
        pool.jail = None
        why = reason or process.exit_reason()
        log.warning("%s jail ended: %s", pool.runtime, why)
        self._apply(pool, pool.core.jail_lost(why, time.monotonic()))

    # -- actions -----------------------------------------------------------------------------

    def _apply(self, pool: _Pool, actions: list[core.Action]) -> None:
        try:
            self._apply_all(pool, deque(actions))
        finally:
            pool.due_known = False  # the core has changed (and may change with each action)

    def _apply_all(self, pool: _Pool, todo: deque[core.Action]) -> None:
        while todo:
            action = todo.popleft()
            if isinstance(action, core.Deliver):
                self._owner.pop(action.key, None)
                request = pool.requests.pop(action.key, None)
                envelope = action.envelope
                if action.made and action.pid is not None and request is not None:
                    envelope = self._with_output(pool, action, request, envelope)
                self._deliver(action.key, envelope, action.status)
            elif isinstance(action, core.SendTask):
                if not self._send_task(pool, action.pid, action.key, action.reusable,
                                       action.session):
                    todo.extend(pool.core.channel_lost(action.pid, time.monotonic()))
            elif isinstance(action, core.Interrupt):
                pool.children[action.pid].signal(signal.SIGINT)
            elif isinstance(action, core.SessionEnded):
                pool.session_mb.pop(action.session, None)
                if self._session_ended is not None:
                    self._session_ended(pool.runtime, action.session, action.reason)
            elif isinstance(action, core.Release):
                self._release(pool, action.pid)
            elif isinstance(action, core.Kill):
                io = pool.children[action.pid]
                self._to_background(io)
                io.signal(signal.SIGKILL)
                self.loop.unwatch(io.fd)  # at EOF it would keep the poll awake
            elif isinstance(action, core.Hurry):
                self._hurry(pool, action.on)
            elif isinstance(action, core.Spawn):
                if not self._spawn(pool, action.count):
                    todo.extend(self._lost_now(pool, "its control channel refused a spawn"))
            elif isinstance(action, core.StartJail):
                failure = self._start_jail(pool)
                if failure:
                    todo.extend(pool.core.jail_lost(failure, time.monotonic()))
            elif isinstance(action, core.StopJail):
                if pool.jail is not None:
                    self._unwatch_jail(pool)
                    pool.jail.close()
                    pool.jail = None
                pool.baseline_bytes = 0
                while pool.outputs:  # sent with spawns that will never be reported
                    os.close(pool.outputs.popleft())

    def _with_output(self, pool: _Pool, action: core.Deliver, request: TaskRequest,
                     envelope: bytes) -> bytes:
        """A decided outcome, with what the child printed before it (kept in the shared file
        even when the child died: runtimes.output)."""
        io = pool.children.get(action.pid) if action.pid is not None else None
        if io is None:
            return envelope
        # what it cost, read while it is still there (a timeout's child is about to be killed)
        cpu_ms, peak_kb = io.spent()
        if io.output is not None:
            io.signal(signal.SIGKILL)  # it must not write on while we read
            text, truncated = output.read_shared(io.output, _OUTPUT_FILE_BYTES,
                                                 request.limits.stdout_bytes)
            attempt = (attempts.name(output.read_attempt(io.output))
                       if action.status is Status.VIOLATION else None)
            if text or truncated or attempt is not None:
                made = outcome.decode(envelope, max_bytes=len(envelope))
                # the operation qualifies the kill, the message's first clause (a session's
                # note, "; session ... is lost with it", follows it)
                head, sep, rest = made.message.partition("; ")
                message = f"{head}: {attempt}{sep}{rest}" if attempt else made.message
                envelope = outcome.encode(made.status, message, stdout=text,
                                          truncated=truncated)
        return outcome.with_usage(envelope, cpu_ms, peak_kb)

    def _lost_now(self, pool: _Pool, reason: str) -> list[core.Action]:
        if pool.jail is not None:
            self._unwatch_jail(pool)
            pool.jail.close()
            pool.jail = None
        return pool.core.jail_lost(reason, time.monotonic())

    def _start_jail(self, pool: _Pool) -> str | None:
        """Launch the jail and send ``init``; the failure's reason, or None."""
        try:
            process = self._launch(pool.runtime, self.config, jail_setup)
        except (JailError, OSError) as exc:
            return str(exc)
        pool.jail = process
        facts = registry.RUNTIMES[pool.runtime]
        child_filter = seccomp.worker_filter() if facts.worker_children else seccomp.child_filter()
        init = protocol.Init(
            child_filter.program, tuple(child_filter.pid_slots),
            (tuple(self.config.preload) if facts.zygote_preload else ())
            + self._preload.get(pool.runtime, ()),
            process.worker,
            process.files_bytes,
        )
        try:
            framing.send_control(process.control, protocol.encode(init))
        except OSError as exc:
            self._unwatch_jail(pool)
            process.close()
            pool.jail = None
            return f"{process.exit_reason()} (init not sent: {exc})"
        for fd, handler in ((process.control.fileno(), self._on_control),
                            (process.exit_fd(), self._on_jail_exit),
                            (process.stderr_fd(), self._on_stderr)):
            if fd is not None:
                # urgent: handled as they come even between tasks (a refill's report read
                # then is not read on the next task's way; a jail's death is seen at once)
                self.loop.watch(fd, functools.partial(handler, pool), urgent=True)
                pool.watched.append(fd)
        return None

    def _unwatch_jail(self, pool: _Pool) -> None:
        for fd in pool.watched:
            self.loop.unwatch(fd)
        pool.watched.clear()

    def _spawn(self, pool: _Pool, count: int) -> bool:
        """Ask for ``count`` children, each with a shared output file of its own (made here,
        off any task's path: the child maps it before its rehearsal)."""
        if pool.jail is None:
            return False
        shared = registry.RUNTIMES[pool.runtime].shared_output
        try:
            while count > 0:
                n = min(count, protocol.MAX_SPAWN)
                files = [_output_file() for _ in range(n)] if shared else []
                try:
                    framing.send_control(pool.jail.control, protocol.encode(protocol.Spawn(n)),
                                         tuple(files))
                except OSError:
                    framing.close_fds(files)
                    raise
                pool.outputs.extend(files)  # the child's copy travels; ours stays
                count -= n
        except OSError:
            return False
        return True

    def _send_task(self, pool: _Pool, pid: int, key: Hashable, reusable: bool,
                   session: Hashable | None = None) -> bool:
        io = pool.children[pid]
        request = pool.requests[key]
        lim = request.limits
        # a session's process has one memory cap, its own, whatever its calls ask
        memory_mb = lim.memory_mb if session is None else pool.session_mb[session]
        if self._boost and io.host_pid:
            try:  # from the background nice level to ours: the task outruns refills
                os.setpriority(os.PRIO_PROCESS, io.host_pid, 0)
            except OSError:
                self._boost = False
        body = protocol.encode(protocol.Task(
            code=request.code, data=request.data,
            as_bytes=pool.baseline_bytes + memory_mb * MiB, memory_bytes=memory_mb * MiB,
            cpu_s=math.ceil(lim.timeout_s) + 1, stdout_bytes=lim.stdout_bytes,
            result_bytes=lim.result_bytes, policy=request.policy, imports=request.imports,
            timeout_ms=math.ceil(lim.timeout_s * 1000), reusable=reusable,
            session=session is not None,
            stdin=request.stdin, separate_stderr=request.separate_stderr, stream=request.stream,
            files=request.files, return_files=request.return_files,
            calls=request.calls if self._call is not None else (),
        ))
        io.key, io.streamed, io.calling, io.calls = key, 0, None, 0
        io.cpu_start_ns = io.accounting.cpu_ns() if io.accounting is not None else None
        io.reader = framing.FrameReader(lim.envelope_bytes)
        if io.output is not None and io.used:  # a worker's next task: nothing printed yet
            os.pwrite(io.output, output.EMPTY, 0)
        io.used = True
        try:
            framing.send_frame_within(io.channel, body, _SEND_TIMEOUT_S)
        except OSError:
            return False
        if not self.loop.watching(io.fd):
            self.loop.watch(io.fd, functools.partial(self._on_channel, pool, pid))
        return True

    def _release(self, pool: _Pool, pid: int) -> None:
        io = pool.children.pop(pid, None)
        if io is None:
            return
        self._to_background(io)
        io.signal(signal.SIGKILL)
        self.loop.unwatch(io.fd)  # before the close: the number is free again after it
        io.close()

    def _hurry(self, pool: _Pool, on: bool) -> None:
        """Rule 5h: the zygote (and so the children it forks from now on) at our nice level
        while the pool is short of idle children, at the background level otherwise."""
        zygote = getattr(pool.jail, "zygote_pid", 0) if pool.jail is not None else 0
        if not (self._boost and zygote):
            return
        try:
            os.setpriority(os.PRIO_PROCESS, zygote, 0 if on else BACKGROUND_NICE)
        except OSError:
            pass  # gone: the jail's exit says so

    def _to_background(self, io: _ChildIO) -> None:
        """A child about to be killed back to the background nice level it was forked at (a
        task's child runs at ours: ``_send_task``), so that its teardown (the kernel freeing
        its address space, in the dying process's own context) yields the CPU to the next
        task rather than sharing it: a released child is torn down after its answer went
        out, often while the next task runs. Only while its pidfd says it is not reaped yet
        (its pid cannot then be another process's)."""
        if not (self._boost and io.host_pid):
            return
        try:
            signal.pidfd_send_signal(io.pidfd, 0)
        except OSError:
            return  # reaped already: nothing left to tear down, and the pid may be reused
        background(io.host_pid)

    def _pool(self, runtime: str) -> _Pool:
        pool = self._pools.get(runtime)
        if pool is None:
            rules = rules_of(self.config, runtime)
            pool = self._pools[runtime] = _Pool(runtime, core.PoolCore(runtime, rules))
        return pool


_OUTPUT_FILE_BYTES = output.HEADER.size + MAX_STDOUT_BYTES


def _output_file() -> int:
    """A child's shared output file: sparse, so it costs memory only for what is printed."""
    fd = os.memfd_create("snippet-output", os.MFD_CLOEXEC)
    try:
        os.ftruncate(fd, _OUTPUT_FILE_BYTES)
    except OSError:
        os.close(fd)
        raise
    return fd


def background(host_pid: int) -> bool:
    """Lower ``host_pid`` to the background nice level (``mounts.BACKGROUND_NICE``); False
    when it cannot be (gone already, or not ours)."""
    try:
        os.setpriority(os.PRIO_PROCESS, host_pid, BACKGROUND_NICE)
    except OSError:
        return False
    return True


def _host_pid(pidfd: int) -> int:
    """The pid, in our namespace, of the process a pidfd refers to (0 if unknown). Read once
    per child, with one read and no text layer (a buffered text file cost 4x as much)."""
    try:
        fd = os.open(f"/proc/self/fdinfo/{pidfd}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            info = os.read(fd, 4096)
        finally:
            os.close(fd)
        start = info.index(b"\nPid:") + 5
        return int(info[start:info.index(b"\n", start)])
    except (OSError, ValueError):
        return 0


def _tainted(host_pid: int) -> bool:
    """Whether a worker marked itself as changed (``protocol.TAINT_RLIMIT``), read from outside
    it: what the process says of itself in its envelope could have been written by a snippet.
    A worker whose mark cannot be read is not trusted either."""
    if host_pid <= 0:
        return True
    try:
        return resource.prlimit(host_pid, protocol.TAINT_RLIMIT)[1] == 0
    except OSError:
        return True


def _address_space(host_pid: int) -> int:
    """A fresh child's virtual memory size: the baseline that ``memory_mb`` is added to."""
    try:
        with open(f"/proc/{host_pid}/status") as f:
            kb = next(int(line.split()[1]) for line in f if line.startswith("VmSize:"))
        return kb * 1024
    except (OSError, StopIteration, ValueError):
        return 64 * MiB  # a generous stand-in: CPython's address space at rest is below it
