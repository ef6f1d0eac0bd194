"""The runner's decisions, with no I/O: events in, actions out, the clock passed in.

Events: ``connected(now)``, ``frame(msg, now)`` (a parsed broker message), ``finished(task_id,
result, now)`` (a job's outcome from the pools), ``call(task_id, call_id, name, params)`` (a
running job calls n8n), ``tick(now)``, ``disconnected(now)``.
Actions: ``Send(msg)``, ``Start(task_id, job)``, ``Cancel(task_id)``, ``Answer(task_id,
call_id, ok, data)``, ``Exit(reason)``.

Rules (n8n 2.41's broker on the other side):

* Registration: ``broker:inforequest`` -> ``runner:info``; offers start at
  ``broker:runnerregistered``.
* Offers are free slots: per task type, open offers + tasks <= ``max_concurrency``. Each is
  valid ``offer_valid_ms`` plus jitter; a new offer replaces one ``offer_renew_ms`` before it
  expires, so a slot is never unoffered. The old one stays acceptable until it expires.
* An accept is answered at once (n8n's window is 2 s): ``taskaccepted``, or ``taskrejected``
  with the reason (offer unknown or expired, no free slot, draining).
* Settings that are not a Code node task we can run (``SettingsRefused``) are answered
  with an error at once, naming what is wrong, and the slot is offered again.
* Task phases: ``waiting settings`` -> (javascript, and python code that names another
  node as n8n 1.x's ``_('Node')``: ``waiting data``) -> ``running`` ->
  answered. Each phase before running has a deadline, after which the task is answered
  with an error and its slot freed.
* ``broker:taskcancel`` ends a task without an answer (n8n has answered it itself): a
  running one's child is killed at once; its slot comes back when the kill is confirmed.
* ``broker:drain``: no more offers, accepts are rejected, running tasks are killed and
  answered with an error (n8n is shutting down).
* A lost connection kills every running task (n8n fails them itself) and forgets all state;
  the shell reconnects with backoff and a fresh grant.
* A finished task's slot is offered again before its answer is sent: the answer is what
  moves a workflow on to its next Code node, and that task must not wait for our offer.
* A running job's call of n8n (``helpers.httpRequest`` and the rest of
  ``protocol.RPC_HELPERS``) goes to n8n as ``runner:rpc`` under a call id of ours; n8n's
  ``broker:rpcresponse`` for it is the job's answer (``Answer``). A call of a task that has
  ended, or was cancelled, is not sent; an answer for one is dropped (the pools end the
  job at its timeout whether or not n8n answers).
* A task's console output goes first, as ``logNodeOutput`` rpc calls; its answer follows
  once n8n has acknowledged them (or after ``LOGS_TIMEOUT_S``): n8n drops an rpc call
  for a task it already considers done.
* Auto-shutdown: ``Exit`` after ``auto_shutdown_s`` with no task (0 disables it).
* Shutdown (SIGTERM, ``shutdown``), n8n's 2026 contract: the runner keeps offering and
  serving for ``grace_s`` (``N8N_RUNNERS_GRACEFUL_SHUTDOWN_TIMEOUT``) or until
  ``broker:drain``; then it offers nothing more and rejects accepts ("the runner is
  shutting down"), lets its running tasks finish for ``margin_s`` more
  (``N8N_RUNNERS_SHUTDOWN_FORCE_KILL_MARGIN``), kills and answers what still runs, and
  ``Exit``s once every task is answered. A runner with no connection exits at once.
"""

from __future__ import annotations

import base64
import enum
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox.config import Limits
from sandbox.n8n import javascript_node, python_node
from sandbox.n8n import protocol as p
from sandbox.n8n.task import Finished, Job, JobError
from sandbox.result import Result

OFFER_VALID_MS = 5000  # what n8n's runners offer
OFFER_JITTER_MS = 500
OFFER_RENEW_MS = 1000  # re-offer this long before an offer expires
SETTINGS_TIMEOUT_S = 30.0  # n8n sends settings right after an accept
LOGS_TIMEOUT_S = 2.0  # how long a task's answer waits for n8n to take its console output
DATA_TIMEOUT_S = 60.0  # and answers a data request as fast
SHUTDOWN_EXIT = "shut down (SIGTERM)"


