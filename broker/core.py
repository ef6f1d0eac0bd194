"""The broker's routing, queueing, deadline and retry rules: a pure state machine.

Events go in (a decoded message from a client or a runner, a malformed frame, a peer that
cannot be reached, ``tick(now)``, ``drain``, ``shutdown``), the messages to send come out as
``Send`` records, and every task's one outcome is recorded as an ``Outcome`` for the
metrics. No sockets, no clock: the caller passes ``now`` (seconds, monotonic) and does the
I/O. The rules, in one place:

Queueing
  1. A submitted task joins the queue of its lane. Dispatch order is priority (higher
     first), then submission order (FIFO).
  2. The queue is bounded (``max_queued``): a task that would exceed it is rejected at once
     with "queue full (N waiting)". So is one from a client that already holds
     ``max_per_client`` tasks: queued, running, or answered but not yet taken by its socket
     (the shell reports that backlog), so a client that stops reading stops adding work, and
     every accepted task's answer can wait for it. A refusal (of a submit not taken on, a
     malformed frame, a ping) is marked so: past what the shell holds for a client, only
     refusals are dropped (counted), never an accepted task's answer.
  2c. A task that asks for a limit above the operator's cap (``limit_caps``: timeout_s,
     memory_mb, stdout_bytes, result_bytes) is rejected at once, naming the cap.
  3. A task that no registered runner could ever run (runtime, version prefix, group) is
     rejected at once when it says ``wait_for_runner=False``; otherwise it waits. It is
     rejected at once even when it would wait if runners are registered and none has ever
     served its runtime at that version since the broker started: an operator's choice (a
     daemon started without ``--runtimes pyodide``), said at once with what is served. A
     runtime some runner served before waits as ever (that runner may be restarting).
  4. A queued task past its queue deadline is rejected with the reason nothing ran:
     "no runner for runtime X in group Y", "lane L at its cap of N for 30 s", or
     "all N slots busy for 30 s".
  5. A task carries its caller's deadline (``deadline_s``): past it nobody waits for the
     answer, so a queued task is dropped and a running one cancelled.

Dispatch
  6. A task runs on a runner that serves its runtime (version prefix matching), carries its
     group (if it names one) and has a free slot; among those, the nearest: the broker
     measures each runner's round trip from its heartbeats (rule 10), and the runners within
     ``near_tolerance_ms`` of the lowest are equals, of which the one with most free slots
     takes the task. A far runner still takes what near ones have no free slot for: nearness
     orders the free slots, it never leaves one idle while a task waits. A runner not yet
     measured counts as near (so a runner added under load takes work at once).
  7. Never more in flight than ``max_in_flight`` overall, a lane's cap in that lane, a
     principal's ``max_workers_per_principal`` among worker-mode tasks, or a runner's
     advertised slots on that runner. A task that cannot be placed does not block tasks
     behind it that can (no head-of-line blocking across runtimes, lanes or principals).

Tenancy
  7t. Every task belongs to a principal, which the shell tells the core with each client
      message (who the sender is, from the transport: its CURVE key, its connection, or its
      uid; never from what it says). A worker-mode task names its workers to the runner as
      ``<principal's tag>/<lane>/<reuse key>``, so a warm worker serves one principal only,
      whatever key callers name: the same key named by two principals is two workers.

Runners
  8. ``ready`` registers a runner. A runner keeps its identity (its ZeroMQ routing id) for
     its whole life, across the connections it makes, so a ``ready`` from an identity the
     broker knows (registered, or held by rule 9h) is the same process registering again
     on a new connection, with the tasks it kept running: it reattaches (rule 9r). Every
     message from a runner refreshes its liveness; a runner silent for ``heartbeat_s *
     liveness``, or that the socket cannot reach, is lost.
  9. When a runner is lost, each of its tasks that is ``idempotent`` and has attempts left
     goes back to the front of its queue; the others end as ``crashed`` "runner lost",
     at once when ``runner_hold_s`` is 0, else when the hold ends (rule 9h).
  9h. A lost runner is held for ``runner_hold_s``: it is given nothing, its slots are not
      counted, and its other tasks stay assigned to it (a partition shorter than the hold
      loses nothing: the runner kept running them). A ``done`` from a held runner answers
      its task (first answer wins: a task answered, cancelled or retried meanwhile drops
      it). Its other messages change nothing: they may be what the kernel still delivers of
      a connection the runner has closed, and a runner comes back by registering again
      (it hears nothing from the broker while held, so it connects again within its own
      liveness). When the hold ends, its tasks end as rule 9 says.
  9r. A runner that registers again (rule 8) gets its tasks back, and the broker tells it
      which (``holding``, at most ``MAX_IDS_PER_MESSAGE`` ids a message, the last saying
      so; every ``ready`` is answered with one, if empty: what the runner runs that the
      broker does not name, nobody waits for, and the runner stops it). A task it never
      received (sent on the connection that was lost) comes back as ``missing``: it never
      ran, so it goes back to the front of its queue, whether idempotent or not (its attempt
      is not counted). Tasks cancelled while it was held are cancelled on it.
  10. ``bye`` removes a runner that has finished its work (counted as left, not lost); a
      runner is sent a heartbeat every ``heartbeat_s``, carrying the broker's clock, which
      the runner's answer (sent at once) echoes: the round trip, smoothed, is the runner's
      nearness (rule 6). A runner whose heartbeat says it is
      draining is given no new task and is answered with a draining heartbeat (every task
      sent to it went before); what it runs goes on, and its ``bye`` comes when that is done.

Streaming
  10s. A ``chunk`` from the runner that holds a running task that asked to ``stream`` is
      forwarded to its client as ``output``, droppable like a refusal (a client that does
      not read loses chunks, never its result: the result carries the whole output). What
      is forwarded of one task is capped at its ``stdout_bytes`` (or ``max_stdout_bytes``,
      or ``protocol.MAX_STREAM_BYTES``) and ``protocol.MAX_STREAM_CHUNKS`` chunks; the rest,
      and any chunk for a task that does not stream, is not that runner's or is over, is
      dropped and counted: a runner's flood costs the broker a counter, not memory.

Results and cancellation
  11. ``done`` from the runner that holds the task forwards the envelope and the runner's
      status to the client and frees the slot; an envelope too large to forward within the
      frame cap ends as ``output_limit``. A ``done`` for a task that runner does not hold is
      dropped and counted, never counted as an outcome.
  12. ``cancel`` of a queued task removes it (answer: rejected "cancelled before it ran"); of
      a running task sends ``cancel_task`` to its runner and answers the client at once
      (crashed "cancelled while running"); the slot is freed when the runner reports.
      Cancelling an unknown or finished task changes nothing and is not answered: the task
      had (or will have) its one answer, and a late cancel must not look like a second one.
  13. A client the socket cannot reach any more is gone: its queued tasks are dropped and its
      running ones cancelled, without answers.

Draining
  14. ``drain`` stops all new work: every queued task is answered at once (rejected "the
      broker is shutting down"), and so is every later submit; no queued task starts and no
      lost task is retried. In-flight tasks run on; ``shutdown`` (at the grace's end)
      cancels those still running.

Sessions (a held process of one runner whose interpreter state lives across calls)
  15. A session belongs to the principal that opened it and is known by (principal, id): the
      same id named by two principals is two sessions, and a runner knows each as
      ``<principal's tag>/<id>``. Opening an id the principal has open attaches to it (sent
      to its runner); opening a new one queues like a task and is pinned, when dispatched, to
      the runner it goes to. At most ``max_sessions`` are open (or opening) in all and
      ``max_sessions_per_principal`` per principal; beyond, the open is rejected naming the
      cap.
  16. A call or a close of an open session goes to its runner at once (no queue: its process
      is held there, not a slot), and nowhere else. A call of an id the principal has not
      open is rejected; of one that ended, it is answered ``session_lost`` with why (kept for
      the last ``ended_kept`` ids), never opened anew. A close forgets the session at once.
  17. A session ends when its runner says so (``session_ended``: idle, lifetime, its process
      gone), when an open or call of it comes back ``session_lost``, or when its runner is
      lost or leaves: then every session pinned there ends, and a call running on it is
      answered ``session_lost`` (never retried elsewhere: the state was there).

Every submitted task gets exactly one answer and one ``Outcome``, whichever rule ends it. A
task its caller cancelled or abandoned (rules 12, 13) is counted as ``cancelled``, not as the
``crashed`` or ``rejected`` its answer says: it is nobody's failure.
"""

