"""A runtime's pre-forked pool, as rules: a pure state machine.

Events go in (the jail came up or went down, a child was spawned or exited, its result frame
is complete, its channel closed, a task was submitted or cancelled, ``tick(now)``, ``close``),
actions come out (start or stop the jail, spawn n children, send a task, kill or
release a child, deliver an outcome). No sockets, no signals, no clock: the shell
(``sandbox.host.pools``) passes ``now`` and does the I/O. The rules, in one place:

Children (states: STARTING, IDLE, BUSY, DYING, FROZEN, RELEASED)
  1. While the jail is up the pool keeps ``size`` children serving (STARTING, IDLE, BUSY or
     DYING) or on their way (spawn asked, not yet reported): after every event it asks for
     the difference. A FROZEN child frozen while fewer than half the pool's children are idle
     does not count (``spawn_ahead``): under a steady stream its replacement is on its way at
     once, so a task never waits for a child's set-up; when tasks come spaced, the fork waits
     for the release and stays off the result's way back.
  1r. Readiness: in a pool whose children run a worker program of their own (``ready_timeout_s``
     set: the pyodide runtime's Node.js, which takes seconds to load), a spawned child is
     STARTING until its ready frame is read, then IDLE. One that exits, closes its channel or
     sends anything else first, or is not ready within ``ready_timeout_s``, is released and
     replaced; ``start_failures`` of those in a row count as the jail failing (rule 11, so
     its restarts back off) and name the reason.
  2. A spawned child is IDLE (in a pool of rule 1r: once ready). Idle children are handed out
     oldest first, one task each: a task without a reuse key takes a fresh child; a task with
     one takes an idle child bound to its key, else a fresh one. When a task can take no
     child while idle children bound to other keys wait, the one idle longest is released to
     make room for a fresh one (unless fresh ones are already on their way or starting).
  3. A BUSY child's task ends when its result frame is complete (the envelope is delivered as
     it came), its deadline passes (``timeout``), it is cancelled (``crashed``, "cancelled
     while running"), or its frame is over the envelope limit (``output_limit``); the last
     three kill it. The deadline is the task's timeout plus ``kill_grace_s``: a child that
     interrupts its own task at the timeout (a pyodide worker) answers ``timeout`` itself and
     stays whole for the pool to release; the grace is for one whose snippet did not listen
     (a swallowed interrupt, a sleep), which is then killed from outside.
  4. A BUSY child whose channel closes without a result is DYING: the zygote's exit report
     says why (a seccomp kill, a crash, the cgroup's OOM killer, a kill from outside, or an
     exit code or signal the runtime gives a meaning to: ``exit_reasons``,
     ``signal_reasons``). A child's channel closes as it dies, so only one still alive
     ``exit_report_s`` later closed it itself: that one is killed then, and its report
     blames the snippet; ``exit_report_s`` after that kill without a report, it vanished.
     A BUSY child that exits before its channel closes is classified the same way at once.
  5. A child whose task is over is FROZEN (it stopped itself with SIGSTOP right after
     writing its result: nothing of it runs any more, and no signal is on the result's way)
     and released ``recycle_delay_s`` later, so its teardown stays off the result's way
     back; at once when a task waits, no child is idle, ``size`` children are frozen
     already, or the delay is 0.
  5h. Refill priority (``hurry``): the jail's zygote forks at a background priority, so a
     refill yields to the tasks; but on a loaded machine a starved fork can leave the pool
     without an idle child, and the next task then waits for it. While a spawn is on its way
     and a task waits or fewer than half of ``size`` fresh children are idle, the pool asks
     for its refills at the tasks' priority (``Hurry(True)``), and for the background again
     (``Hurry(False)``) once not; said only when it changes. A new jail starts at the
     background priority.
  5w. Worker mode: a task may name a reuse key (its lane, its tenant). The child that runs it
     is bound to that key for life. After ``ok`` or ``error``, unless it asked to retire, a
     bound child that has run fewer than ``worker_tasks`` tasks and is younger than
     ``worker_age_s`` (counted from when it became idle first) is IDLE again, for tasks of
     that key only; otherwise it is released as in rule 5. An idle bound child past its age
     is released.
  6. Releasing a child kills it and closes its channel (RELEASED); the record stays until the
     zygote reports the exit, so a pid is never mistaken for its successor. A child that
     exits while IDLE or FROZEN is released and replaced (while STARTING: rule 1r).

Tasks
  7. A submitted task takes an idle child at once or waits, in FIFO order, at most
     ``acquire_timeout_s``; then it is ``rejected`` with the reason nothing ran.
  8. Cancelling a waiting task answers it ``rejected`` ("cancelled before it ran").
  9. Every task gets exactly one ``Deliver``; a cancel, a deadline or a jail death after it
     changes nothing.

Sessions (one process of the pool, its interpreter state kept from call to call)
  13. Opening a session takes a fresh idle child, as a task would (rule 2 and 7: it waits
      for one at most ``acquire_timeout_s``), and sends it nothing: the child is held for
      the session from then on, and no longer counts among the pool's ``size`` (rule 1
      replaces it at once, so the next task or session finds a child ready). At most
      ``max_sessions`` are open (or opening) at once; an id that is open already is
      attached to, not opened again.
  14. A call of a session goes to its child alone, one call at a time (a second call while
      one runs is ``rejected``); whatever the child answers (any status) leaves the session
      open. A call to an id that is not open is ``rejected``; to one that ended, it is
      ``session_lost`` with why it ended (kept for the last ``ended_kept`` ids), never a
      new empty session.
  15. At a call's deadline its child is interrupted (``Interrupt``: the runtime ends the
      call with ``timeout`` and keeps its state); a child that has not answered
      ``interrupt_grace_s`` later is released, the call is ``session_lost``. In a runtime
      that cannot be interrupted (``interruptible`` False) the child is released at the
      deadline, the call ``session_lost``.
  16. A session ends when it is closed, idle for ``idle_s`` since its last call ended, older
      than ``life_s`` once no call runs, or its child dies, is killed or cancelled, or the
      jail goes down (a call running then is answered ``session_lost``, or with the
      status that killed it: ``violation``, ``memory_limit``). Its child is released and
      ``SessionEnded`` says why.

The jail (states: DOWN, STARTING, UP, CLOSED)
  10. ``start`` asks for the jail; it must say ready within ``start_timeout_s``.
  11. When the jail goes down (or fails to start), every task on its children ends ``crashed``
      naming the reason, its children are forgotten, and it is started again after a backoff
      (0.1 s up to 5 s; reset once it has stayed up for ``stable_s``). Waiting tasks keep
      waiting, within their own deadlines.
  12. ``close`` answers every waiting task ``rejected`` and every running one ``crashed``,
      releases every child and stops the jail; later submits are ``rejected``.
"""

