"""The broker's routing, queueing, deadline and retry rules: a pure state machine.

Events go in (a decoded message from a client or a runner, a malformed frame, ``tick(now)``),
the messages to send come out as ``Send`` records. No sockets, no clock: the caller passes
``now`` (seconds, monotonic) and does the I/O. The rules, in one place:

Queueing
  1. A submitted task joins the queue of its lane. Dispatch order is priority (higher
     first), then submission order (FIFO).
  2. The queue is bounded (``max_queued``): a task that would exceed it is rejected at once
     with "queue full (N waiting)".
  3. A task that no registered runner could ever run (runtime, version prefix, group) is
     rejected at once when it says ``wait_for_runner=False``; otherwise it waits.
  4. A queued task past its queue deadline is rejected with the reason nothing ran:
     "no runner for runtime X in group Y", "lane L at its cap of N for 30 s", or
     "all N slots busy for 30 s".

Dispatch
  5. A task runs on a runner that serves its runtime (version prefix matching), carries its
     group (if it names one) and has a free slot; among those, the one with most free slots.
  6. Never more in flight than ``max_in_flight`` overall, a lane's cap in that lane, or a
     runner's advertised slots on that runner. A task that cannot be placed does not block
     tasks behind it that can (no head-of-line blocking across runtimes or lanes).

Runners
  7. ``ready`` registers a runner (or re-registers it, which forgets what it was running:
     its tasks are treated as lost). Every message from a runner refreshes its liveness; a
     runner silent for ``heartbeat_s * liveness`` is lost.
  8. When a runner is lost, each of its tasks that is ``idempotent`` and has attempts left
     goes back to the front of its queue; the others end as ``crashed`` "runner lost".
  9. ``bye`` removes a runner that has finished its work; a runner is sent a heartbeat every
     ``heartbeat_s``.

Results and cancellation
  10. ``done`` from the runner that holds the task forwards the envelope to the client and
      frees the slot. A ``done`` for a task that runner does not hold is dropped and counted.
  11. ``cancel`` of a queued task removes it (answer: rejected "cancelled before it ran"); of
      a running task sends ``cancel_task`` to its runner and answers the client at once
      (crashed "cancelled while running"); the slot is freed when the runner reports.
      Cancelling an unknown or finished task is a no-op answered with rejected.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections import Counter
from dataclasses import dataclass, field

from broker import protocol as p
from runtimes import outcome
from runtimes.outcome import Status


@dataclass(frozen=True)
class BrokerConfig:
    max_queued: int = 10_000
    max_in_flight: int = 100_000
    lane_caps: dict[str, int] = field(default_factory=dict)  # lane -> concurrency cap
    queue_timeout_s: float = 30.0  # default queue-wait deadline
    heartbeat_s: float = 1.0
    liveness: int = 3  # heartbeats a runner may miss before it is lost


@dataclass(frozen=True)
class Send:
    """One message to send: to a client or to a runner, by ZeroMQ identity."""

    to: bytes
    msg: p.Message


@dataclass
class Task:
    key: str  # broker-wide: client identity + client's id
    client: bytes
    submit: p.Submit
    seq: int
    submitted_at: float
    deadline: float
    attempts: int = 0
    runner: bytes | None = None
    cancelled: bool = False

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

    @property
    def free(self) -> int:
        return self.slots - len(self.running)

    def serves(self, submit: p.Submit) -> bool:
        version = self.runtimes.get(submit.runtime)
        if version is None or not version.startswith(submit.version):
            return False
        return submit.group is None or submit.group in self.groups


class BrokerCore:
    def __init__(self, config: BrokerConfig | None = None) -> None:
        self.config = config or BrokerConfig()
        self.queued: dict[str, Task] = {}
        # the queue in dispatch order, and a heap of queue deadlines (entries of tasks that
        # left the queue are skipped when they surface): no event sorts the whole queue
        self._order: list[tuple[int, int, str]] = []
        self._deadlines: list[tuple[float, int, str]] = []
        self.running: dict[str, Task] = {}
        self.runners: dict[bytes, Runner] = {}
        self.counters: Counter[str] = Counter()
        self._seq = itertools.count()
        self._next_heartbeat = 0.0

    # -- events ------------------------------------------------------------------------------

    def on_client(self, client: bytes, msg: p.Message, now: float) -> list[Send]:
        if isinstance(msg, p.Submit):
            return self._submit(client, msg, now)
        if isinstance(msg, p.Cancel):
            return self._cancel(client, msg.id)
        if isinstance(msg, p.Ping):
            return [Send(client, p.Pong())]
        return self.on_malformed(client, f"a client may not send {msg.TYPE!r}", None)

    def on_runner(self, identity: bytes, msg: p.Message, now: float) -> list[Send]:
        if isinstance(msg, p.Ready):
            return self._ready(identity, msg, now)
        runner = self.runners.get(identity)
        if runner is None:
            self.counters["dropped_unknown_runner"] += 1
            return []
        runner.last_seen = now
        if isinstance(msg, p.RunnerHeartbeat):
            runner.idle_children = msg.idle_children
            return []
        if isinstance(msg, p.Done):
            return self._done(runner, msg, now)
        if isinstance(msg, p.Bye):
            return self._lose(runner, now, "runner left")
        return []

    def on_malformed(self, sender: bytes, error: str, msg_id: str | None) -> list[Send]:
        """A frame that did not parse: answer with ``rejected`` (the sender may be a client)."""
        self.counters["malformed"] += 1
        return [Send(sender, p.Rejected(msg_id, f"rejected: {error}"))]

    def tick(self, now: float) -> list[Send]:
        out: list[Send] = []
        expiry = self.config.heartbeat_s * self.config.liveness
        for runner in list(self.runners.values()):
            if now - runner.last_seen > expiry:
                out += self._lose(runner, now, f"runner lost (silent for {expiry:g} s)")
        while self._deadlines and self._deadlines[0][0] <= now:
            deadline, _, key = heapq.heappop(self._deadlines)
            task = self.queued.get(key)
            if task is None or task.deadline != deadline:
                continue  # it left the queue, or waits under a later deadline now
            self._dequeue(task)
            self.counters["rejected_deadline"] += 1
            out.append(self._reject(task, self._why_waiting(task)))
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + self.config.heartbeat_s
            out += [Send(r.identity, p.BrokerHeartbeat()) for r in self.runners.values()]
        return out + self._dispatch(now)

    # -- rules -------------------------------------------------------------------------------

    def _submit(self, client: bytes, msg: p.Submit, now: float) -> list[Send]:
        key = f"{client.hex()}:{msg.id}"
        if key in self.queued or key in self.running:
            return [Send(client, p.Rejected(msg.id, f"task id {msg.id!r} is already in use"))]
        if len(self.queued) >= self.config.max_queued:
            self.counters["rejected_queue_full"] += 1
            return [Send(client, p.Rejected(msg.id, f"queue full ({len(self.queued)} waiting)"))]
        if not msg.wait_for_runner and not any(r.serves(msg) for r in self.runners.values()):
            self.counters["rejected_no_runner"] += 1
            return [Send(client, p.Rejected(msg.id, self._no_runner(msg)))]
        wait = self.config.queue_timeout_s if msg.queue_timeout_s is None else msg.queue_timeout_s
        task = Task(key, client, msg, next(self._seq), now, now + wait)
        self._enqueue(task)
        self.counters["submitted"] += 1
        return self._dispatch(now)

    def _cancel(self, client: bytes, msg_id: str) -> list[Send]:
        key = f"{client.hex()}:{msg_id}"
        task = self.queued.get(key)
        if task is not None:
            self._dequeue(task)
            self.counters["cancelled_queued"] += 1
            return [Send(client, p.Rejected(msg_id, "cancelled before it ran"))]
        task = self.running.get(key)
        if task is None or task.cancelled:
            return [Send(client, p.Rejected(msg_id, f"no queued or running task {msg_id!r}"))]
        task.cancelled = True
        self.counters["cancelled_running"] += 1
        envelope = outcome.encode(Status.CRASHED, "cancelled while running")
        assert task.runner is not None
        return [
            Send(task.runner, p.CancelTask(key)),
            Send(client, p.ResultMsg(msg_id, envelope, task.attempts, 0.0)),
        ]

    def _ready(self, identity: bytes, msg: p.Ready, now: float) -> list[Send]:
        out: list[Send] = []
        old = self.runners.get(identity)
        if old is not None:  # re-registration: it restarted and forgot its tasks
            out += self._lose(old, now, "runner restarted")
        self.runners[identity] = Runner(
            identity, dict(msg.runtimes), frozenset(msg.groups), msg.slots, msg.name, now
        )
        self.counters["runners_registered"] += 1
        return out + self._dispatch(now)

    def _done(self, runner: Runner, msg: p.Done, now: float) -> list[Send]:
        task = self.running.get(msg.task_id)
        if task is None or task.runner != runner.identity:
            self.counters["dropped_stale_done"] += 1
            runner.running.discard(msg.task_id)
            return self._dispatch(now)
        del self.running[msg.task_id]
        runner.running.discard(msg.task_id)
        out: list[Send] = []
        if not task.cancelled:  # a cancelled task's client was answered already
            queue_ms = 0.0  # set by the loop from its own clock if it wants it
            out.append(Send(task.client, p.ResultMsg(task.submit.id, msg.envelope,
                                                     task.attempts, queue_ms)))
            self.counters["completed"] += 1
        return out + self._dispatch(now)

    def _lose(self, runner: Runner, now: float, reason: str) -> list[Send]:
        del self.runners[runner.identity]
        self.counters["runners_lost"] += 1
        out: list[Send] = []
        for key in sorted(runner.running):
            task = self.running.pop(key, None)
            if task is None:
                continue
            task.runner = None
            if task.cancelled:
                continue
            if task.submit.idempotent and task.attempts < task.submit.max_attempts:
                task.deadline = max(task.deadline, now + self._wait_of(task))
                self._enqueue(task)  # keeps its seq: back at the front of its priority
                self.counters["retried"] += 1
            else:
                envelope = outcome.encode(Status.CRASHED, f"{reason} while running the task")
                out.append(Send(task.client, p.ResultMsg(task.submit.id, envelope,
                                                         task.attempts, 0.0)))
                self.counters["crashed_runner_lost"] += 1
        return out + self._dispatch(now)

    def _dispatch(self, now: float) -> list[Send]:
        if not self.queued:
            return []
        free = sum(max(0, r.free) for r in self.runners.values())
        if not free:  # the usual state under a backlog: nothing to do, and nothing scanned
            return []
        out: list[Send] = []
        in_flight = len(self.running)
        lanes = Counter(t.submit.lane for t in self.running.values())
        placed: list[Task] = []
        for _, _, key in self._order:
            if in_flight >= self.config.max_in_flight or not free:
                break
            task = self.queued[key]
            cap = self.config.lane_caps.get(task.submit.lane)
            if cap is not None and lanes[task.submit.lane] >= cap:
                continue
            runner = self._place(task.submit)
            if runner is None:
                continue
            placed.append(task)
            task.runner = runner.identity
            task.attempts += 1
            runner.running.add(task.key)
            self.running[task.key] = task
            in_flight += 1
            free -= 1
            lanes[task.submit.lane] += 1
            s = task.submit
            out.append(Send(runner.identity, p.TaskMsg(task.key, s.runtime, s.code, s.data,
                                                       s.limits, s.policy, s.imports)))
        for task in placed:
            self._dequeue(task)
        return out

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

    def _place(self, submit: p.Submit) -> Runner | None:
        best: Runner | None = None
        for runner in self.runners.values():
            if runner.free > 0 and runner.serves(submit) and (best is None or runner.free > best.free):
                best = runner
        return best

    # -- messages ----------------------------------------------------------------------------

    def _wait_of(self, task: Task) -> float:
        s = task.submit
        return self.config.queue_timeout_s if s.queue_timeout_s is None else s.queue_timeout_s

    def _reject(self, task: Task, message: str) -> Send:
        return Send(task.client, p.Rejected(task.submit.id, message))

    def _no_runner(self, s: p.Submit) -> str:
        where = f" in group {s.group!r}" if s.group else ""
        version = f" version {s.version}*" if s.version else ""
        return f"no runner for runtime {s.runtime!r}{version}{where}"

    def _why_waiting(self, task: Task) -> str:
        s = task.submit
        waited = f"{self._wait_of(task):g} s"
        serving = [r for r in self.runners.values() if r.serves(s)]
        if not serving:
            return f"{self._no_runner(s)} (waited {waited})"
        cap = self.config.lane_caps.get(s.lane)
        busy_in_lane = sum(1 for t in self.running.values() if t.submit.lane == s.lane)
        if cap is not None and busy_in_lane >= cap:
            return f"lane {s.lane!r} at its cap of {cap} for {waited}"
        if len(self.running) >= self.config.max_in_flight:
            return f"the broker's {self.config.max_in_flight} in-flight slots busy for {waited}"
        slots = sum(r.slots for r in serving)
        return f"all {slots} slots busy for {waited}"

    # -- introspection -----------------------------------------------------------------------

    def queue_depths(self) -> dict[str, int]:
        return dict(Counter(t.submit.lane for t in self.queued.values()))

    def idle_children(self) -> int:
        return sum(r.idle_children for r in self.runners.values())