from __future__ import annotations

import bisect
import functools
import heapq
import itertools
import math
import hashlib
from collections import Counter, OrderedDict
from dataclasses import dataclass, field

from broker import protocol as p

# Why the broker itself ended a task (an Outcome's ``reason``; "" for a runner's result).
QUEUE_FULL = "queue_full"
CLIENT_CAP = "client_cap"
DUPLICATE_ID = "duplicate_id"
NO_RUNNER = "no_runner"
QUEUE_TIMEOUT = "queue_timeout"
EXPIRED = "expired"  # the caller's deadline passed
CANCELLED = "cancelled"
RUNNER_LOST = "runner_lost"
CLIENT_GONE = "client_gone"
DRAINING = "draining"
SHUTDOWN = "shutdown"
FRAME_CAP = "frame_cap"
LIMIT_CAP = "limit_cap"
SESSION_CAP = "session_cap"
NO_SESSION = "no_session"
SESSION_LOST = "session_lost"
_UNITS = {"timeout_s": "s", "memory_mb": "MB", "stdout_bytes": "bytes", "result_bytes": "bytes"}


def _number(value: float) -> str:
    """A whole number as one (67108864, not 6.71089e+07); else shortest."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"

# An Outcome's status for a task its caller cancelled or abandoned (a cancel, a client gone):
# its answer keeps its wire status (crashed or rejected), but it is no crash of anything
CANCELLED_STATUS = "cancelled"
_CALLER_ENDED = frozenset({CANCELLED, CLIENT_GONE})

SHUTTING_DOWN = "the broker is shutting down"
_MAX_LANES_SEEN = 64  # lanes whose depth is reported even when empty (bounded: clients name them)


@dataclass(frozen=True)
class BrokerConfig:
    max_queued: int = 10_000
    max_in_flight: int = 100_000
    max_per_client: int = 10_000  # tasks one client may hold: queued, running, unread
    lane_caps: dict[str, int] = field(default_factory=dict)  # lane -> concurrency cap
    # the most a task may ask for, per limit (None: no cap of the broker's)
    max_timeout_s: float | None = None
    max_memory_mb: int | None = None
    max_stdout_bytes: int | None = None
    max_result_bytes: int | None = None

    @functools.cached_property
    def limit_caps(self) -> dict[str, float]:
        """The caps that are set, by the limit's name (worked out once: every submit asks)."""
        caps = {"timeout_s": self.max_timeout_s, "memory_mb": self.max_memory_mb,
                "stdout_bytes": self.max_stdout_bytes, "result_bytes": self.max_result_bytes}
        return {name: cap for name, cap in caps.items() if cap is not None}
    # worker-mode tasks one principal may run at once: each holds a warm worker of its own
    max_workers_per_principal: int = 16
    # who a client on an ipc socket is: "connection" (each connection its own principal, but
    # the connections of one process sending one client secret are one: a client object's,
    # one per thread) or "uid" (every connection of one user shares its principal, and so its
    # warm workers);
    # read by the shell, which names the principal (rule 7t)
    ipc_principal: str = "connection"
    queue_timeout_s: float = 30.0  # default queue-wait deadline
    heartbeat_s: float = 1.0
    liveness: int = 3  # heartbeats a runner may miss before it is lost
    # how long a lost runner's tasks wait for it to come back (rule 9h); 0: they end at once
    runner_hold_s: float = 5.0
    # runners whose round trips are within this of the nearest are equals (rule 6)
    near_tolerance_ms: float = 10.0
    # runtimes whose waiting tasks an autoscaler counts even while no runner serves them (so
    # that it can start the first); a registered runner's runtimes count anyway
    runtimes: tuple[str, ...] = ()
    max_sessions: int = 1000  # rule 15: sessions open (or opening) in all
    max_sessions_per_principal: int = 16
    ended_kept: int = 10_000  # rule 16: ended sessions remembered, with why


@dataclass(frozen=True)
class Send:
    """One message to send: to a client or to a runner, by ZeroMQ identity. ``droppable``: a
    refusal, answering nothing the broker took on (a refused submit, a malformed frame, a
    ping), which the shell may drop (counted) for a client that does not read; the answer of
    an accepted task is never droppable."""

    to: bytes
    msg: p.Message
    droppable: bool = False


@dataclass(frozen=True)
class Outcome:
    """How one task ended, recorded once: what the metrics count."""

    runtime: str
    lane: str
    status: str  # one of protocol.STATUSES, or CANCELLED_STATUS
    reason: str  # why the broker ended it (the constants above), "" for a runner's result
    queue_s: float | None  # submit to (last) dispatch; None when it never ran
    run_s: float | None  # dispatch to answer; None when it never ran