from __future__ import annotations

import enum
import os
import signal
from collections import OrderedDict, deque
from collections.abc import Hashable
from dataclasses import dataclass, field

from runtimes import outcome
from runtimes.outcome import Status


class ChildState(enum.Enum):
    STARTING = "starting"  # spawned; its worker program has not said ready yet (rule 1r)
    IDLE = "idle"  # set up, waiting for a task
    BUSY = "busy"  # its task frame is sent; its result is not in yet
    DYING = "dying"  # its channel closed without a result; waiting for the exit report
    FROZEN = "frozen"  # its task is over; stopped, to be released a little later
    RELEASED = "released"  # killed and its channel closed; waiting only for the exit report


class JailState(enum.Enum):
    DOWN = "down"
    STARTING = "starting"
    UP = "up"
    CLOSED = "closed"


# -- actions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StartJail:
    pass


@dataclass(frozen=True)
class StopJail:
    pass


@dataclass(frozen=True)
class Spawn:
    count: int


@dataclass(frozen=True)
class SendTask:
    pid: int
    key: Hashable
    reusable: bool = False  # the child may get more tasks of its key after this one
    session: Hashable | None = None  # a session's call (rule 14): its state is kept


@dataclass(frozen=True)
class Interrupt:
    """Ask the child to end its running call (SIGINT), keeping the process (rule 15)."""

    pid: int


@dataclass(frozen=True)
class SessionEnded:
    """A session is over (rule 16): its child is released or gone."""

    session: Hashable
    reason: str


@dataclass(frozen=True)
class Kill:
    """SIGKILL the child and keep its channel: its exit report is still wanted."""

    pid: int


@dataclass(frozen=True)
class Release:
    """SIGKILL the child, then unregister and close its channel and pidfd."""

    pid: int


@dataclass(frozen=True)
class Deliver:
    """A task's one outcome. ``pid`` is the child that ran it (None if none did); ``made``:
    the pool decided it (a timeout, a crash, a cancel), so the child's result envelope did
    not come and the shell may attach what the child printed up to then."""

    key: Hashable
    envelope: bytes
    status: Status
    pid: int | None = None
    made: bool = False


@dataclass(frozen=True)
class Hurry:
    """Rule 5h: the jail's refills at the tasks' priority (True) or the background (False)."""

    on: bool


Action = (StartJail | StopJail | Spawn | SendTask | Kill | Release | Deliver | Interrupt
          | SessionEnded | Hurry)


@dataclass(frozen=True)
class PoolRules:
    size: int = 4
    acquire_timeout_s: float = 30.0
    start_timeout_s: float = 10.0
    recycle_delay_s: float = 0.003
    spawn_ahead: bool = True  # a frozen child's replacement is spawned at once (rule 1)
    exit_report_s: float = 2.0
    worker_tasks: int = 100  # worker mode: tasks one bound child may run
    worker_age_s: float = 60.0  # worker mode: how long a bound child may serve
    restart_backoff_s: tuple[float, ...] = (0.1, 0.5, 1.0, 2.0, 5.0)
    stable_s: float = 30.0  # a jail up this long resets the restart backoff
    ready_timeout_s: float = 0.0  # rule 1r: children say ready first (0: they are idle at once)
    start_failures: int = 3  # rule 1r: children in a row that fail to get ready fail the jail
    kill_grace_s: float = 0.0  # rule 3: how long past its timeout a task's child is killed
    hurry: bool = False  # rule 5h: say when refills should run at the tasks' priority
    max_sessions: int = 64  # rule 13: sessions open (or opening) at once
    interrupt_grace_s: float = 1.0  # rule 15: how long an interrupted call may take to end
    interruptible: bool = True  # rule 15: False: a call past its deadline ends its session
    ended_kept: int = 4096  # rule 14: ended session ids remembered, with why
    # rule 4: what a runtime's children mean by an exit code or a killing signal
    exit_reasons: tuple[tuple[int, str], ...] = ()
    signal_reasons: tuple[tuple[int, str], ...] = ()