@dataclass(frozen=True)
class CoreConfig:
    name: str = "snippet-sandbox"
    task_types: tuple[str, ...] = p.TASK_TYPES
    max_concurrency: int = 5
    limits: Limits = Limits(timeout_s=300.0)
    auto_shutdown_s: float = 0.0
    offer_valid_ms: int = OFFER_VALID_MS
    offer_jitter_ms: int = OFFER_JITTER_MS
    offer_renew_ms: int = OFFER_RENEW_MS
    javascript: javascript_node.CodeOptions = javascript_node.CodeOptions()


# -- actions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    msg: p.RunnerMessage


@dataclass(frozen=True)
class Start:
    task_id: str
    job: Job


@dataclass(frozen=True)
class Cancel:
    task_id: str


@dataclass(frozen=True)
class Answer:
    """n8n's answer to a job's call: ``ok`` and the value, or the error (``p.ABSENT``: none)."""

    task_id: str
    call_id: int
    ok: bool
    data: Any


@dataclass(frozen=True)
class Exit:
    reason: str


Action = Send | Start | Cancel | Answer | Exit


class Phase(enum.Enum):
    SETTINGS = "waiting settings"
    DATA = "waiting data"
    RUNNING = "running"
    KILLED = "killed"  # cancelled while running: the child is being killed, no answer


@dataclass
class Offer:
    offer_id: str
    task_type: str
    expires: float  # monotonic seconds: acceptable until then
    renew_at: float  # when a replacement is offered


@dataclass
class Task:
    task_id: str
    task_type: str
    phase: Phase
    deadline: float | None
    settings: p.Settings | None = None
    request_id: str = ""


def _nanoid(rng: random.Random) -> str:
    """An id as n8n makes them (nanoid: 21 symbols of 64, 126 random bits): base64's URL
    alphabet is nanoid's, and 16 random bytes give 21 symbols of 6 uniform bits each."""
    return base64.urlsafe_b64encode(rng.randbytes(16))[:21].decode("ascii")


