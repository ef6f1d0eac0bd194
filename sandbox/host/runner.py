"""A runner: connects to a broker, advertises its runtimes and slots, runs tasks in its pools.

One loop (``sandbox.host.loop``) in one thread owns everything: the DEALER socket to the broker
(ZeroMQ sockets are not thread-safe), the pools' jails and children
(``sandbox.host.pools``), and the lifeline to a parent daemon. A result goes from a child's
channel to the broker with no hand-off between threads. A task that finds no idle child waits
in the pool core, which hands it the next child the moment one is ready.

Sessions (decided by the pure core ``sandbox.host.session``, whose rules say when): heartbeats
go both ways; when the broker is silent for ``heartbeat_s * liveness`` or its connection
drops (a restart), the runner connects again with a fresh socket and registers again; a
socket waits for the broker as long as it takes, so the runner is back as soon as the broker
or the network is. Its tasks run on meanwhile: every socket it opens has the same routing
id, so a broker that held its tasks (a partition) gives them back and names them
(``holding``), and the runner answers for each (its rule 7): a ``done`` the lost connection
may have lost is sent again, a task it never received is ``missing``. A broker that does
not know them (it restarted) answers their ``done`` with nothing. A broker heartbeat is
answered at once with its clock, from which the broker measures the round trip. A runner
started by ``sandbox serve`` holds the read end of a lifeline pipe: when it reads EOF the
daemon is gone, and the runner stops rather than join the next broker.

A runner connects to the broker's runner endpoint (never the client one) through a
``sandbox.link.Link``: over tcp with a runner key pair the broker lists in its ``runners``
directory. The link's monitor is watched by the loop: a key the server refuses ends
``serve`` with ConnectError ("the server refused this key"), at once and on any later
reconnect. Every send is non-blocking, so a stop is always noticed.
"""

from __future__ import annotations

from typing import Any, cast

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass, field

import zmq

from broker import protocol as p
from runtimes import outcome
from runtimes.outcome import Status
from sandbox import registry, request
from sandbox.config import PoolConfig
from sandbox.errors import ConfigError, ConnectError, RequestError
from sandbox.jail.launch import Launcher, files_bytes
from sandbox.link import CurveClient, Link
from sandbox.host import session as s
from sandbox.host.loop import Loop
from sandbox.host.pools import Pools

__all__ = ["CurveClient", "Runner", "RunnerConfig"]

log = logging.getLogger("sandbox.host.runner")

# What a Done frame adds to its envelope; the limits keep envelopes far below the frame cap.
_DONE_OVERHEAD_BYTES = 4096
_FAREWELL_LINGER_MS = 1000  # how long a bye may take to leave when the runner stops
# plain ints: the enum members' ``&`` builds an enum (about 1 us, on every frame)
_EVENTS, _POLLIN = int(zmq.EVENTS), int(zmq.POLLIN)


def runtime_versions(runtimes: tuple[str, ...]) -> dict[str, str]:
    return {name: registry.RUNTIMES[name].version for name in runtimes}


@dataclass
class RunnerConfig:
    endpoint: str  # the broker's runner endpoint
    runtimes: tuple[str, ...] = ("python", "javascript")
    groups: tuple[str, ...] = ()
    slots: int = 4
    name: str = ""
    heartbeat_s: float = 1.0
    liveness: int = 3
    pool: PoolConfig | None = None
    curve: CurveClient | None = None
    lifeline_fd: int | None = None  # read end of a pipe whose EOF means: the parent is gone
    extra: dict[str, str] = field(default_factory=dict)