def classify(wait_status: int | None, *, oom_killed: bool, killed_for: str | None,
             rules: PoolRules | None = None) -> tuple[Status, str]:
    """What a child's death means when it left no result. ``killed_for`` is why this pool
    killed it, if it did; ``rules`` may give the runtime's own exit codes and signals a
    meaning."""
    if wait_status is None:
        return Status.CRASHED, "the sandboxed process vanished without a result (no exit report)"
    if os.WIFSIGNALED(wait_status):
        sig = os.WTERMSIG(wait_status)
        if sig == signal.SIGSYS:
            return Status.VIOLATION, "killed for a forbidden operation (seccomp: SIGSYS)"
        if sig == signal.SIGXCPU:
            return Status.TIMEOUT, "killed for exceeding its CPU time limit"
        if sig == signal.SIGKILL and oom_killed:
            return Status.MEMORY_LIMIT, "killed by the kernel for exceeding the jail's memory cap"
        if sig == signal.SIGKILL and killed_for:
            return Status.CRASHED, f"{killed_for}; the runner killed it"
        meaning = dict(rules.signal_reasons).get(sig) if rules else None
        if meaning:
            return Status.CRASHED, meaning
        return Status.CRASHED, f"killed by {signal.Signals(sig).name} without a result"
    code = os.WEXITSTATUS(wait_status)
    meaning = dict(rules.exit_reasons).get(code) if rules else None
    if meaning:
        return Status.CRASHED, meaning
    return Status.CRASHED, f"the sandboxed process exited with code {code} without a result"


@dataclass
class Child:
    pid: int
    state: ChildState
    key: Hashable | None = None  # the task it runs (BUSY, DYING)
    until: float = 0.0  # STARTING: ready deadline; BUSY: task deadline; DYING: report wait;
    # FROZEN: release time; IDLE and bound: the end of its age
    timeout_s: float = 0.0
    tasks_run: int = 0
    killed_for: str | None = None
    bound: Hashable | None = None  # worker mode: the reuse key it serves
    born: float = 0.0
    # not counted among the pool's children (rule 1): frozen with its replacement already
    # asked for, or held by a session (rule 13)
    ahead: bool = False
    session: Hashable | None = None  # the session it holds (rule 13)
    interrupted: bool = False  # rule 15: its call's interrupt is sent


@dataclass
class _Session:
    idle_s: float
    life_s: float
    born: float
    pid: int | None = None  # None while it waits for a child
    used: float = 0.0  # when its last call ended

    def until(self) -> float:
        return min(self.used + self.idle_s, self.born + self.life_s)


@dataclass
class _Waiting:
    key: Hashable
    timeout_s: float
    until: float
    reuse: Hashable | None = None
    opens: Hashable | None = None  # rule 13: it opens this session rather than run a task