@dataclass
class RunnerCore:
    """The runner's state for one connection at a time."""

    config: CoreConfig = field(default_factory=CoreConfig)
    rng: random.Random = field(default_factory=random.Random)
    ids: Callable[[], str] | None = None
    registered: bool = False
    draining: bool = False
    offers: dict[str, Offer] = field(default_factory=dict)
    tasks: dict[str, Task] = field(default_factory=dict)
    idle_since: float | None = None
    protocol_errors: int = 0
    # answers held until n8n acknowledged the task's console output: task id -> (the
    # taskdone/taskerror message, call ids not yet acknowledged, send it anyway at)
    held: dict[str, tuple[p.RunnerMessage, set[str], float]] = field(default_factory=dict)
    # jobs' calls sent to n8n: our rpc call id -> (task id, the job's call id)
    calls: dict[str, tuple[str, int]] = field(default_factory=dict)
    # shutting down: when the grace period ends (offers stop) and when what still runs is
    # killed; None while serving normally
    retire_at: float | None = None
    force_at: float | None = None
    retiring: bool = False  # the grace period is over: no offers, accepts rejected

    def _id(self) -> str:
        return self.ids() if self.ids else _nanoid(self.rng)

    # -- events ------------------------------------------------------------------------------

    def connected(self, now: float) -> list[Action]:
        self.registered = False
        self.draining = False
        if self.idle_since is None:
            self.idle_since = now
        return []

    def frame(self, msg: p.BrokerMessage, now: float) -> list[Action]:
        match msg:
            case p.InfoRequest():
                return [Send(p.RunnerInfo(self.config.name, self.config.task_types))]
            case p.RunnerRegistered():
                self.registered = True
                return self._offer(now)
            case p.TaskOfferAccept(offer_id, task_id):
                return self._accept(offer_id, task_id, now)
            case p.TaskSettings(task_id, settings):
                return self._settings(task_id, settings, now)
            case p.SettingsRefused(task_id, reason):
                return self._refused(task_id, reason, now)
            case p.TaskDataResponse(task_id, request_id, data, frame):
                return self._data(task_id, request_id, data, now, frame)
            case p.TaskCancel(task_id, _):
                return self._cancel(task_id, now)
            case p.Drain():
                return self._drain(now) + self._wind_down(now)
            case p.RpcResponse(task_id, call_id, status, data):
                if call_id in self.calls:
                    task_id, job_call = self.calls.pop(call_id)
                    return [Answer(task_id, job_call, status == "success", data)]
                return self._acknowledged(task_id, call_id)
            case p.NodeTypes():
                return []  # never asked for
        return []

    def call(self, task_id: str, call_id: int, name: str, params: list[Any]) -> list[Action]:
        """A running job calls ``name`` of n8n (the pools checked it is one it may call)."""
        task = self.tasks.get(task_id)
        if task is None or task.phase is not Phase.RUNNING:
            return []
        rpc_id = self._id()
        self.calls[rpc_id] = (task_id, call_id)
        return [Send(p.Rpc(rpc_id, task_id, name, params))]

    def finished(self, task_id: str, result: Result, now: float) -> list[Action]:
        """A job ended (or its kill was confirmed): answer n8n unless it cancelled the task."""
        task = self.tasks.pop(task_id, None)
        if task is None:
            return []
        for rpc_id in [r for r, (t, _) in self.calls.items() if t == task_id]:
            del self.calls[rpc_id]  # n8n's late answers to it find nothing
        actions: list[Action] = []
        if task.phase is Phase.RUNNING and task.settings is not None:
            node = python_node if task.task_type == "python" else javascript_node
            actions += self._answer(task_id, node.finish(task.settings, result, self.config.limits), now)
        self._maybe_idle(now)
        # the slot is offered before the answer goes: the answer moves the workflow on to its
        # next Code node, whose task then finds the offer at n8n instead of waiting for it
        return self._offer(now) + actions

    def tick(self, now: float) -> list[Action]:
        actions: list[Action] = []
        for task in list(self.tasks.values()):
            if task.deadline is not None and now >= task.deadline:
                del self.tasks[task.task_id]
                actions += self._answer(task.task_id, Finished(error={
                    "message": f"n8n did not send the task's {task.phase.value.split()[1]} in time"}), now)
                self._maybe_idle(now)
        for task_id, (final, _, send_at) in list(self.held.items()):
            if now >= send_at:
                del self.held[task_id]
                actions.append(Send(final))
        for offer_id in [o.offer_id for o in self.offers.values() if now >= o.expires]:
            del self.offers[offer_id]
        actions += self._offer(now)
        actions += self._wind_down(now)
        if (self.config.auto_shutdown_s > 0 and not self.tasks and self.idle_since is not None
                and now - self.idle_since >= self.config.auto_shutdown_s):
            actions.append(Exit(f"idle for {self.config.auto_shutdown_s:g} s (auto-shutdown)"))
        return actions

    def disconnected(self, now: float) -> list[Action]:
        """The connection is gone: n8n fails our tasks itself; kill what still runs."""
        actions: list[Action] = [Cancel(t.task_id) for t in self.tasks.values()
                                 if t.phase in (Phase.RUNNING, Phase.KILLED)]
        self.tasks.clear()
        self.offers.clear()
        self.held.clear()
        self.calls.clear()
        self.registered = False
        self.idle_since = now
        return actions

    def shutdown(self, now: float, grace_s: float, margin_s: float) -> list[Action]:
        """SIGTERM: serve on for ``grace_s`` (or until drained), then wind down (see rules)."""
        if self.retire_at is not None:
            return []
        self.retire_at, self.force_at = now + grace_s, now + grace_s + margin_s
        if not self.registered and not self.tasks:
            return [Exit(SHUTDOWN_EXIT)]
        return self._wind_down(now)

    def _wind_down(self, now: float) -> list[Action]:
        """Shutdown's progress at ``now``: retire, kill past the margin, exit when done."""
        if self.retire_at is None:
            return []
        actions: list[Action] = []
        if not self.retiring and (now >= self.retire_at or self.draining):
            self.retiring = self.draining = True
            self.offers.clear()
        if self.retiring and self.force_at is not None and now >= self.force_at:
            for task in list(self.tasks.values()):
                if task.phase is Phase.RUNNING:
                    task.phase = Phase.KILLED
                    actions.append(Cancel(task.task_id))
                    actions += self._answer(task.task_id, Finished(error={
                        "message": "Task stopped: the runner is shutting down (SIGTERM) and "
                                   "the task ran past its grace period"}), now)
                elif task.phase is not Phase.KILLED:
                    del self.tasks[task.task_id]
            for final, _, _ in self.held.values():
                actions.append(Send(final))
            self.held.clear()
        if self.retiring and not self.tasks and not self.held:
            actions.append(Exit(SHUTDOWN_EXIT))
        return actions

    def stop(self, now: float) -> list[Action]:
        """The runner is shutting down: as a drain (running tasks killed and answered)."""
        return self._drain(now)

    def next_deadline(self, now: float) -> float:
        """When ``tick`` next has something to do (the shell sleeps until then at most)."""
        # an offer past its renewal time has its replacement already: only its expiry is due
        times = [o.renew_at if now < o.renew_at else o.expires for o in self.offers.values()]
        times += [t.deadline for t in self.tasks.values() if t.deadline is not None]
        times += [send_at for _, _, send_at in self.held.values()]
        if self.config.auto_shutdown_s > 0 and self.idle_since is not None and not self.tasks:
            times.append(self.idle_since + self.config.auto_shutdown_s)
        if self.retire_at is not None:
            # a fixed time (the loop compares it with its own clock): the end of the grace
            # period until retiring, then the margin's end while tasks remain, and the grace
            # period's end again (past, so due at once) when the exit is due
            busy = self.retiring and (self.tasks or self.held)
            times.append(self.force_at if busy and self.force_at is not None else self.retire_at)
        return min(times, default=now + 1.0)

    @property
    def running(self) -> int:
        return len(self.tasks)

    # -- rules -------------------------------------------------------------------------------

    def _offer(self, now: float) -> list[Action]:
        if not self.registered or self.draining:
            return []
        actions: list[Action] = []
        free = self.config.max_concurrency - len(self.tasks)
        for task_type in self.config.task_types:
            # offers about to expire do not count: their replacements are due
            live = [o for o in self.offers.values() if o.task_type == task_type and now < o.renew_at]
            for _ in range(free - len(live)):
                valid_ms = self.config.offer_valid_ms + self.rng.randint(0, self.config.offer_jitter_ms)
                offer = Offer(self._id(), task_type, now + valid_ms / 1000.0,
                              now + max(valid_ms - self.config.offer_renew_ms, valid_ms // 2) / 1000.0)
                self.offers[offer.offer_id] = offer
                actions.append(Send(p.TaskOffer(offer.offer_id, task_type, valid_ms)))
        return actions

    def _accept(self, offer_id: str, task_id: str, now: float) -> list[Action]:
        offer = self.offers.pop(offer_id, None)
        reason = None
        if self.retiring:
            reason = "the runner is shutting down"
        elif self.draining:
            reason = "the runner is draining (n8n is shutting down)"
        elif task_id in self.tasks:
            reason = "the runner already has this task"
        elif offer is None or now >= offer.expires:
            reason = "Offer expired - not accepted"
        elif len(self.tasks) >= self.config.max_concurrency:
            reason = f"No capacity: all {self.config.max_concurrency} slots are busy"
        if reason is not None or offer is None:
            return [Send(p.TaskRejected(task_id, reason or "Offer expired - not accepted"))]
        self.tasks[task_id] = Task(task_id, offer.task_type, Phase.SETTINGS, now + SETTINGS_TIMEOUT_S)
        self.idle_since = None
        # the slot is taken: the other type's offers for it stay out until they lapse
        return [Send(p.TaskAccepted(task_id))]

    def _settings(self, task_id: str, settings: p.Settings, now: float) -> list[Action]:
        task = self.tasks.get(task_id)
        if task is None or task.phase is not Phase.SETTINGS:
            return []  # not ours, or a duplicate: nothing to answer
        task.settings = settings
        limits = self.config.limits
        if task.task_type == "python":
            request = python_node.data_request(settings)  # n8n 1.x's _('Node') only
            if request is None:
                return self._start(task, lambda: python_node.job(settings, limits), now)
        else:
            request = javascript_node.data_request(settings)
        task.phase, task.deadline, task.request_id = Phase.DATA, now + DATA_TIMEOUT_S, self._id()
        return [Send(p.TaskDataRequest(task_id, task.request_id, request))]

    def _refused(self, task_id: str, reason: str, now: float) -> list[Action]:
        """Settings we cannot run: the task is answered now, not when its deadline passes."""
        task = self.tasks.get(task_id)
        if task is None or task.phase is not Phase.SETTINGS:
            return []
        del self.tasks[task_id]
        self._maybe_idle(now)
        return self._offer(now) + self._answer(task_id, Finished(error={
            "message": f"n8n sent settings this runner cannot run: {reason}"}), now)

    def _data(self, task_id: str, request_id: str, data: dict[str, Any], now: float,
              frame: str = "") -> list[Action]:
        task = self.tasks.get(task_id)
        if task is None or task.phase is not Phase.DATA or task.request_id != request_id:
            return []
        settings, limits, options = task.settings, self.config.limits, self.config.javascript
        assert settings is not None
        if task.task_type == "python":
            return self._start(task, lambda: python_node.job(settings, limits, data), now)
        return self._start(task, lambda: javascript_node.job(settings, data, limits, frame, options),
                           now)

    def _start(self, task: Task, build: Callable[[], Job], now: float) -> list[Action]:
        try:
            job = build()
        except JobError as exc:
            del self.tasks[task.task_id]
            self._maybe_idle(now)
            return self._answer(task.task_id, Finished(error={"message": str(exc)}), now)
        task.phase, task.deadline = Phase.RUNNING, None
        return [Start(task.task_id, job)]

    def _cancel(self, task_id: str, now: float) -> list[Action]:
        task = self.tasks.get(task_id)
        if task is None:
            return []
        if task.phase is Phase.RUNNING:
            task.phase = Phase.KILLED  # the slot frees when the kill is confirmed
            return [Cancel(task_id)]
        if task.phase is Phase.KILLED:
            return []
        del self.tasks[task_id]
        self._maybe_idle(now)
        return self._offer(now)

    def _drain(self, now: float) -> list[Action]:
        self.draining = True
        self.offers.clear()
        actions: list[Action] = [Send(final) for final, _, _ in self.held.values()]
        self.held.clear()
        for task in list(self.tasks.values()):
            if task.phase is Phase.RUNNING:
                task.phase = Phase.KILLED
                actions.append(Cancel(task.task_id))
                actions += self._answer(task.task_id, Finished(error={
                    "message": "Task stopped: n8n is shutting down (broker:drain)"}), now)
            elif task.phase is not Phase.KILLED:
                del self.tasks[task.task_id]
        return actions

    def _answer(self, task_id: str, finished: Finished, now: float) -> list[Action]:
        final: p.RunnerMessage
        if finished.error is not None:
            final = p.TaskError(task_id, finished.error)
        else:
            # an empty answer stays empty: a JavaScript task whose code returned undefined
            # sends no result, as n8n's runner does, and n8n says what is missing
            done = finished.done if finished.done is not None else {"result": []}
            final = p.TaskDone(task_id, done, finished.result_json if finished.done else "")
        calls = [p.Rpc(self._id(), task_id, p.RPC_LOG, line) for line in finished.logs]
        if not calls:
            return [Send(final)]
        self.held[task_id] = (final, {c.call_id for c in calls}, now + LOGS_TIMEOUT_S)
        return [Send(c) for c in calls]

    def _acknowledged(self, task_id: str, call_id: str) -> list[Action]:
        held = self.held.get(task_id)
        if held is None:
            return []
        final, waiting, _ = held
        waiting.discard(call_id)
        if waiting:
            return []
        del self.held[task_id]
        return [Send(final)]

    def _maybe_idle(self, now: float) -> None:
        if not self.tasks:
            self.idle_since = now
