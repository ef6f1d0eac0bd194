"""The runner's session with its broker, as a pure core: heartbeats, liveness, reconnects.

It decides; ``sandbox.host.runner`` does the I/O around it and passes the clock in (``now``,
monotonic seconds) with what the socket's monitor saw. Nothing here sends, sleeps or reads a
clock.

A session is one socket to the broker: ZeroMQ connects it and, while the broker cannot be
reached, retries every second by itself; the runner's ``ready`` waits in the socket until
the connection is up. Rules (Paranoid Pirate: heartbeats both ways, liveness 3, a backoff of
1 s doubling to 32 s):

1. A session starts when the runner opens a socket (``opened``). Its clocks run only while
   the connection is up (``link_up``; an inproc connection is up at once): a session whose
   connection never comes up neither beats nor expires, it waits for the broker, so a
   runner is back as soon as the network or the broker is.
2. Any frame from the broker (``heard``) proves it alive: the liveness clock restarts.
3. On ``tick``, while up: past ``heartbeat_s * liveness`` of silence the session is over
   (``Expired``: a partition, or a broker that hangs); else, when a heartbeat is due, one is
   sent (``Beat``) and the next is due one interval later.
4. A connection that goes down after it was up (``link_down``: the broker restarted or
   reset it) ends the session at once (``Expired``): the broker forgot this runner.
5. When a session closes (``closed``) the next one opens after a wait: none when the
   broker was heard in it or the connection dropped (the next socket finds the broker when
   it is there); else the backoff for the sessions in a row that connected but never heard
   from the broker (something answers that is no broker of ours). ``tick`` ends the wait
   (``Resume``).
6. ``wake_at`` is the earliest instant at which ``tick`` has something to do, or None.
7. The tasks outlive the session (``Kept``): a runner keeps running what it was given when
   its connection is lost, and registers again with the same identity, so the broker, which
   held them (its rule 9h), asks for them (``holding``). For each task it names, the runner
   sends nothing when it still runs it (its ``done`` will come); the ``done`` it sent when
   the task finished, when it still has it (a lost connection may have lost it: the broker
   takes the first answer and drops the others); a ``crashed`` answer when it ran the task
   but no longer has the ``done`` (kept ``keep_s``, at most ``max_bytes`` in all); and
   ``missing`` when it never received it (sent on the lost connection: it never ran, so
   the broker may send it again). Received ids are remembered (the last ``max_ids``), so a
   task is named missing only when it never came. A task the runner runs that the whole
   list (every ``ready`` is answered with one) does not name, nobody waits for (the broker
   restarted, or its hold ended): the runner stops it (``Answers.stop``).

Invariants: at most one of "in a session" and "waiting to resume" holds; a session expires
at most once; a Beat is only returned in a session whose connection is up; ``Resume`` is
returned once per wait.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field

from sandbox import backoff


@dataclass(frozen=True)
class Beat:
    """Send a heartbeat now."""


@dataclass(frozen=True)
class Expired:
    """The broker is silent past its liveness, or its connection dropped: end this session."""


@dataclass(frozen=True)
class Resume:
    """The wait after the last session is over: open the next one."""


Action = Beat | Expired | Resume


class Session:
    def __init__(self, heartbeat_s: float, liveness: int) -> None:
        self.heartbeat_s = heartbeat_s
        self.liveness = liveness
        self.active = False  # in a session (a socket is open)
        self.up = False  # its connection is up
        self.heard_from = False  # the broker spoke in this session
        self.dropped = False  # its connection went down after it was up
        self.expired = False
        self.failures = 0  # sessions in a row that connected but never heard the broker
        self.resume_at: float | None = None  # waiting to open the next session
        self._last_heard = 0.0
        self._next_beat = 0.0

    @property
    def silence_limit_s(self) -> float:
        return self.heartbeat_s * self.liveness

    def opened(self, now: float, *, up: bool = False) -> None:
        """Rule 1 (``up``: a connection that is up at once, inproc)."""
        self.active, self.heard_from, self.expired, self.resume_at = True, False, False, None
        self.up = self.dropped = False
        if up:
            self.link_up(now)

    def link_up(self, now: float) -> None:
        """Rule 1: the connection's handshake completed: the clocks start."""
        if not self.active or self.up:
            return
        self.up = True
        self._last_heard, self._next_beat = now, now + self.heartbeat_s

    def link_down(self, now: float) -> Expired | None:
        """Rule 4."""
        if not self.active or not self.up or self.expired:
            return None
        self.up, self.dropped, self.expired = False, True, True
        return Expired()

    def heard(self, now: float) -> None:
        """Rule 2."""
        self.heard_from = True
        self._last_heard = now

    def tick(self, now: float) -> Action | None:
        """Rules 3 and 5: what to do at ``now``."""
        if self.resume_at is not None:
            if now >= self.resume_at:
                self.resume_at = None
                return Resume()
            return None
        if not self.active or not self.up or self.expired:
            return None
        if now - self._last_heard > self.silence_limit_s:
            self.expired = True
            return Expired()
        if now >= self._next_beat:
            self._next_beat = now + self.heartbeat_s
            return Beat()
        return None

    def closed(self, now: float, *, reconnect: bool = True) -> float:
        """Rule 5: the session is over; the wait before the next one (seconds)."""
        connected_in_vain = self.expired and not self.heard_from and not self.dropped
        self.active = self.up = False
        if connected_in_vain:
            self.failures += 1
            delay = backoff.delay_s(self.failures)
        else:
            self.failures = 0
            delay = 0.0
        self.resume_at = now + delay if reconnect else None
        return delay

    def wake_at(self) -> float | None:
        """Rule 6."""
        if self.resume_at is not None:
            return self.resume_at
        if not self.active or not self.up or self.expired:
            return None
        return min(self._next_beat, self._last_heard + self.silence_limit_s)


