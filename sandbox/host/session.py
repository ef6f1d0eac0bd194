"""The runner's session with its broker, as a pure core: heartbeats, liveness, reconnects.

It decides; ``sandbox.host.runner`` does the I/O around it and passes the clock in (``now``,
monotonic seconds). Nothing here sends, sleeps or reads a clock.

Rules (Paranoid Pirate: heartbeats both ways, liveness 3, reconnect backoff 1 s -> 32 s):

1. A session starts when the runner opens a fresh socket (``opened``): the broker has been
   "heard" at that instant, and the first heartbeat is due one interval later.
2. Any frame from the broker (``heard``) proves it alive: the liveness clock restarts.
3. On ``tick``: past ``heartbeat_s * liveness`` of silence the session is over
   (``Expired``); else, when a heartbeat is due, one is sent (``Beat``) and the next is due
   one interval later. An expired session beats no more.
4. When a session closes (``closed``): a session in which the broker was heard resets the
   failure count; one in which it never was adds one. The next session opens after the
   backoff for that count (``sandbox.backoff``), which ``tick`` ends (``Resume``).
5. ``wake_at`` is the earliest instant at which ``tick`` has something to do, or None.

Invariants: at most one of "in a session" and "waiting to resume" holds; a Beat is only
returned in a session; ``Resume`` is returned once per wait.
"""

from __future__ import annotations

from dataclasses import dataclass

from sandbox import backoff


@dataclass(frozen=True)
class Beat:
    """Send a heartbeat now."""


@dataclass(frozen=True)
class Expired:
    """The broker has been silent past its liveness: end this session."""


@dataclass(frozen=True)
class Resume:
    """The backoff after the last session is over: open the next one."""


Action = Beat | Expired | Resume


class Session:
    def __init__(self, heartbeat_s: float, liveness: int) -> None:
        self.heartbeat_s = heartbeat_s
        self.liveness = liveness
        self.active = False  # in a session (a socket is open)
        self.heard_from = False  # the broker spoke in this session
        self.expired = False
        self.failures = 0  # sessions in a row in which the broker was never heard
        self.resume_at: float | None = None  # waiting to open the next session
        self._last_heard = 0.0
        self._next_beat = 0.0

    @property
    def silence_limit_s(self) -> float:
        return self.heartbeat_s * self.liveness

    def opened(self, now: float) -> None:
        """Rule 1."""
        self.active, self.heard_from, self.expired, self.resume_at = True, False, False, None
        self._last_heard, self._next_beat = now, now + self.heartbeat_s

    def heard(self, now: float) -> None:
        """Rule 2."""
        self.heard_from = True
        self._last_heard = now

    def tick(self, now: float) -> Action | None:
        """Rules 3 and 4: what to do at ``now``."""
        if self.resume_at is not None:
            if now >= self.resume_at:
                self.resume_at = None
                return Resume()
            return None
        if not self.active or self.expired:
            return None
        if now - self._last_heard > self.silence_limit_s:
            self.expired = True
            return Expired()
        if now >= self._next_beat:
            self._next_beat = now + self.heartbeat_s
            return Beat()
        return None

    def closed(self, now: float, *, reconnect: bool = True) -> float:
        """Rule 4: the session is over; the wait before the next one (seconds)."""
        self.active = False
        self.failures = 0 if self.heard_from else self.failures + 1
        delay = backoff.delay_s(self.failures)
        self.resume_at = now + delay if reconnect else None
        return delay

    def wake_at(self) -> float | None:
        """Rule 5."""
        if self.resume_at is not None:
            return self.resume_at
        if not self.active or self.expired:
            return None
        return min(self._next_beat, self._last_heard + self.silence_limit_s)