@dataclass
class PoolCore:
    runtime: str
    rules: PoolRules = field(default_factory=PoolRules)

    def __post_init__(self) -> None:
        self.jail = JailState.DOWN
        self.jail_until = 0.0  # STARTING: ready deadline; DOWN: restart time
        self.jail_reason = ""  # why the jail is down, for messages
        self._failures = 0
        self._up_since = 0.0
        self.children: dict[int, Child] = {}
        self._idle: deque[int] = deque()  # fresh idle children, oldest first
        self._warm: dict[Hashable, deque[int]] = {}  # idle bound children, per reuse key
        self.pending = 0  # spawns asked for, not yet reported
        self._waiting: deque[_Waiting] = deque()
        self._running: dict[Hashable, int] = {}  # task key -> pid (BUSY or DYING)
        # children STARTING, IDLE, BUSY or DYING (and FROZEN, without spawn_ahead)
        self._occupying = 0
        self._starting = 0  # children STARTING
        self._start_failures = 0  # rule 1r: in a row, in this jail
        self.start_failure = ""  # rule 1r: why the last child failed to get ready
        self.sessions: dict[Hashable, _Session] = {}
        self.ended: OrderedDict[Hashable, str] = OrderedDict()  # rule 14: id -> why it ended
        self.hurrying = False  # rule 5h: what was last said

    # -- the jail ----------------------------------------------------------------------------

    def start(self, now: float) -> list[Action]:
        if self.jail is not JailState.DOWN:
            return []
        self.jail, self.jail_until = JailState.STARTING, now + self.rules.start_timeout_s
        return [StartJail()]

    def jail_ready(self, now: float) -> list[Action]:
        if self.jail is not JailState.STARTING:
            return []
        self.jail, self._up_since, self.jail_reason = JailState.UP, now, ""
        return self._settle(now)

    def jail_lost(self, reason: str, now: float) -> list[Action]:
        """The jail died, failed to start or did not say ready in time."""
        if self.jail in (JailState.DOWN, JailState.CLOSED):
            return []
        if self.jail is JailState.UP and now - self._up_since >= self.rules.stable_s:
            self._failures = 0
        out: list[Action] = []
        for child in list(self.children.values()):
            if child.key is not None:
                status = Status.SESSION_LOST if child.session is not None else Status.CRASHED
                out.append(self._deliver_made(child.key, status,
                                              f"the {self.runtime} jail died while running the "
                                              f"task: {reason}", child.pid))
            if child.state is not ChildState.RELEASED:
                out.append(Release(child.pid))
        out += self._end_sessions(f"the {self.runtime} jail died: {reason}")
        self.children.clear()
        self._idle.clear()
        self._warm.clear()
        self._running.clear()
        self._occupying = self.pending = self._starting = self._start_failures = 0
        self.hurrying = False  # rule 5h: the next jail's zygote starts at the background
        backoff = self.rules.restart_backoff_s
        self.jail, self.jail_reason = JailState.DOWN, reason
        self.jail_until = now + backoff[min(self._failures, len(backoff) - 1)]
        self._failures += 1
        return out + [StopJail()]

    # -- children ----------------------------------------------------------------------------

    def spawned(self, pid: int, now: float) -> list[Action]:
        """A new child (the shell has refused a pid that is already known)."""
        if self.jail is not JailState.UP:
            return [Release(pid)]
        self.pending = max(0, self.pending - 1)
        self._occupying += 1
        if self.rules.ready_timeout_s > 0:
            self.children[pid] = Child(pid, ChildState.STARTING, until=now + self.rules.ready_timeout_s)
            self._starting += 1
            return self._settle(now)
        self.children[pid] = Child(pid, ChildState.IDLE, born=now)
        self._idle.append(pid)
        return self._settle(now)

    def child_ready(self, pid: int, now: float) -> list[Action]:
        """``pid``'s ready frame came (rule 1r)."""
        child = self.children.get(pid)
        if child is None or child.state is not ChildState.STARTING:
            return []
        self._starting -= 1
        self._start_failures = 0
        child.state, child.until, child.born = ChildState.IDLE, 0.0, now
        self._idle.append(pid)
        return self._settle(now)

    def not_ready(self, pid: int, reason: str, now: float) -> list[Action]:
        """``pid`` sent something else than its ready frame first (rule 1r)."""
        child = self.children.get(pid)
        if child is None or child.state is not ChildState.STARTING:
            return []
        return self._start_failed(child, reason, now)

    def wants_cause(self, pid: int) -> bool:
        """Whether an exit report of ``pid`` decides a task's outcome (the shell then reads
        the cgroup's OOM count, which stays off the hot path otherwise)."""
        child = self.children.get(pid)
        return child is not None and child.state in (ChildState.BUSY, ChildState.DYING)

    def exited(self, pid: int, wait_status: int, oom_killed: bool, now: float) -> list[Action]:
        child = self.children.get(pid)
        if child is None:
            return []
        out: list[Action] = []
        if child.state in (ChildState.BUSY, ChildState.DYING):
            status, message = classify(wait_status, oom_killed=oom_killed,
                                       killed_for=child.killed_for, rules=self.rules)
            if child.session is not None:
                out += self._lose(child, f"its process ended: {message}",
                                  Status.SESSION_LOST if status is Status.CRASHED else status)
            else:
                out.append(self._end(child, outcome.encode(status, message), status))
            out.append(self._release(child))
        elif child.session is not None and child.state is ChildState.IDLE:
            _, message = classify(wait_status, oom_killed=oom_killed, killed_for=None,
                                  rules=self.rules)
            out += self._lose(child, f"its process ended: {message}")
            out.append(self._release(child))
        elif child.state is ChildState.STARTING:
            _, message = classify(wait_status, oom_killed=oom_killed, killed_for=None,
                                  rules=self.rules)
            out += self._start_failed(child, f"it ended before it was ready: {message}", now)
            if self.jail is not JailState.UP:  # that failure failed the jail: all forgotten
                return out
        elif child.state in (ChildState.IDLE, ChildState.FROZEN):
            out.append(self._release(child))
        del self.children[pid]  # reaped: the zygote reports each child once
        return out + self._settle(now)

    def result(self, pid: int, envelope: bytes, status: Status | None, now: float,
               retire: bool = False) -> list[Action]:
        """``pid``'s result frame is complete; ``status`` is what the envelope says (None if
        it does not read as an envelope); ``retire``: the child asks not to be reused."""
        child = self.children.get(pid)
        if child is None or child.state is not ChildState.BUSY:
            return []
        if status is None:
            return self.misbehaved(pid, "the sandboxed process sent a malformed result", now)
        out: list[Action] = [self._end(child, envelope, status, made=False)]
        child.tasks_run += 1
        session = self.sessions.get(child.session) if child.session is not None else None
        if session is not None:  # rule 14: whatever it answered, the session stays
            child.state, child.interrupted, session.used = ChildState.IDLE, False, now
            child.until = session.until()
            if now >= session.born + session.life_s:
                out += self._lose(child, f"it reached its lifetime of {session.life_s:g} s")
                out.append(self._release(child))
            return out + self._settle(now)
        if child.bound is not None and not retire and status in (Status.OK, Status.ERROR) and (
                child.tasks_run < self.rules.worker_tasks
                and now - child.born < self.rules.worker_age_s):
            child.state, child.until = ChildState.IDLE, child.born + self.rules.worker_age_s
            self._warm.setdefault(child.bound, deque()).append(pid)
        elif self.rules.recycle_delay_s <= 0 or self._waiting or not self._idle or (
                self._frozen() >= self.rules.size):
            out.append(self._release(child))
        else:
            child.state, child.until = ChildState.FROZEN, now + self.rules.recycle_delay_s
            if self.rules.spawn_ahead and len(self._idle) < max(1, self.rules.size // 2):
                child.ahead = True
                self._occupying -= 1  # rule 1: its replacement starts now
        return out + self._settle(now)

    def misbehaved(self, pid: int, why: str, now: float) -> list[Action]:
        """``pid`` broke its channel's protocol (a malformed result, a call its task does not
        offer): its task ends ``crashed`` saying ``why``, and its process goes."""
        child = self.children.get(pid)
        if child is None or child.state is not ChildState.BUSY:
            return []
        if child.session is not None:
            return self._lose(child, why) + [self._release(child)] + self._settle(now)
        bad: list[Action] = [self._end(child, outcome.encode(Status.CRASHED, why), Status.CRASHED)]
        return bad + [self._release(child)] + self._settle(now)

    def oversized(self, pid: int, size: int, limit: int, now: float) -> list[Action]:
        child = self.children.get(pid)
        if child is None or child.state is not ChildState.BUSY:
            return []
        status = Status.OUTPUT_LIMIT
        message = f"result of {size} bytes exceeds the limit of {limit} bytes"
        if child.session is not None:
            out = self._lose(child, f"its process was killed: {message}", status)
        else:
            out = [self._end(child, outcome.encode(status, message), status)]
        return out + [self._release(child)] + self._settle(now)

    def channel_lost(self, pid: int, now: float) -> list[Action]:
        """``pid``'s channel closed (or failed) without a result frame."""
        child = self.children.get(pid)
        if child is None:
            return []
        if child.state is ChildState.BUSY:
            # dying (killed from outside, crashed) or alive: its exit report will say which
            child.state, child.until = ChildState.DYING, now + self.rules.exit_report_s
            return []
        if child.state is ChildState.IDLE:
            lost = (self._lose(child, "its process closed its channel")
                    if child.session is not None else [])
            return lost + [self._release(child)] + self._settle(now)
        if child.state is ChildState.STARTING:
            return self._start_failed(child, "it closed its channel before it was ready", now)
        return []

    # -- sessions ----------------------------------------------------------------------------

    def open_session(self, key: Hashable, session: Hashable, idle_s: float, life_s: float,
                     now: float) -> list[Action]:
        """Rule 13: hold a fresh child for ``session``; ``key``'s Deliver says it is ready
        (``ok``) or why not (``rejected``)."""
        if self.jail is JailState.CLOSED:
            return [self._deliver_made(key, Status.REJECTED, "the sandbox is closed")]
        known = self.sessions.get(session)
        if known is not None:
            if known.pid is None:
                return [self._deliver_made(key, Status.REJECTED,
                                           f"session {session!r} is still being opened")]
            return [self._deliver_made(key, Status.OK, f"session {session!r} is open")]
        if len(self.sessions) >= self.rules.max_sessions:
            return [self._deliver_made(key, Status.REJECTED, (
                f"{len(self.sessions)} {self.runtime} sessions are open, the most allowed "
                f"(max_sessions); close one first"))]
        self.ended.pop(session, None)  # opened again by name, explicitly: a new session
        self.sessions[session] = _Session(idle_s, life_s, now, used=now)
        self._waiting.append(_Waiting(key, 0.0, now + self.rules.acquire_timeout_s,
                                      opens=session))
        out = self.start(now) if self.jail is JailState.DOWN and not self.jail_until else []
        return out + self._settle(now)

    def call(self, key: Hashable, session: Hashable, timeout_s: float, now: float) -> list[Action]:
        """Rule 14: a call of an open session, on its child."""
        held = self.sessions.get(session)
        if held is None or held.pid is None:
            if session in self.ended:
                return [self._deliver_made(key, Status.SESSION_LOST,
                                           f"session {session!r} ended: {self.ended[session]}")]
            why = "is still being opened" if held is not None else "is not open (open it first)"
            return [self._deliver_made(key, Status.REJECTED, f"session {session!r} {why}")]
        child = self.children[held.pid]
        if child.state is not ChildState.IDLE:
            return [self._deliver_made(key, Status.REJECTED,
                                       f"session {session!r} is running another call")]
        child.state, child.key, child.killed_for = ChildState.BUSY, key, None
        child.timeout_s, child.until, child.interrupted = timeout_s, now + timeout_s, False
        self._running[key] = child.pid
        return [SendTask(child.pid, key, True, session)]

    def close_session(self, key: Hashable, session: Hashable, now: float) -> list[Action]:
        """Rule 16: end ``session`` now (a call running in it is ``session_lost``)."""
        held = self.sessions.get(session)
        if held is None:
            if session in self.ended:
                return [self._deliver_made(key, Status.OK,
                                           f"session {session!r} ended already: "
                                           f"{self.ended[session]}")]
            return [self._deliver_made(key, Status.REJECTED, f"session {session!r} is not open")]
        out: list[Action] = []
        if held.pid is None:  # still waiting for a child
            for waiting in self._waiting:
                if waiting.opens == session:
                    self._waiting.remove(waiting)
                    out.append(self._deliver_made(waiting.key, Status.REJECTED,
                                                  f"session {session!r} was closed before it opened"))
                    break
            out += self._forget(session, "it was closed")
        else:
            child = self.children[held.pid]
            out += self._lose(child, "it was closed") + [self._release(child)]
        out.append(self._deliver_made(key, Status.OK, f"session {session!r} closed"))
        return out + self._settle(now)

    def end_sessions(self, why: str, now: float) -> list[Action]:
        """Rule 16 for all: every session ends now (its front forgot them all: a runner's
        broker connection ended)."""
        out: list[Action] = []
        for child in list(self.children.values()):
            if child.session is not None and child.state is not ChildState.RELEASED:
                out += self._lose(child, why) + [self._release(child)]
        return out + self._end_sessions(why) + self._settle(now)

    def session_count(self) -> int:
        return len(self.sessions)

    # -- tasks -------------------------------------------------------------------------------

    def submit(self, key: Hashable, timeout_s: float, now: float,
               reuse: Hashable | None = None) -> list[Action]:
        """A task; ``reuse`` names the key of the workers it may share (worker mode), None
        for a fresh process."""
        if self.jail is JailState.CLOSED:
            return [self._deliver_made(key, Status.REJECTED, "the sandbox is closed")]
        self._waiting.append(_Waiting(key, timeout_s, now + self.rules.acquire_timeout_s, reuse))
        out = self.start(now) if self.jail is JailState.DOWN and not self.jail_until else []
        return out + self._settle(now)

    def cancel(self, key: Hashable, now: float) -> list[Action]:
        for waiting in self._waiting:
            if waiting.key == key:
                self._waiting.remove(waiting)
                if waiting.opens is not None:
                    self.sessions.pop(waiting.opens, None)
                return [self._deliver_made(key, Status.REJECTED, "cancelled before it ran")]
        pid = self._running.get(key)
        if pid is None:
            return []
        child = self.children[pid]  # BUSY, or DYING: its cause is still unknown, cancel wins
        if child.session is not None:
            out = self._lose(child, "its call was cancelled while running; its process was killed")
        else:
            out = [self._end(child, outcome.encode(Status.CRASHED, "cancelled while running"),
                             Status.CRASHED)]
        return out + [self._release(child)] + self._settle(now)

    def tick(self, now: float) -> list[Action]:
        out: list[Action] = []
        if self.jail is JailState.STARTING and now >= self.jail_until:
            out += self.jail_lost(f"no ready message within {self.rules.start_timeout_s:g} s", now)
        elif self.jail is JailState.DOWN and self.jail_until and now >= self.jail_until:
            out += self.start(now)
        for child in list(self.children.values()):
            if child.until > now:
                continue
            if child.session is not None and child.state in (ChildState.BUSY, ChildState.IDLE):
                out += self._session_due(child, now)
            elif child.state is ChildState.BUSY:
                status = Status.TIMEOUT
                message = f"exceeded the wall-clock timeout of {child.timeout_s:g} s"
                if self.rules.kill_grace_s > 0:
                    message += (f" (killed from outside {self.rules.kill_grace_s:g} s later: "
                                "the interrupt did not end it)")
                out.append(self._end(child, outcome.encode(status, message), status))
                out.append(self._release(child))
            elif child.state is ChildState.STARTING:
                out += self._start_failed(
                    child, f"it was not ready within {self.rules.ready_timeout_s:g} s", now)
                if self.jail is not JailState.UP:
                    break
            elif child.state is ChildState.DYING and child.killed_for is None:
                # no report: it is alive, and closed its channel itself
                child.killed_for = "the snippet closed its result channel without a result"
                child.until = now + self.rules.exit_report_s
                out.append(Kill(child.pid))
            elif child.state is ChildState.DYING:
                status, message = classify(None, oom_killed=False, killed_for=child.killed_for)
                if child.session is not None:
                    out += self._lose(child, f"its process ended: {message}", Status.SESSION_LOST)
                else:
                    out.append(self._end(child, outcome.encode(status, message), status))
                out.append(self._release(child))
            elif child.state is ChildState.FROZEN:
                out.append(self._release(child))
            elif child.state is ChildState.IDLE and child.bound is not None:
                out.append(self._release(child))  # a worker past its age
        while self._waiting and self._waiting[0].until <= now:
            waiting = self._waiting.popleft()
            if waiting.opens is not None:
                self.sessions.pop(waiting.opens, None)  # never opened: nothing to remember
            out.append(self._deliver_made(waiting.key, Status.REJECTED, self._why_no_child()))
        return out + self._settle(now)

    def close(self, now: float) -> list[Action]:
        if self.jail is JailState.CLOSED:
            return []
        out: list[Action] = []
        while self._waiting:
            out.append(self._deliver_made(self._waiting.popleft().key, Status.REJECTED,
                                          "the sandbox was closed before the task ran"))
        for child in list(self.children.values()):
            if child.key is not None:
                status = Status.SESSION_LOST if child.session is not None else Status.CRASHED
                out.append(self._end(child, outcome.encode(
                    status, "the sandbox was closed while the task ran"), status))
            if child.state is not ChildState.RELEASED:
                out.append(self._release(child))
        out += self._end_sessions("the sandbox was closed")
        self.children.clear()
        self._idle.clear()
        was = self.jail
        self.jail = JailState.CLOSED
        return out + ([StopJail()] if was in (JailState.STARTING, JailState.UP) else [])

    # -- introspection -----------------------------------------------------------------------

    def wake_at(self) -> float | None:
        """When ``tick`` has something to do, or None."""
        times = [c.until for c in self.children.values()
                 if c.state in (ChildState.STARTING, ChildState.BUSY, ChildState.DYING,
                                ChildState.FROZEN)
                 or (c.state is ChildState.IDLE and (c.bound is not None or c.session is not None))]
        if self._waiting:
            times.append(self._waiting[0].until)
        if self.jail is JailState.STARTING or (self.jail is JailState.DOWN and self.jail_until):
            times.append(self.jail_until)
        return min(times) if times else None

    def idle_count(self) -> int:
        return len(self._idle) + sum(len(q) for q in self._warm.values())

    def counts(self) -> dict[str, int]:
        out = {state.value: 0 for state in ChildState}
        for child in self.children.values():
            out[child.state.value] += 1
        out["pending"] = self.pending
        out["waiting"] = len(self._waiting)
        return out

    # -- the steps every rule shares ---------------------------------------------------------

    def _settle(self, now: float) -> list[Action]:
        """Hand idle children to waiting tasks (rule 2, 7), release frozen children a task
        is waiting for (5), and ask for what the pool lacks (1)."""
        out: list[Action] = []
        if self._waiting and (self._idle or self._warm):
            unserved: deque[_Waiting] = deque()
            while self._waiting:
                waiting = self._waiting.popleft()
                pid = self._take(waiting.reuse)
                if pid is None:
                    unserved.append(waiting)
                    continue
                child = self.children[pid]
                if waiting.opens is not None:
                    out.append(self._hold(child, waiting, now))
                    continue
                child.state, child.key, child.killed_for = ChildState.BUSY, waiting.key, None
                child.timeout_s = waiting.timeout_s
                child.until = now + waiting.timeout_s + self.rules.kill_grace_s
                child.bound = waiting.reuse
                self._running[waiting.key] = pid
                out.append(SendTask(pid, waiting.key, waiting.reuse is not None))
            self._waiting = unserved
        if self._waiting:
            for child in list(self.children.values()):
                if child.state is ChildState.FROZEN:
                    out.append(self._release(child))
            # workers of other keys give way, oldest idle first, to the fresh children a
            # waiting task needs (each release is refilled with a fresh child below)
            wanting = (sum(1 for w in self._waiting if not self._warm.get(w.reuse))
                       - self.pending - self._starting)
            for queue in list(self._warm.values()):
                while queue and wanting > 0:
                    out.append(self._release(self.children[queue[0]]))
                    wanting -= 1
        if self.jail is JailState.UP:
            want = self.rules.size - self._occupying - self.pending
            if want > 0:
                self.pending += want
                out.append(Spawn(want))
            if self.rules.hurry:
                hurry = bool(self.pending or self._starting) and (
                    bool(self._waiting) or len(self._idle) < max(1, self.rules.size // 2))
                if hurry is not self.hurrying:
                    self.hurrying = hurry
                    out.append(Hurry(hurry))
        return out

    def _frozen(self) -> int:
        return sum(1 for c in self.children.values() if c.state is ChildState.FROZEN)

    def _take(self, reuse: Hashable | None) -> int | None:
        """The child a task of this reuse key takes now, if any (rule 2)."""
        if reuse is not None:
            queue = self._warm.get(reuse)
            if queue:
                pid = queue.popleft()
                if not queue:
                    del self._warm[reuse]
                return pid
        return self._idle.popleft() if self._idle else None

    def _end(self, child: Child, envelope: bytes, status: Status, made: bool = True) -> Deliver:
        """A task's one outcome; the child no longer runs it."""
        key = child.key
        assert key is not None
        child.key = None
        self._running.pop(key, None)
        return Deliver(key, envelope, status, child.pid, made)

    def _start_failed(self, child: Child, reason: str, now: float) -> list[Action]:
        """Rule 1r: a child that did not get ready is released (and replaced), and enough
        of them in a row fail the jail."""
        self._start_failures += 1
        self.start_failure = f"a {self.runtime} worker did not start: {reason}"
        out: list[Action] = [self._release(child)]
        if self._start_failures >= self.rules.start_failures:
            return out + self.jail_lost(
                f"{self._start_failures} workers in a row did not start; the last: {reason}", now)
        return out + self._settle(now)

    def _release(self, child: Child) -> Release:
        if child.state is ChildState.STARTING:
            self._starting -= 1
        if child.state is ChildState.IDLE and not child.ahead:  # (a session's is in no queue)
            if child.bound is None:
                self._idle.remove(child.pid)
            else:
                queue = self._warm[child.bound]
                queue.remove(child.pid)
                if not queue:
                    del self._warm[child.bound]
        if child.state is not ChildState.RELEASED and not child.ahead:
            self._occupying -= 1
        child.state, child.until = ChildState.RELEASED, 0.0
        return Release(child.pid)

    def _deliver_made(self, key: Hashable, status: Status, message: str, pid: int | None = None) -> Deliver:
        return Deliver(key, outcome.encode(status, message), status, pid, made=True)

    def _why_no_child(self) -> str:
        waited = f"{self.rules.acquire_timeout_s:g} s"
        if self.jail is not JailState.UP:
            why = f": {self.jail_reason}" if self.jail_reason else ""
            return f"the {self.runtime} jail was not running for {waited}{why}"
        if self._start_failures:
            return f"no idle {self.runtime} sandbox within {waited}: {self.start_failure}"
        if self._starting:
            return (f"no idle {self.runtime} sandbox within {waited} (pool of {self.rules.size}: "
                    f"{self._starting} still starting, the others busy)")
        return (f"no idle {self.runtime} sandbox within {waited} "
                f"(pool of {self.rules.size}, all busy)")

    # -- the steps of sessions ---------------------------------------------------------------

    def _hold(self, child: Child, waiting: _Waiting, now: float) -> Deliver:
        """Rule 13: ``child`` (fresh, idle, already taken off the idle queue) is the
        session's from now on."""
        session = waiting.opens
        held = self.sessions[session]
        held.pid, held.used = child.pid, now
        child.session, child.ahead, child.until = session, True, held.until()
        self._occupying -= 1  # held, not the pool's: rule 1 replaces it
        return self._deliver_made(waiting.key, Status.OK, f"session {session!r} is open")

    def _session_due(self, child: Child, now: float) -> list[Action]:
        """Rules 15 and 16 at a session child's time: its call's deadline, its interrupt's
        grace, its idleness or its lifetime."""
        held = self.sessions[child.session]
        if child.state is ChildState.BUSY and not self.rules.interruptible:
            child.killed_for = "its call passed its timeout"
            return self._lose(child, (
                f"its call passed its timeout of {child.timeout_s:g} s, and a {self.runtime} "
                "call cannot be interrupted: its process was killed")) + [self._release(child)]
        if child.state is ChildState.BUSY and not child.interrupted:
            child.interrupted, child.until = True, now + self.rules.interrupt_grace_s
            return [Interrupt(child.pid)]
        if child.state is ChildState.BUSY:
            child.killed_for = "its call ignored the interrupt at its timeout"
            return self._lose(child, (
                f"its call ignored the interrupt at its timeout of {child.timeout_s:g} s "
                f"(killed {self.rules.interrupt_grace_s:g} s later)")) + [self._release(child)]
        if now >= held.born + held.life_s:
            why = f"it reached its lifetime of {held.life_s:g} s"
        else:
            why = f"it was idle for {held.idle_s:g} s"
        return self._lose(child, why) + [self._release(child)]

    def _lose(self, child: Child, why: str, status: Status = Status.SESSION_LOST) -> list[Action]:
        """End ``child``'s session for ``why``; a call running in it is answered ``status``
        (the session is lost with it)."""
        session = child.session
        out: list[Action] = []
        if child.key is not None:
            if status is Status.SESSION_LOST:
                message = f"session {session!r} is lost: {why}"
            else:
                message = f"{why.removeprefix('its process ended: ')}; session {session!r} is lost with it"
            out.append(self._end(child, outcome.encode(status, message), status))
        child.session = None
        return out + self._forget(session, why)

    def _forget(self, session: Hashable, why: str) -> list[Action]:
        self.sessions.pop(session, None)
        self.ended[session] = why
        while len(self.ended) > self.rules.ended_kept:
            self.ended.popitem(last=False)
        return [SessionEnded(session, why)]

    def _end_sessions(self, why: str) -> list[Action]:
        """Every session ends (the jail went down, the pool closed); their children are
        released by the caller."""
        out: list[Action] = []
        for waiting in list(self._waiting):
            if waiting.opens is not None:
                self._waiting.remove(waiting)
                out.append(self._deliver_made(waiting.key, Status.REJECTED,
                                              f"session {waiting.opens!r} could not open: {why}"))
        for session in list(self.sessions):
            out += self._forget(session, why)
        for child in self.children.values():
            child.session = None
        return out