IPC_PRINCIPALS = ("connection", "uid")


@functools.lru_cache(maxsize=4096)
def principal_tag(principal: str) -> str:
    """The short name of a principal that scopes its reuse keys (rule 7t): fixed length, so
    that a long CURVE key or connection name never crowds out the caller's key."""
    return hashlib.blake2b(principal.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def connection_principal(client: bytes) -> str:
    """The principal of a client known only by its connection (the shell passes none)."""
    return f"conn:{client.hex()}"


@dataclass
class Task:
    key: str  # broker-wide: client identity + client's id
    client: bytes
    submit: p.Submit
    seq: int
    submitted_at: float
    deadline: float  # when it leaves the queue unrun (queue wait or the caller's deadline)
    principal: str = ""  # who the task belongs to (rule 7t)
    expires_at: float = math.inf  # the caller's deadline: nobody waits after it
    attempts: int = 0
    runner: bytes | None = None
    dispatched_at: float = 0.0
    cancelled: bool = False  # answered while running; its runner still holds the slot
    streamed: int = 0  # bytes of output forwarded (rule 10s)
    chunks: int = 0  # and in how many chunks

    @property
    def session(self) -> tuple[str, str] | None:
        """The session it opens, calls or closes (rule 15), or None."""
        return None if self.submit.session is None else (self.principal, self.submit.session)

    def order(self) -> tuple[int, int, str]:
        return (-self.submit.priority, self.seq, self.key)


@dataclass
class Runner:
    identity: bytes
    runtimes: dict[str, str]
    groups: frozenset[str]
    slots: int
    name: str
    last_seen: float
    running: set[str] = field(default_factory=set)  # task keys
    idle_children: int = 0
    idle: dict[str, int] = field(default_factory=dict)  # idle children per runtime
    draining: bool = False  # leaving: finishes what it runs, is given nothing new (rule 10)
    rtt_s: float | None = None  # its heartbeats' round trip, smoothed (rule 6); None: unknown

    @property
    def free(self) -> int:
        return 0 if self.draining else self.slots - len(self.running)

    def serves(self, submit: p.Submit) -> bool:
        version = self.runtimes.get(submit.runtime)
        if version is None or not version.startswith(submit.version):
            return False
        return submit.group is None or submit.group in self.groups


@dataclass
class Session:
    """An open (or opening) session (rule 15)."""

    runtime: str
    scoped: str  # its name on its runner: "<principal's tag>/<id>"
    runner: bytes | None = None  # pinned when its open is dispatched


@dataclass
class Held:
    """A lost runner whose tasks wait for it (rule 9h)."""

    runner: Runner
    until: float
    reason: str  # why it was lost, for the answers if it does not come back
    cancelled: set[str] = field(default_factory=set)  # its tasks cancelled while held


_RTT_WEIGHT = 0.3  # of a new sample in the smoothed round trip


@dataclass
class ClientState:
    tasks: set[str] = field(default_factory=set)  # keys of its unanswered tasks
    backlog: int = 0  # answers the shell holds because the client's socket is full


class _Running(dict[str, Task]):
    """The dispatched tasks by key, with two counts kept as tasks come and go: worker-mode
    tasks per principal (rule 7) and tasks per lane (rule 4). Dispatch reads both on every
    event; counting them afresh each time scanned every running task twice per event."""

    def __init__(self) -> None:
        super().__init__()
        self.workers: Counter[str] = Counter()
        self.lanes: Counter[str] = Counter()

    def __setitem__(self, key: str, task: Task) -> None:
        old = self.get(key)
        if old is not None:
            self._count(old, -1)
        super().__setitem__(key, task)
        self._count(task, 1)

    def __delitem__(self, key: str) -> None:
        task = self[key]
        super().__delitem__(key)
        self._count(task, -1)

    def pop(self, key: str, default: Task | None = None) -> Task | None:  # type: ignore[override]
        task = super().pop(key, default)
        if task is not None:
            self._count(task, -1)
        return task

    def _count(self, task: Task, step: int) -> None:
        for counts, name in ((self.lanes, task.submit.lane),
                             (self.workers, task.principal if task.submit.isolation == "worker"
                              else None)):
            if name is None:
                continue
            left = counts[name] + step
            if left:
                counts[name] = left
            else:
                del counts[name]  # no key of a principal or lane with nothing running


class BrokerCore:
    def __init__(self, config: BrokerConfig | None = None) -> None:
        self.config = config or BrokerConfig()
        self.queued: dict[str, Task] = {}
        # the queue in dispatch order, and a heap of queue deadlines (entries of tasks that
        # left the queue are skipped when they surface): no event sorts the whole queue
        self._order: list[tuple[int, int, str]] = []
        # worker-mode tasks of a principal at its cap, out of the dispatch order (in order,
        # per principal) until one of its workers is free: a long backlog of one principal
        # is not scanned again on every event
        self._parked: dict[str, list[tuple[int, int, str]]] = {}
        self._deadlines: list[tuple[float, int, str]] = []
        self._expiries: list[tuple[float, int, str]] = []  # running tasks' caller deadlines
        self.running = _Running()
        self.runners: dict[bytes, Runner] = {}
        self.held: dict[bytes, Held] = {}  # lost runners that may come back (rule 9h)
        self.clients: dict[bytes, ClientState] = {}
        self.counters: Counter[str] = Counter()
        self.outcomes: list[Outcome] = []  # taken by the shell (take_outcomes)
        self.draining = False
        self._lanes_seen: set[str] = {p.DEFAULT_LANE, *self.config.lane_caps}
        self._served: set[tuple[str, str]] = set()  # (runtime, version) any runner registered
        self._seq = itertools.count()
        self._next_heartbeat = 0.0
        self.sessions: dict[tuple[str, str], Session] = {}  # (principal, id) -> its session
        self._scoped: dict[str, tuple[str, str]] = {}  # a runner's name of it -> (principal, id)
        self.ended: OrderedDict[tuple[str, str], str] = OrderedDict()  # -> why it ended

    # -- events ------------------------------------------------------------------------------

    def on_client(self, client: bytes, msg: p.Message, now: float,
                  principal: str | None = None) -> list[Send]:
        """A message from a client. ``principal``: who sent it, as the transport says (rule
        7t); None for a client known by its connection only."""
        if isinstance(msg, p.Submit):
            return self._submit(client, msg, now, principal or connection_principal(client))
        if isinstance(msg, p.Cancel):
            return self._cancel(client, msg.id, now)
        if isinstance(msg, p.Ping):
            return [Send(client, p.Pong(), droppable=True)]
        return self.on_malformed(client, f"a client may not send {msg.TYPE!r}", None)

    def on_runner(self, identity: bytes, msg: p.Message, now: float) -> list[Send]:
        if isinstance(msg, p.Ready):
            return self._ready(identity, msg, now)
        if not isinstance(msg, (p.RunnerHeartbeat, p.Done, p.Bye, p.SessionEnded, p.Chunk,
                                p.Missing)):
            return self.on_malformed(identity, f"a runner may not send {msg.TYPE!r}", None,
                                     from_runner=True)
        runner = self.runners.get(identity)
        if runner is None:
            held = self.held.get(identity)
            if held is not None:
                return self._from_held(held, msg, now)
            self.counters["dropped_unknown_runner"] += 1
            return []
        runner.last_seen = now
        if isinstance(msg, p.RunnerHeartbeat):
            runner.idle_children = msg.idle_children
            runner.idle = msg.idle
            if msg.echo is not None and msg.echo <= now:
                sample = now - msg.echo
                runner.rtt_s = sample if runner.rtt_s is None else (
                    (1 - _RTT_WEIGHT) * runner.rtt_s + _RTT_WEIGHT * sample)
            if msg.draining and not runner.draining:
                runner.draining = True
                # what was sent to it went before this answer: once it has the answer and
                # nothing runs, it may leave
                return [Send(identity, p.BrokerHeartbeat(draining=True))]
            return []
        if isinstance(msg, p.Done):
            return self._done(runner, msg, now)
        if isinstance(msg, p.SessionEnded):
            owner = self._scoped.get(msg.session)
            open_ = self.sessions.get(owner) if owner is not None else None
            if owner is not None and open_ is not None and open_.runner == identity:
                self._end_session(owner, msg.reason)
            return []
        if isinstance(msg, p.Chunk):
            return self._chunk(runner, msg)
        if isinstance(msg, p.Missing):
            return self._missing(runner, msg, now)
        return self._lose(runner, now, "runner left", counter="runners_left", hold=False)

    def on_malformed(self, sender: bytes, error: str, msg_id: str | None, *,
                     from_runner: bool = False) -> list[Send]:
        """A frame that is not a valid message. A client is answered with ``rejected``; a
        runner's bad frame is only counted (a runner has no use for the answer)."""
        if from_runner:
            self.counters["malformed_runner"] += 1
            return []
        self.counters["malformed_client"] += 1
        return [Send(sender, p.Rejected(msg_id, f"rejected: {error}"), droppable=True)]

    def on_runner_gone(self, identity: bytes, now: float) -> list[Send]:
        """The runner socket cannot reach this runner any more: it is lost (rule 8)."""
        runner = self.runners.get(identity)
        return self._lose(runner, now, "runner lost (disconnected)") if runner is not None else []

    def on_client_gone(self, client: bytes, now: float) -> list[Send]:
        """The client socket cannot reach this client any more (rule 13)."""
        state = self.clients.pop(client, None)
        if state is None:
            return []
        self.counters["clients_gone"] += 1
        out: list[Send] = []
        for key in sorted(state.tasks):
            task = self.queued.get(key)
            if task is not None:
                self._dequeue(task)
                self._record(task, p.REJECTED, CLIENT_GONE, now)
                continue
            task = self.running.get(key)
            if task is not None and not task.cancelled:
                out += self._cancel_running(task, now)
                self._record(task, p.CRASHED, CLIENT_GONE, now)
        return out + self._dispatch(now)

    def on_backlog(self, client: bytes, count: int) -> None:
        """The shell holds ``count`` answers that the client's socket has not taken yet."""
        state = self.clients.get(client)
        if state is None:
            if not count:
                return
            state = self.clients[client] = ClientState()
        state.backlog = count
        self._forget_idle(client, state)

    def tick(self, now: float) -> list[Send]:
        out: list[Send] = []
        expiry = self.config.heartbeat_s * self.config.liveness
        for runner in list(self.runners.values()):
            if now - runner.last_seen > expiry:
                out += self._lose(runner, now, f"runner lost (silent for {expiry:g} s)")
        for held in [h for h in self.held.values() if now >= h.until]:
            out += self._give_up(held, now)
        while self._deadlines and self._deadlines[0][0] <= now:
            deadline, _, key = heapq.heappop(self._deadlines)
            task = self.queued.get(key)
            if task is None or task.deadline != deadline:
                continue  # it left the queue, or waits under a later deadline now
            self._dequeue(task)
            if now >= task.expires_at:
                self.counters["expired_queued"] += 1
                out.append(self._reject(task, "nobody waits for it any more (the caller's "
                                        "deadline passed before it ran)", EXPIRED, now))
            else:
                out.append(self._reject(task, self._why_waiting(task), QUEUE_TIMEOUT, now))
        while self._expiries and self._expiries[0][0] <= now:
            _, _, key = heapq.heappop(self._expiries)
            task = self.running.get(key)
            if task is None or task.cancelled or task.expires_at > now:
                continue
            self.counters["expired_running"] += 1
            out += self._cancel_running(task, now)
            out.append(self._answer(task, p.CRASHED, "cancelled: nobody waits for it any more "
                                    "(the caller's deadline passed)", EXPIRED, now))
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + self.config.heartbeat_s
            out += [Send(r.identity, p.BrokerHeartbeat(clock=now)) for r in self.runners.values()]
        return out + self._dispatch(now)

    def drain(self, now: float) -> list[Send]:
        """Rule 14: no new work from now on; every queued task is answered at once."""
        self.draining = True
        out = []
        for task in sorted(self.queued.values(), key=Task.order):
            self._dequeue(task)
            out.append(self._reject(task, SHUTTING_DOWN, DRAINING, now))
        return out

    def shutdown(self, now: float) -> list[Send]:
        """The grace is over: cancel every task still running (and drain, if not yet)."""
        out = self.drain(now)
        for task in sorted(self.running.values(), key=Task.order):
            if task.cancelled:
                continue
            out += self._cancel_running(task, now)
            out.append(self._answer(task, p.CRASHED, "the broker shut down before the task "
                                    "finished", SHUTDOWN, now))
        return out

    def take_outcomes(self) -> list[Outcome]:
        taken, self.outcomes = self.outcomes, []
        return taken

    # -- rules -------------------------------------------------------------------------------

    def _submit(self, client: bytes, msg: p.Submit, now: float, principal: str) -> list[Send]:
        key = f"{client.hex()}:{msg.id}"
        task = Task(key, client, msg, next(self._seq), now, now, principal)
        if key in self.queued or key in self.running:
            return [self._reject(task, f"task id {msg.id!r} is already in use", DUPLICATE_ID,
                                 now, held=False)]
        if self.draining:
            return [self._reject(task, SHUTTING_DOWN, DRAINING, now, held=False)]
        over = self._over_cap(msg.limits)
        if over:
            return [self._reject(task, over, LIMIT_CAP, now, held=False)]
        state = self.clients.get(client)
        held = len(state.tasks) + state.backlog if state is not None else 0
        if held >= self.config.max_per_client:
            return [self._reject(task, f"this client holds {held} unanswered tasks, its cap "
                                 f"(max_per_client {self.config.max_per_client})",
                                 CLIENT_CAP, now, held=False)]
        if len(self.queued) >= self.config.max_queued:
            return [self._reject(task, f"queue full ({len(self.queued)} waiting)", QUEUE_FULL,
                                 now, held=False)]
        if not msg.wait_for_runner and not any(r.serves(msg) and not r.draining
                                               for r in self.runners.values()):
            return [self._reject(task, self._no_runner(msg), NO_RUNNER, now, held=False)]
        if self._never_served(msg):
            return [self._reject(task, self._no_runner(msg), NO_RUNNER, now, held=False)]
        if msg.deadline_s is not None:
            task.expires_at = now + msg.deadline_s
        task.deadline = min(now + self._wait_of(task), task.expires_at)
        pinned: Runner | None = None
        if task.session is not None:
            refused = self._session_refusal(task, now)
            if refused is not None:
                return refused
            open_ = self.sessions.get(task.session)
            pinned = self.runners.get(open_.runner) if open_ is not None and open_.runner else None
        if state is None:
            state = self.clients[client] = ClientState()
        state.tasks.add(key)
        if pinned is not None:  # rule 16: to its runner at once, no queue
            self.counters["submitted"] += 1
            return [self._send_to(task, pinned, now)]
        if len(self._lanes_seen) < _MAX_LANES_SEEN:
            self._lanes_seen.add(msg.lane)
        self._enqueue(task)
        self.counters["submitted"] += 1
        return self._dispatch(now)

    def _cancel(self, client: bytes, msg_id: str, now: float) -> list[Send]:
        key = f"{client.hex()}:{msg_id}"
        task = self.queued.get(key)
        if task is not None:
            self._dequeue(task)
            self.counters["cancelled_queued"] += 1
            return [self._reject(task, "cancelled before it ran", CANCELLED, now)]
        task = self.running.get(key)
        if task is None or task.cancelled:
            self.counters["cancel_unknown"] += 1  # rule 12: answered once already, or never
            return []
        self.counters["cancelled_running"] += 1
        return self._cancel_running(task, now) + [
            self._answer(task, p.CRASHED, "cancelled while running", CANCELLED, now)]

    def _cancel_running(self, task: Task, now: float) -> list[Send]:
        """Tell the runner to stop ``task``; it keeps its slot until the runner reports. A
        held runner is told when it comes back (rule 9r); the task is forgotten now."""
        task.cancelled = True
        assert task.runner is not None
        held = self.held.get(task.runner)
        if held is not None:
            del self.running[task.key]
            held.runner.running.discard(task.key)
            held.cancelled.add(task.key)
            return []
        return [Send(task.runner, p.CancelTask(task.key))]

    def _ready(self, identity: bytes, msg: p.Ready, now: float) -> list[Send]:
        out: list[Send] = []
        kept: set[str] = set()
        cancelled: set[str] = set()
        old = self.runners.pop(identity, None)
        held = self.held.pop(identity, None)
        if old is not None or held is not None:  # rule 9r: the same runner, a new connection
            self.counters["runners_reattached"] += 1
            if held is not None:
                kept, cancelled = held.runner.running, held.cancelled
            if old is not None:
                kept = old.running
        runner = self.runners[identity] = Runner(
            identity, dict(msg.runtimes), frozenset(msg.groups), msg.slots, msg.name, now,
            running=kept)
        self._served.update(msg.runtimes.items())
        self.counters["runners_registered"] += 1
        ids, step = sorted(runner.running), p.MAX_IDS_PER_MESSAGE
        for start in range(0, max(len(ids), 1), step):
            out.append(Send(identity, p.Holding(tuple(ids[start:start + step]),
                                                more=start + step < len(ids))))
        out += [Send(identity, p.CancelTask(key)) for key in sorted(cancelled)]
        return out + self._dispatch(now)

    def _from_held(self, held: Held, msg: p.Message, now: float) -> list[Send]:
        """A message from a held runner on its old connection (rule 9h)."""
        identity = held.runner.identity
        if isinstance(msg, p.Done):  # an answer that was on its way: the first one wins
            return self._done(held.runner, msg, now)
        if isinstance(msg, p.Bye):
            del self.held[identity]
            self.runners[identity] = held.runner
            return self._lose(held.runner, now, "runner left", counter="runners_left",
                              hold=False)
        self.counters["dropped_unknown_runner"] += 1
        return []

    def _missing(self, runner: Runner, msg: p.Missing, now: float) -> list[Send]:
        """Rule 9r: tasks sent on a lost connection never reached the runner: they never ran."""
        out: list[Send] = []
        for key in msg.task_ids:
            task = self.running.get(key)
            if task is None or task.runner != runner.identity or task.cancelled:
                continue
            del self.running[key]
            runner.running.discard(key)
            task.runner = None
            task.attempts -= 1
            self.counters["resent_missing"] += 1
            if self.draining:
                out.append(self._answer(task, p.CRASHED, "the runner lost the connection the "
                                        "task was sent on, and the broker is shutting down",
                                        RUNNER_LOST, now))
            else:
                self._enqueue(task)
        return out + self._dispatch(now)

    def _give_up(self, held: Held, now: float) -> list[Send]:
        """The hold is over (rule 9h): its tasks end as rule 9 says."""
        del self.held[held.runner.identity]
        self.counters["holds_ended"] += 1
        out: list[Send] = []
        for key in sorted(held.runner.running):
            task = self.running.pop(key, None)
            if task is None or task.cancelled:
                continue
            task.runner = None
            self.counters["crashed_runner_lost"] += 1
            out.append(self._answer(task, p.CRASHED, f"{held.reason} while running the task",
                                    RUNNER_LOST, now))
        return out + self._dispatch(now)

    def _done(self, runner: Runner, msg: p.Done, now: float) -> list[Send]:
        task = self.running.get(msg.task_id)
        if task is None or task.runner != runner.identity:
            self.counters["dropped_stale_done"] += 1
            runner.running.discard(msg.task_id)
            return self._dispatch(now)
        del self.running[msg.task_id]
        runner.running.discard(msg.task_id)
        owner = task.session
        if owner is not None and owner in self.sessions and self.sessions[owner].runner == runner.identity:
            if msg.status == p.SESSION_LOST or (task.submit.session_op == "open"
                                                and msg.status != p.OK):
                self._end_session(owner, "its runner lost it" if msg.status == p.SESSION_LOST
                                  else "", remember=msg.status == p.SESSION_LOST)
        out: list[Send] = []
        if task.cancelled:  # its client was answered already; only the slot was held
            self.counters["late_done"] += 1
        elif len(msg.envelope) > p.MAX_ENVELOPE_BYTES:
            out.append(self._answer(task, p.OUTPUT_LIMIT, f"the result ({len(msg.envelope)} "
                                    f"bytes) is larger than the broker forwards "
                                    f"({p.MAX_ENVELOPE_BYTES} bytes)", FRAME_CAP, now))
        else:
            self.counters["completed"] += 1
            out.append(self._answer(task, msg.status, "", "", now, envelope=msg.envelope))
        return out + self._dispatch(now)

    def _chunk(self, runner: Runner, msg: p.Chunk) -> list[Send]:
        """Rule 10s."""
        task = self.running.get(msg.task_id)
        if (task is None or task.runner != runner.identity or task.cancelled
                or not task.submit.stream):
            self.counters["dropped_stale_chunk"] += 1
            return []
        cap = (task.submit.limits.stdout_bytes or self.config.max_stdout_bytes
               or p.MAX_STREAM_BYTES)
        if (task.streamed + len(msg.data) > min(cap, p.MAX_STREAM_BYTES)
                or task.chunks >= p.MAX_STREAM_CHUNKS):
            self.counters["dropped_chunk_over_cap"] += 1
            return []
        task.streamed += len(msg.data)
        task.chunks += 1
        return [Send(task.client, p.Output(task.submit.id, msg.stream, msg.data), droppable=True)]

    def _lose(self, runner: Runner, now: float, reason: str, *,
              counter: str = "runners_lost", hold: bool = True) -> list[Send]:
        """``runner`` is gone: lost, or left (said bye), as ``counter`` counts it. A lost
        runner is held (rule 9h) with the tasks it may still be running."""
        del self.runners[runner.identity]
        self.counters[counter] += 1
        for owner, session in list(self.sessions.items()):
            if session.runner == runner.identity:  # rule 17
                self._end_session(owner, reason)
        hold = hold and self.config.runner_hold_s > 0
        out: list[Send] = []
        kept: set[str] = set()
        for key in sorted(runner.running):
            task = self.running.get(key)
            if task is None:
                continue
            if task.cancelled:
                del self.running[key]
                task.runner = None
                continue
            if task.session is not None:  # rule 17: a session ends with its runner, never held
                del self.running[key]
                task.runner = None
                out.append(self._answer(task, p.SESSION_LOST, f"session {task.submit.session!r} "
                                        f"is lost: {reason}", RUNNER_LOST, now))
                continue
            retry = (task.submit.idempotent and task.attempts < task.submit.max_attempts
                     and not self.draining and now < task.expires_at)
            if hold and not retry:
                kept.add(key)
                continue
            del self.running[key]
            task.runner = None
            if retry:
                task.deadline = min(max(task.deadline, now + self._wait_of(task)),
                                    task.expires_at)
                self._enqueue(task)  # keeps its seq: back at the front of its priority
                self.counters["retried"] += 1
            else:
                self.counters["crashed_runner_lost"] += 1
                out.append(self._answer(task, p.CRASHED, f"{reason} while running the task",
                                        RUNNER_LOST, now))
        if hold:
            runner.running = kept
            self.held[runner.identity] = Held(runner, now + self.config.runner_hold_s, reason)
        return out + self._dispatch(now)

    def _dispatch(self, now: float) -> list[Send]:
        if not self.queued or self.draining:
            return []
        free = sum(max(0, r.free) for r in self.runners.values())
        if not free:  # the usual state under a backlog: nothing to do, and nothing scanned
            return []
        out: list[Send] = []
        in_flight = len(self.running)
        # kept as tasks come and go; each task placed below is counted in them by _send_to
        lanes, workers = self.running.lanes, self.running.workers
        worker_cap = self.config.max_workers_per_principal
        for principal in [pr for pr in self._parked if workers[pr] < worker_cap]:
            self._unpark(principal, worker_cap - workers[principal])
        placed: list[Task] = []
        parked: list[Task] = []
        for _, _, key in self._order:
            if in_flight >= self.config.max_in_flight or not free:
                break
            task = self.queued[key]
            cap = self.config.lane_caps.get(task.submit.lane)
            if cap is not None and lanes[task.submit.lane] >= cap:
                continue
            is_worker = task.submit.isolation == "worker"
            if is_worker and workers[task.principal] >= worker_cap:
                parked.append(task)
                continue
            runner = self._place(task.submit)
            if runner is None:
                continue
            placed.append(task)
            in_flight += 1
            free -= 1
            if task.session is not None and task.session in self.sessions:
                self.sessions[task.session].runner = runner.identity  # rule 15: pinned
            out.append(self._send_to(task, runner, now))
        for task in placed:
            self._dequeue(task)
        if parked:
            self._park(parked)
        if len(self._expiries) > 2 * len(self.running) + 1024:  # mostly tasks long done
            self._expiries = [(t.expires_at, t.seq, t.key) for t in self.running.values()
                              if t.expires_at != math.inf]
            heapq.heapify(self._expiries)
        return out

    def _send_to(self, task: Task, runner: Runner, now: float) -> Send:
        """``task`` runs on ``runner`` from now on: its message."""
        task.runner = runner.identity
        task.attempts += 1
        task.dispatched_at = now
        runner.running.add(task.key)
        self.running[task.key] = task
        if task.expires_at != math.inf:
            heapq.heappush(self._expiries, (task.expires_at, task.seq, task.key))
        s = task.submit
        reuse = session = None
        if s.isolation == "worker":  # rule 7t: a worker serves one principal, one lane, one key
            reuse = f"{principal_tag(task.principal)}/{s.lane}/{s.reuse_key or ''}"
        if s.session is not None:  # rule 15: and a session, one principal
            session = f"{principal_tag(task.principal)}/{s.session}"
            if s.session_op == "close":
                self._end_session((task.principal, s.session), "it was closed")
        return Send(runner.identity, p.TaskMsg(task.key, s.runtime, s.code, s.data, s.limits,
                                               s.policy, s.imports, reuse, session, s.session_op,
                                               s.idle_timeout_s, s.max_lifetime_s, s.stdin,
                                               s.separate_stderr, s.stream, s.files,
                                               s.return_files))

    # -- sessions (rules 15 to 17) -----------------------------------------------------------

    def _session_refusal(self, task: Task, now: float) -> list[Send] | None:
        """The answer of a session's submit that goes nowhere (rules 15, 16), or None: an
        open to queue (registered now), or an open, call or close for its runner."""
        owner = task.session
        assert owner is not None
        s = task.submit
        held = self.sessions.get(owner)
        if held is not None:
            if held.runtime != s.runtime:
                return [self._reject(task, f"session {s.session!r} is a {held.runtime} session, "
                                     f"not {s.runtime}", NO_SESSION, now, held=False)]
            if held.runner is None:
                return [self._reject(task, f"session {s.session!r} is still being opened",
                                     NO_SESSION, now, held=False)]
            return None
        if s.session_op != "open":
            why = self.ended.get(owner)
            if why is None:
                return [self._reject(task, f"session {s.session!r} is not open (open it first)",
                                     NO_SESSION, now, held=False)]
            task.dispatched_at = now
            status = p.OK if s.session_op == "close" else p.SESSION_LOST
            self.counters["session_" + ("closed_ended" if status == p.OK else "lost_calls")] += 1
            return [self._answer(task, status, f"session {s.session!r} ended: {why}",
                                 SESSION_LOST if status != p.OK else "", now)]
        mine = sum(1 for principal, _ in self.sessions if principal == task.principal)
        if mine >= self.config.max_sessions_per_principal:
            return [self._reject(task, f"this principal has {mine} sessions open, its cap "
                                 f"(max_sessions_per_principal); close one first",
                                 SESSION_CAP, now, held=False)]
        if len(self.sessions) >= self.config.max_sessions:
            return [self._reject(task, f"{len(self.sessions)} sessions are open, the service's "
                                 f"cap (max_sessions); close one first", SESSION_CAP, now,
                                 held=False)]
        scoped = f"{principal_tag(task.principal)}/{s.session}"
        self.sessions[owner] = Session(s.runtime, scoped)
        self._scoped[scoped] = owner
        self.ended.pop(owner, None)
        return None

    def _end_session(self, owner: tuple[str, str], why: str, *, remember: bool = True) -> None:
        held = self.sessions.pop(owner, None)
        if held is None:
            return
        self._scoped.pop(held.scoped, None)
        if remember:
            self.ended[owner] = why
            while len(self.ended) > self.config.ended_kept:
                self.ended.popitem(last=False)

    def session_count(self) -> int:
        return len(self.sessions)

    def _enqueue(self, task: Task) -> None:
        self.queued[task.key] = task
        bisect.insort(self._order, task.order())
        heapq.heappush(self._deadlines, (task.deadline, task.seq, task.key))
        if len(self._deadlines) > 2 * len(self.queued) + 1024:  # mostly tasks long gone
            self._deadlines = [(t.deadline, t.seq, t.key) for t in self.queued.values()]
            heapq.heapify(self._deadlines)

    def _dequeue(self, task: Task) -> None:
        del self.queued[task.key]
        entry = task.order()
        i = bisect.bisect_left(self._order, entry)
        if i < len(self._order) and self._order[i] == entry:
            del self._order[i]
            return
        held = self._parked.get(task.principal)
        if held is not None:
            i = bisect.bisect_left(held, entry)
            if i < len(held) and held[i] == entry:
                del held[i]
                if not held:
                    del self._parked[task.principal]

    def _park(self, tasks: list[Task]) -> None:
        """Take worker tasks of principals at their cap out of the dispatch order (rule 7)."""
        keys = {task.key for task in tasks}
        self._order = [entry for entry in self._order if entry[2] not in keys]
        for task in tasks:
            bisect.insort(self._parked.setdefault(task.principal, []), task.order())

    def _unpark(self, principal: str, count: int) -> None:
        """Put back the first ``count`` parked tasks of a principal with free workers."""
        held = self._parked[principal]
        for entry in held[:count]:
            bisect.insort(self._order, entry)
        del held[:count]
        if not held:
            del self._parked[principal]

    def _place(self, submit: p.Submit) -> Runner | None:
        """Rule 6: the nearest runners with a free slot (within the tolerance) are equals;
        among them, the one with most free slots."""
        fits = [r for r in self.runners.values() if r.free > 0 and r.serves(submit)]
        if len(fits) <= 1:
            return fits[0] if fits else None
        near = min(r.rtt_s or 0.0 for r in fits) + self.config.near_tolerance_ms / 1000.0
        best: Runner | None = None
        for runner in fits:
            if (runner.rtt_s or 0.0) <= near and (best is None or runner.free > best.free):
                best = runner
        return best

    # -- answers: each task's one answer goes through _reject or _answer, which record it ------

    def _reject(self, task: Task, message: str, reason: str, now: float, *,
                held: bool = True) -> Send:
        """Answer a task that never ran. ``held``: the task was accepted (and counted
        against its client) before."""
        self._record(task, p.REJECTED, reason, now, held=held)
        return Send(task.client, p.Rejected(task.submit.id, message, reason), droppable=not held)

    def _answer(self, task: Task, status: str, message: str, reason: str, now: float, *,
                envelope: bytes | None = None) -> Send:
        """Answer a task that was dispatched: the runner's result, or the broker's own."""
        self._record(task, status, reason, now)
        queue_ms = (task.dispatched_at - task.submitted_at) * 1000.0
        return Send(task.client, p.ResultMsg(task.submit.id, status, message, envelope,
                                             task.attempts, queue_ms))

    def _record(self, task: Task, status: str, reason: str, now: float, *,
                held: bool = True) -> None:
        ran = task.attempts > 0
        owner = task.session
        if owner is not None and task.submit.session_op == "open" and not ran:
            opening = self.sessions.get(owner)
            if opening is not None and opening.runner is None:  # never opened: nothing to keep
                self._end_session(owner, "", remember=False)
        if reason in _CALLER_ENDED:
            status = CANCELLED_STATUS
        self.outcomes.append(Outcome(
            task.submit.runtime, task.submit.lane, status, reason,
            task.dispatched_at - task.submitted_at if ran else None,
            now - task.dispatched_at if ran else None))
        if held:
            state = self.clients.get(task.client)
            if state is not None:
                state.tasks.discard(task.key)
                self._forget_idle(task.client, state)

    def _forget_idle(self, client: bytes, state: ClientState) -> None:
        if not state.tasks and not state.backlog:
            self.clients.pop(client, None)

    # -- messages ----------------------------------------------------------------------------

    def _wait_of(self, task: Task) -> float:
        s = task.submit
        return self.config.queue_timeout_s if s.queue_timeout_s is None else s.queue_timeout_s

    def _never_served(self, s: p.Submit) -> bool:
        """Rule 3, the operator's choice: runners are registered, and none ever served this
        runtime at this version prefix (groups are left out: a group's runner may come)."""
        return bool(self.runners) and not any(
            runtime == s.runtime and version.startswith(s.version)
            for runtime, version in self._served)

    def _over_cap(self, limits: p.TaskLimits) -> str:
        """Why a limit the task asks for is above the operator's cap (rule 2c), or ""."""
        for name, cap in self.config.limit_caps.items():
            value = getattr(limits, name, None)
            if value is not None and value > cap:
                unit = _UNITS.get(name, "")
                return (f"{name} {_number(value)} {unit} is above this service's cap of "
                        f"{_number(cap)} {unit} (max_{name})")
        return ""

    def _no_runner(self, s: p.Submit) -> str:
        where = f" in group {s.group!r}" if s.group else ""
        version = f" version {s.version}*" if s.version else ""
        leaving = sum(1 for r in self.runners.values() if r.draining and r.serves(s))
        message = f"no runner for runtime {s.runtime!r}{version}{where}"
        message += f" ({leaving} draining)" if leaving else ""
        served = sorted({(rt, v) for r in self.runners.values() for rt, v in r.runtimes.items()})
        if not served or any(rt == s.runtime and v.startswith(s.version) for rt, v in served):
            return message  # the runtime is served: its group (or a free slot) is missing
        listing = ", ".join(f"{rt} {v}" for rt, v in served)
        message += f": this broker's runners serve {listing}"
        if not any(rt == s.runtime for rt, _ in served):
            message += (f"; start them with --runtimes naming {s.runtime} (`sandbox serve`, "
                        f"`sandbox runner`; embedded: Client(runtimes=...))")
        return message

    def _why_waiting(self, task: Task) -> str:
        s = task.submit
        waited = f"{self._wait_of(task):g} s"
        serving = [r for r in self.runners.values() if r.serves(s) and not r.draining]
        if not serving:
            return f"{self._no_runner(s)} (waited {waited})"
        cap = self.config.lane_caps.get(s.lane)
        if cap is not None and self.running.lanes[s.lane] >= cap:
            return f"lane {s.lane!r} at its cap of {cap} for {waited}"
        if s.isolation == "worker":
            mine = self.running.workers[task.principal]
            if mine >= self.config.max_workers_per_principal:
                return (f"this principal's {mine} warm workers busy (its cap, "
                        f"max_workers_per_principal) for {waited}")
        if len(self.running) >= self.config.max_in_flight:
            return f"the broker's {self.config.max_in_flight} in-flight slots busy for {waited}"
        slots = sum(r.slots for r in serving)
        return f"all {slots} slots busy for {waited}"

    # -- introspection -----------------------------------------------------------------------

    def queue_depths(self) -> dict[str, int]:
        """Queued tasks per lane; a lane that had tasks (or has a cap) reads 0 when empty."""
        depths = dict.fromkeys(self._lanes_seen, 0)
        depths.update(Counter(t.submit.lane for t in self.queued.values()))
        return depths

    def demand(self, now: float) -> dict[tuple[str, str, str], tuple[int, float]]:
        """What waits, for an autoscaler: per (runtime, group, lane) the queued tasks and
        the age of the oldest (seconds). Labels stay bounded whatever clients name: a runtime
        neither configured nor served reads "unserved", a lane not among the lanes seen
        "other", a group no registered runner carries "unserved", no group ""."""
        carried = {g for r in self.runners.values() for g in r.groups}
        served = {*self.config.runtimes, *(rt for r in self.runners.values() for rt in r.runtimes)}
        out: dict[tuple[str, str, str], tuple[int, float]] = {}
        for task in self.queued.values():
            s = task.submit
            group = "" if s.group is None else s.group if s.group in carried else "unserved"
            lane = s.lane if s.lane in self._lanes_seen else "other"
            runtime = s.runtime if s.runtime in served else "unserved"
            count, oldest = out.get((runtime, group, lane), (0, 0.0))
            out[(runtime, group, lane)] = (count + 1, max(oldest, now - task.submitted_at))
        return out

    def occupancy(self) -> dict[tuple[str, str], tuple[int, int]]:
        """Slots for an autoscaler: per (runtime, group) of the registered runners, their
        slots and how many are busy; "" stands for every runner of that runtime. A draining
        runner's slots are not offered, its busy ones count."""
        out: dict[tuple[str, str], tuple[int, int]] = {}
        for r in self.runners.values():
            offered = 0 if r.draining else r.slots
            for runtime in r.runtimes:
                for group in ("", *sorted(r.groups)):
                    slots, busy = out.get((runtime, group), (0, 0))
                    out[(runtime, group)] = (slots + offered, busy + len(r.running))
        return out

    def idle_children(self) -> int:
        return sum(r.idle_children for r in self.runners.values())

    def idle_by_runtime(self) -> dict[str, int]:
        """Idle pre-forked children per runtime, over the registered runners (0 for a
        runtime one serves with none idle). Labels stay bounded: a runtime its runner did not
        register with is not counted, and the idle children of a runner that says only their
        sum are "unknown"."""
        out: dict[str, int] = {}
        for r in self.runners.values():
            for runtime in r.runtimes:
                out[runtime] = out.get(runtime, 0) + r.idle.get(runtime, 0)
            if r.idle_children and not r.idle:
                out["unknown"] = out.get("unknown", 0) + r.idle_children
        return out

    def total_slots(self) -> int:
        return sum(r.slots for r in self.runners.values())