@dataclass(frozen=True)
class Answers:
    """What to send for a broker's ``holding`` (rule 7)."""

    resend: list[bytes]  # done frames kept from before
    lost: list[str]  # ran here, its done is gone: answer crashed
    missing: list[str]  # never received here
    stop: list[str] = field(default_factory=list)  # running here, held by nobody


class Kept:
    """The done frames a lost connection may have lost, and the ids of the tasks received."""

    def __init__(self, keep_s: float = 60.0, max_bytes: int = 64 * 1024 * 1024,
                 max_ids: int = 65536) -> None:
        self.keep_s = keep_s
        self.max_bytes = max_bytes
        self.max_ids = max_ids
        self._done: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._bytes = 0
        self._seen: set[str] = set()
        self._order: deque[str] = deque()

    def received(self, task_id: str) -> None:
        if task_id in self._seen:
            return
        self._seen.add(task_id)
        self._order.append(task_id)
        while len(self._order) > self.max_ids:
            self._seen.discard(self._order.popleft())

    def finished(self, task_id: str, frame: bytes, now: float) -> None:
        old = self._done.pop(task_id, None)
        if old is not None:
            self._bytes -= len(old[0])
        self._done[task_id] = (frame, now)
        self._bytes += len(frame)
        self.prune(now)

    def prune(self, now: float) -> None:
        """Forget the oldest frames: older than ``keep_s``, or beyond ``max_bytes``."""
        while self._done:
            task_id, (frame, at) = next(iter(self._done.items()))
            if at >= now - self.keep_s and self._bytes <= self.max_bytes:
                return
            del self._done[task_id]
            self._bytes -= len(frame)

    def holding(self, task_ids: tuple[str, ...] | list[str], running: set[str]) -> Answers:
        """Rule 7: the answers to a broker that holds ``task_ids`` (the whole list) for this
        runner, which runs ``running``."""
        answers = Answers([], [], [], sorted(running.difference(task_ids)))
        for task_id in task_ids:
            if task_id in running:
                continue
            kept = self._done.get(task_id)
            if kept is not None:
                answers.resend.append(kept[0])
            elif task_id in self._seen:
                answers.lost.append(task_id)
            else:
                answers.missing.append(task_id)
        return answers