class Runner:
    def __init__(self, config: RunnerConfig, *, context: zmq.Context[Any] | None = None,
                 launcher: Launcher | None = None, stop: threading.Event | None = None) -> None:
        """Start the jails (here: JailError if one cannot start). A lifeline that closes, or
        ``stop`` set (with ``wake()``), while they start ends the wait: ``serve`` then
        returns at once and ``close`` stops them."""
        self.config = config
        self.context = context or zmq.Context.instance()
        self.pool_config = config.pool or PoolConfig(size=config.slots)
        self.loop = Loop(zmq.Poller())
        self.worker = Pools(self.pool_config, self.loop, self._on_outcome, launcher=launcher,
                             served=config.runtimes, session_ended=self._on_session_ended,
                             output=self._on_output)
        self.connected = threading.Event()
        self.orphaned = False  # the lifeline closed: the parent daemon is gone
        self._imports = self.pool_config.import_policy()
        # each served runtime's directory size per task, worked out once (every task asks)
        self._files_bytes = {rt: files_bytes(self.pool_config, rt) for rt in config.runtimes}
        self._sock: zmq.Socket[Any] | None = None
        self._link: Link | None = None
        self.refused: str | None = None  # the server refused our key: serve ends with it
        self._serial = 0  # numbers the tasks: a pool key is never reused
        self._tasks: dict[str, tuple[int, str]] = {}  # broker task id -> our key
        # who the broker knows this runner by, on every connection (its rule 8)
        self.identity = b"R" + os.urandom(15)
        self.core = s.Session(config.heartbeat_s, config.liveness)
        self.kept = s.Kept()
        self._holding: list[str] = []  # a holding list that arrives in parts
        # draining (``drain``): asked for with its grace, then until when it may last
        self._drain_asked: float | None = None
        self._drain_until: float | None = None
        self._drain_heard = False  # the broker answered the drain: no task is on its way
        self.drained = False  # nothing runs any more (or the grace is over): serve returns
        self._drops = 0  # how many drops of the session's connection were seen
        self._session_over = False
        if config.lifeline_fd is not None:  # first: the daemon may stop while the jails start
            self.loop.watch(config.lifeline_fd, self._on_lifeline)

        def abandon() -> bool:
            return self.orphaned or (stop is not None and stop.is_set())

        try:
            for runtime in config.runtimes:
                # a jail that cannot start fails here
                self.worker.start(runtime, wait=True, abandon=abandon)
                if abandon():
                    break
        except BaseException:
            if config.lifeline_fd is not None:
                self.loop.unwatch(config.lifeline_fd)
            self.worker.close()
            self.loop.close()
            raise
        self.loop.add_timed(self)

    def serve(self, stop: threading.Event) -> None:
        """Connect, serve, reconnect, until ``stop`` is set (then call ``wake()``) or the
        lifeline closes. ConnectError when the server refuses our key."""
        def done() -> bool:
            return stop.is_set() or self.orphaned or self.drained

        while not done():
            self._open()
            self.loop.run(lambda: done() or self._session_over)
            self._close_session(farewell=done())
            if self.refused is not None:
                log.error("%s", self.refused)
                raise ConnectError(self.refused)
            delay = self.core.closed(time.monotonic(), reconnect=not done())
            if done():
                return
            if delay:
                log.warning("the broker at %s did not answer; reconnecting in %g s",
                            self.config.endpoint, delay)
            # the pools keep running meanwhile: children are reaped and jails restarted
            self.loop.run(lambda: done() or self.core.resume_at is None)

    def wake(self) -> None:
        """Make ``serve`` look at its ``stop`` event now (thread-safe)."""
        self.loop.wake()

    def snapshot(self, timeout_s: float = 2.0) -> dict[str, Any] | None:
        """The runner's state for its probes and metrics, read in the loop's thread (from any
        thread); None when the loop did not answer within ``timeout_s``."""
        box: dict[str, Any] = {}
        done = threading.Event()

        def take() -> None:
            try:
                box.update(registered=self.connected.is_set(),
                           draining=self._drain_asked is not None, running=len(self._tasks),
                           idle=self.worker.idle_by_runtime())
            finally:
                done.set()

        self.loop.call_soon_threadsafe(take)
        return box if done.wait(timeout_s) and box else None

    def drain(self, grace_s: float) -> None:
        """Leave gracefully (SIGTERM): tell the broker to send nothing new, let what runs
        finish within ``grace_s``, then leave (``serve`` returns); what still runs then is
        cancelled, and the broker retries it if it is idempotent. Safe from a signal handler
        and from any thread."""
        if self._drain_asked is None:
            self._drain_asked = grace_s
            self.loop.wake()

    def close(self) -> None:
        """Stop every jail (after ``serve`` returned, or instead of it)."""
        self.worker.close()
        if self.config.lifeline_fd is not None:
            self.loop.unwatch(self.config.lifeline_fd)
        self.loop.close()

    # -- the session -------------------------------------------------------------------------

    def _open(self) -> None:
        cfg = self.config
        # queued until connected: the ready goes first; a refused key shows on the monitor
        link = Link(self.context, cfg.endpoint, cfg.curve, immediate=False,
                    routing_id=self.identity)
        sock = link.sock
        self._link, self._sock = link, sock
        if link.monitor is not None:
            self.loop.watch(link.monitor, self._on_monitor)
        self._session_over = False
        self._holding = []
        self._drops = 0
        self.core.opened(time.monotonic(), up=link.monitor is None)
        self.loop.watch(sock, self._on_broker)
        self._send(p.Ready(runtime_versions(cfg.runtimes), cfg.slots, cfg.groups, cfg.name))
        if self._drain_until is not None:  # a new session while leaving: still leaving
            self._drain_heard = False
            self._send(p.RunnerHeartbeat(0, draining=True))

    def _close_session(self, *, farewell: bool) -> None:
        sock, self._sock = self._sock, None
        link, self._link = self._link, None
        self.connected.clear()
        if farewell:  # leaving for good: nobody will take their answers
            tasks, self._tasks = self._tasks, {}
            for key in tasks.values():
                self.worker.cancel(key)
        # its sessions end with the connection (the broker ends them when it counts the runner
        # lost, and never holds them): they are never to be found again
        self.worker.end_sessions("the runner's connection to its broker ended")
        if sock is None or link is None:
            return
        if farewell:
            try:
                sock.send(p.encode(p.Bye()), zmq.NOBLOCK)
            except zmq.ZMQError:
                pass
        self.loop.unwatch(sock)
        if link.monitor is not None:
            self.loop.unwatch(link.monitor)
        # a bye closed at once would never leave, and the broker would count a runner that
        # stopped cleanly as lost (to silence): it gets a moment, in ZeroMQ's I/O thread
        link.close(linger_ms=_FAREWELL_LINGER_MS if farewell else 0)

    def _on_monitor(self, events: int) -> None:
        link = self._link
        if link is None:
            return
        state = link.update()
        if state.refused and self.refused is None:
            self.refused = state.refused
            self._session_over = True
            return
        now = time.monotonic()
        if state.drops != self._drops:
            self._drops = state.drops
            if self.core.link_down(now) is not None:  # the broker reset it: it forgot us
                log.warning("the connection to the broker at %s dropped; registering again",
                            self.config.endpoint)
                self._session_over = True
                return
        if state.up:
            self.core.link_up(now)

    def wake_at(self) -> float | None:
        if self._drain_asked is not None and self._drain_until is None:
            return 0.0  # a drain was asked for: start it now
        due = self.core.wake_at()
        if self._drain_until is not None:
            due = self._drain_until if due is None else min(due, self._drain_until)
        return due

    def on_time(self, now: float) -> None:
        self._check_drain(now)
        action = self.core.tick(now)
        if isinstance(action, s.Expired):
            log.warning("the broker at %s has been silent for %g s; connecting again",
                        self.config.endpoint, self.core.silence_limit_s)
            self._session_over = True
        elif isinstance(action, s.Beat):
            idle = self.worker.idle_by_runtime()
            self._send(p.RunnerHeartbeat(sum(idle.values()), draining=self._drain_until is not None,
                                         idle=idle))

    def _on_broker(self, events: int) -> None:
        sock = self._sock
        if sock is None:
            return
        while True:  # everything waiting: a batch costs one wake-up
            try:
                frame = sock.recv(zmq.NOBLOCK, copy=True)
            except zmq.Again:
                return
            self.core.heard(time.monotonic())
            try:
                msg = p.decode(frame)
            except p.ProtocolError as exc:
                log.warning("malformed message from the broker: %s", exc)
                continue
            if isinstance(msg, p.Rejected):  # we reached a client socket, not a runner one
                self.refused = (f"the broker at {self.config.endpoint} does not take runners "
                                f"there ({msg.message}): connect to its runner endpoint")
                self._session_over = True
                return
            if not self.connected.is_set():
                self.connected.set()
                log.info("registered with the broker at %s: %s, %d slots", self.config.endpoint,
                         ", ".join(f"{n} {v}" for n, v in
                                   runtime_versions(self.config.runtimes).items()),
                         self.config.slots)
            if isinstance(msg, p.BrokerHeartbeat):
                if msg.clock is not None:  # answered at once: the broker times the round trip
                    self._send(p.RunnerHeartbeat(self.worker.idle_children(),
                                                 draining=self._drain_until is not None,
                                                 echo=msg.clock))
                if msg.draining and self._drain_until is not None:
                    self._drain_heard = True
                    self._check_drain(time.monotonic())
            if isinstance(msg, p.TaskMsg):
                self._on_task(msg)
            elif isinstance(msg, p.Holding):
                self._on_holding(msg)
            elif isinstance(msg, p.CancelTask):
                key = self._tasks.get(msg.task_id)
                if key is not None:
                    self.worker.cancel(key)
            if self._sock is not sock or not cast(int, sock.get(_EVENTS)) & _POLLIN:
                return  # the batch is over (no Again raised for it), or its session ended

    def _on_holding(self, msg: p.Holding) -> None:
        """The broker held our tasks while the connection was lost (session rule 7)."""
        self._holding += msg.task_ids
        if msg.more:
            return
        held, self._holding = self._holding, []
        answers = self.kept.holding(held, set(self._tasks))
        if answers.resend or answers.lost or answers.missing or answers.stop:
            log.info("registered again: %d answer(s) sent again, %d lost, %d task(s) never "
                     "received, %d stopped (the broker does not hold them)",
                     len(answers.resend), len(answers.lost), len(answers.missing),
                     len(answers.stop))
        for task_id in answers.stop:
            self.worker.cancel(self._tasks.pop(task_id))
        for frame in answers.resend:
            self._send_frame(frame, "done")
        for task_id in answers.lost:
            self._send(p.Done(task_id, outcome.encode(
                Status.CRASHED, "its result was lost with the connection to the broker"),
                Status.CRASHED.value))
        ids = answers.missing
        for start in range(0, len(ids), p.MAX_IDS_PER_MESSAGE):
            self._send(p.Missing(tuple(ids[start:start + p.MAX_IDS_PER_MESSAGE])))

    def _on_task(self, msg: p.TaskMsg) -> None:
        lim = msg.limits
        self._serial += 1
        key = (self._serial, msg.task_id)
        log.debug("task %s received", msg.task_id)
        self.kept.received(msg.task_id)
        if msg.task_id in self._tasks:
            self._send_done(msg.task_id, outcome.encode(
                Status.REJECTED, f"task {msg.task_id!r} is already running here"), Status.REJECTED)
            return
        if msg.session is not None and msg.session_op != "call":
            self._tasks[msg.task_id] = key
            self._on_session_op(key, msg)
            return
        try:
            task = request.build(
                msg.runtime, msg.code, msg.data, defaults=self.pool_config.default_limits,
                import_policy=self._imports, served=self.config.runtimes,
                timeout_s=lim.timeout_s, memory_mb=lim.memory_mb, stdout_bytes=lim.stdout_bytes,
                result_bytes=lim.result_bytes,
                policy=None if msg.policy == "default" else msg.policy, imports=msg.imports,
                # the broker names the workers a task may share, scoped by its principal; a
                # task it sends without them runs in a fresh process (or is refused, by a
                # runtime that has none: never a worker of the default key, shared by all)
                isolation="worker" if msg.reuse is not None else "process", reuse_key=msg.reuse,
                stdin=msg.stdin, separate_stderr=msg.separate_stderr, stream=msg.stream,
                files=msg.files, return_files=msg.return_files,
                files_bytes=self._files_bytes.get(msg.runtime, 0))
        except RequestError as exc:
            self._send_done(msg.task_id, outcome.encode(Status.REJECTED, str(exc)), Status.REJECTED)
            return
        if msg.session is not None:
            task = dataclasses.replace(task, session=msg.session)
        self._tasks[msg.task_id] = key
        self.worker.submit(key, task)

    def _on_session_op(self, key: tuple[int, str], msg: p.TaskMsg) -> None:
        """A session's open or close (its calls are tasks): the answer comes as the task's."""
        assert msg.session is not None
        if msg.session_op == "close":
            self.worker.close_session(key, msg.runtime, msg.session)
            return
        try:
            limits = self.pool_config.default_limits.replace(memory_mb=msg.limits.memory_mb)
        except ConfigError as exc:
            self._on_outcome(key, outcome.encode(Status.REJECTED, f"bad limits: {exc}"),
                             Status.REJECTED)
            return
        self.worker.open_session(key, msg.runtime, msg.session, limits.memory_mb,
                                 msg.idle_timeout_s, msg.max_lifetime_s)

    def _on_session_ended(self, runtime: str, session: Hashable, reason: str) -> None:
        self._send(p.SessionEnded(str(session), reason))

    def _on_output(self, key: Hashable, stream: str, data: bytes) -> None:
        """A streaming task's output, on to the broker as it comes (coalesced per read)."""
        assert isinstance(key, tuple)
        _, task_id = key
        if self._tasks.get(task_id) == key:
            self._send(p.Chunk(task_id, stream, data))

    def _on_outcome(self, key: Hashable, envelope: bytes | bytearray, status: Status) -> None:
        assert isinstance(key, tuple)
        _, task_id = key
        if self._tasks.get(task_id) != key:
            return  # cancelled on leaving: nobody takes its answer
        del self._tasks[task_id]
        self._send_done(task_id, envelope, status)
        if self._drain_until is not None:
            self._check_drain(time.monotonic())

    def _check_drain(self, now: float) -> None:
        if self._drain_asked is None or self.drained:
            return
        if self._drain_until is None:
            self._drain_until = now + self._drain_asked
            log.info("draining: %d task(s) running, leaving within %g s", len(self._tasks),
                     self._drain_asked)
            self._send(p.RunnerHeartbeat(self.worker.idle_children(), draining=True))
        # between sessions nothing runs and nothing can come (the broker forgot the tasks)
        if not self._tasks and (self._drain_heard or self._sock is None):
            self.drained = True
        elif now >= self._drain_until:
            log.warning("the grace is over: cancelling %d task(s) still running",
                        len(self._tasks))
            self.drained = True

    def _send_done(self, task_id: str, envelope: bytes | bytearray, status: Status) -> None:
        if len(envelope) + _DONE_OVERHEAD_BYTES > p.MAX_FRAME_BYTES:
            status = Status.OUTPUT_LIMIT
            envelope = outcome.encode(status, f"the result envelope of {len(envelope)} bytes does "
                                              f"not fit in one broker frame")
        # the envelope may be the bytearray it was read into: msgpack packs it as bin all
        # the same, so a large result is not copied once more just to change its type
        frame = p.encode(p.Done(task_id, envelope, status.value))  # type: ignore[arg-type]
        self.kept.finished(task_id, frame, time.monotonic())  # a lost connection may lose it
        self._send_frame(frame, "done")

    def _send(self, msg: p.Message) -> None:
        self._send_frame(p.encode(msg), msg.TYPE)

    def _send_frame(self, frame: bytes, kind: str) -> None:
        if self._sock is None:
            return
        try:
            self._sock.send(frame, zmq.NOBLOCK)
        except zmq.Again:
            log.warning("the broker connection is not taking messages; %s dropped", kind)
        except zmq.ZMQError as exc:
            log.warning("sending %s failed: %s", kind, exc)

    def _on_lifeline(self, events: int) -> None:
        assert self.config.lifeline_fd is not None
        try:
            data = os.read(self.config.lifeline_fd, 64)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            log.info("the lifeline closed (the daemon stopped or died); stopping")
            self.orphaned = True
            self.loop.unwatch(self.config.lifeline_fd)
