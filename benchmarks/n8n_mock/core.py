"""n8n's task broker, as a pure state machine: events in, actions out, the clock passed in.

The rules, as n8n 2.41's broker follows them (``/work/shared/n8n/README.md``, the captures
and its own code):

- Auth: ``POST /runners/auth {"token"}`` with the auth token grants a single-use token that
  lives ``GRANT_S``; a wrong token is 403. The upgrade ``GET /runners/_ws?id=ID`` needs
  ``Authorization: Bearer GRANT``: 400 without an id, 401 without the header, 403 for a grant
  that is unknown, used or expired. A second connection with a live runner's id replaces it.
- Handshake: ``broker:inforequest`` on every connection; ``runner:info`` registers the runner
  (``broker:runnerregistered``); anything else before it is ignored.
- Matching: offers (``runner:taskoffer``, valid ``validFor`` ms, -1 for ever) and tasks are
  matched first come, first served, by task type. A match sends ``broker:taskofferaccept``;
  ``runner:taskaccepted`` within ``ACCEPT_S`` gets ``broker:tasksettings`` and starts the
  task's timeout; ``runner:taskrejected`` puts the task back at the head of the queue; no
  answer in time is ``broker:taskcancel`` "Acknowledgement window elapsed", the runner's
  offers are dropped and the task goes back to the head; ``MAX_ACCEPT_TIMEOUTS`` of those in
  a row close the runner (1002).
- Running: ``runner:taskdatarequest`` is answered with ``data.task_data``;
  ``runner:nodetypesrequest`` with no node types; ``runner:rpc`` ``logNodeOutput`` with
  success (the output is kept with the task's answer), any other rpc with an error.
  ``runner:taskdone`` or ``runner:taskerror`` is the task's answer. At the task's timeout:
  ``broker:taskcancel`` "Task execution timed out", and the task fails.
- Liveness: every ``heartbeat_s`` each runner is pinged; one that did not answer the
  previous ping is closed (1002). A runner that goes away drops its offers; its running
  tasks fail and the ones it was accepting go back to the queue.
- A task no runner takes within ``request_timeout_s`` fails; a caller may cancel a task
  (``broker:taskcancel`` "Task cancelled by user" when a runner has it); ``stop`` drains
  every runner (``broker:drain``, close 1001) and fails what is left.

Every task gets exactly one ``Answer``. Malformed or unexpected runner frames are counted
and ignored, as n8n's broker ignores them; they never end a task or the broker.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from benchmarks.n8n_mock import data
from sandbox.errors import N8nProtocolError
from sandbox.n8n import protocol as p

GRANT_S = 30.0  # a grant's lifetime
ACCEPT_S = 2.0  # n8n's N8N_RUNNERS_TASK_ACCEPT_TIMEOUT
MAX_ACCEPT_TIMEOUTS = 3
FORBIDDEN = {"code": 403, "message": "Forbidden"}
CLOSE_PROTOCOL_ERROR, CLOSE_GOING_AWAY, CLOSE_NORMAL = 1002, 1001, 1000


@dataclass(frozen=True)
class TaskSpec:
    """One Code node task: its JavaScript, its mode, and the items its trigger produced."""

    code: str
    node_mode: str = "runOnceForAllItems"
    items: tuple[dict[str, Any], ...] = ({"json": {}},)
    task_type: str = "javascript"

    def __post_init__(self) -> None:
        if self.node_mode not in p.NODE_MODES:
            raise ValueError(f"node_mode {self.node_mode!r} is not one of {', '.join(p.NODE_MODES)}")
        if self.task_type not in p.TASK_TYPES:
            raise ValueError(f"task_type {self.task_type!r} is not one of {', '.join(p.TASK_TYPES)}")


Status = Literal["done", "error", "failed"]


@dataclass(frozen=True)
class Outcome:
    """A task's one answer: ``done`` (``value`` is taskdone's data), ``error`` (``value`` is
    taskerror's error) or ``failed`` (the broker ended it: ``message`` says why)."""

    handle: int
    status: Status
    value: Any
    message: str
    submitted_at: float
    answered_at: float
    logs: tuple[tuple[Any, ...], ...] = ()
    runner_id: str = ""

    @property
    def duration_s(self) -> float:
        """From the broker having the task to its answer."""
        return self.answered_at - self.submitted_at

    @property
    def result(self) -> Any:
        return self.value.get("result") if self.status == "done" and isinstance(self.value, dict) else None


@dataclass(frozen=True)
class Send:
    conn: int
    text: str


@dataclass(frozen=True)
class Ping:
    conn: int


@dataclass(frozen=True)
class Close:
    conn: int
    code: int
    reason: str


@dataclass(frozen=True)
class Answer:
    outcome: Outcome


Action = Send | Ping | Close | Answer


@dataclass
class _Runner:
    conn: int
    runner_id: str
    name: str = ""
    types: tuple[str, ...] = ()
    registered: bool = False
    alive: bool = True  # answered the last ping (n8n's isAlive)
    accept_timeouts: int = 0


@dataclass
class _Offer:
    offer_id: str
    conn: int
    task_type: str
    valid_until: float


@dataclass(eq=False)
class _Task:
    handle: int
    spec: TaskSpec
    submitted_at: float
    request_deadline: float
    state: Literal["queued", "accepting", "running"] = "queued"
    task_id: str = ""
    conn: int = -1
    deadline: float = math.inf  # of the accept window, then of the task's timeout
    logs: list[tuple[Any, ...]] = field(default_factory=list)


class BrokerCore:
    """The decisions of n8n's task broker for a set of runner connections and tasks."""

    def __init__(self, auth_token: str, new_token: Callable[[], str], *, task_timeout_s: float = 60.0,
                 heartbeat_s: float = 30.0, request_timeout_s: float = 60.0, now: float = 0.0) -> None:
        self.auth_token = auth_token
        self._new_token = new_token
        self.task_timeout_s = task_timeout_s
        self.heartbeat_s = heartbeat_s
        self.request_timeout_s = request_timeout_s
        self._grants: dict[str, float] = {}  # unused grant -> expiry
        self._runners: dict[int, _Runner] = {}
        self._offers: list[_Offer] = []
        self._queue: deque[_Task] = deque()
        self._tasks: dict[int, _Task] = {}  # by handle: every unanswered task
        self._by_id: dict[str, _Task] = {}  # by task id: the ones a runner has
        self._next_task = 0
        self._next_heartbeat = now + heartbeat_s
        self.malformed = 0  # runner frames that did not parse
        self.stray = 0  # frames about a task or offer the sender does not hold
        self.stopped = False

    # -- HTTP: grants and upgrades --------------------------------------------------------

    def issue_grant(self, now: float) -> str:
        """A single-use grant, as n8n's launcher gets one for the runner it starts."""
        grant = self._new_token()
        self._grants = {g: t for g, t in self._grants.items() if t > now}
        self._grants[grant] = now + GRANT_S
        return grant

    def auth(self, body: bytes, now: float) -> tuple[int, dict[str, Any]]:
        """``POST /runners/auth``: (HTTP status, JSON body)."""
        try:
            token = json.loads(body).get("token")
        except (ValueError, AttributeError, UnicodeDecodeError, RecursionError):
            token = None
        if not isinstance(token, str) or token != self.auth_token:
            return 403, FORBIDDEN
        return 200, {"data": {"token": self.issue_grant(now)}}

    def admit(self, runner_id: str | None, authorization: str | None, now: float) -> int:
        """The upgrade's answer: 101, or the HTTP status n8n refuses it with. A grant is
        used up here."""
        if not runner_id:
            return 400
        if authorization is None:
            return 401
        scheme, _, grant = authorization.partition(" ")
        expiry = self._grants.pop(grant.strip(), None) if scheme.lower() == "bearer" else None
        if expiry is None or expiry <= now:
            return 403
        return 101

    # -- connections -----------------------------------------------------------------------

    def connected(self, conn: int, runner_id: str, now: float) -> list[Action]:
        """A WebSocket was admitted for ``runner_id``."""
        out: list[Action] = []
        for old in [r for r in self._runners.values() if r.runner_id == runner_id]:
            out += [Close(old.conn, CLOSE_NORMAL, "replaced by a new connection"),
                    *self.closed(old.conn, now)]
        if not self._runners:  # the first runner's first ping is a full interval away
            self._next_heartbeat = now + self.heartbeat_s
        self._runners[conn] = _Runner(conn, runner_id)
        return [*out, Send(conn, p.encode_broker(p.InfoRequest()))]

    def closed(self, conn: int, now: float) -> list[Action]:
        """The connection is gone (or closed by us); idempotent."""
        runner = self._runners.pop(conn, None)
        if runner is None:
            return []
        self._offers = [o for o in self._offers if o.conn != conn]
        out: list[Action] = []
        for task in [t for t in self._by_id.values() if t.conn == conn]:
            if task.state == "accepting":
                self._requeue(task, now)
            else:
                out.append(self._fail(task, f"the task runner ({runner.runner_id}) disconnected", now))
        return out + self._settle(now)

    def pong(self, conn: int) -> None:
        runner = self._runners.get(conn)
        if runner is not None:
            runner.alive = True

    def frame(self, conn: int, text: str, now: float) -> list[Action]:
        runner = self._runners.get(conn)
        if runner is None or self.stopped:
            return []
        try:
            msg = p.parse_runner(text)
        except N8nProtocolError:
            self.malformed += 1
            return []
        if not runner.registered:
            if isinstance(msg, p.RunnerInfo):
                runner.registered, runner.name, runner.types = True, msg.name, msg.types
                return [Send(conn, p.encode_broker(p.RunnerRegistered()))]
            return []
        match msg:
            case p.TaskOffer(offer_id, task_type, valid_for):
                until = math.inf if valid_for == -1 else now + valid_for / 1000.0
                self._offers.append(_Offer(offer_id, conn, task_type, until))
                return self._settle(now)
            case p.TaskAccepted(task_id):
                return self._accepted(conn, task_id, now)
            case p.TaskRejected(task_id):
                task = self._held(conn, task_id, "accepting")
                if task is None:
                    return []
                self._requeue(task, now)
                return self._settle(now)
            case p.TaskDataRequest(task_id, request_id, params):
                task = self._held(conn, task_id, "running")
                if task is None:
                    return []
                body = data.task_data(task.spec.code, task.spec.node_mode, list(task.spec.items),
                                      params, str(task.handle))
                return [Send(conn, p.encode_broker(p.TaskDataResponse(task_id, request_id, body)))]
            case p.NodeTypesRequest(task_id, request_id):
                if self._held(conn, task_id, "running") is None:
                    return []
                return [Send(conn, p.encode_broker(p.NodeTypes(task_id, request_id, [])))]
            case p.Rpc(call_id, task_id, name, params):
                return self._rpc(conn, call_id, task_id, name, params)
            case p.TaskDone(task_id, done):
                task = self._held(conn, task_id, "running")
                return [] if task is None else [self._answer(task, "done", done, "", now)]
            case p.TaskError(task_id, error):
                task = self._held(conn, task_id, "running")
                if task is None:
                    return []
                return [self._answer(task, "error", error, str(error.get("message", "")), now)]
            case _:  # runner:info again: n8n ignores it
                return []

    # -- callers ---------------------------------------------------------------------------

    def submit(self, handle: int, spec: TaskSpec, now: float) -> list[Action]:
        if handle in self._tasks:
            raise ValueError(f"handle {handle} is in use")
        task = _Task(handle, spec, now, now + self.request_timeout_s)
        if self.stopped:
            return [self._answer(task, "failed", None, "the mock broker is stopped", now)]
        self._tasks[handle] = task
        self._queue.append(task)
        return self._settle(now)

    def cancel(self, handle: int, now: float) -> list[Action]:
        """The caller gave up on a task: it ends ``failed`` now (if it had not ended)."""
        task = self._tasks.get(handle)
        if task is None:
            return []
        out: list[Action] = []
        if task.state != "queued":
            out.append(Send(task.conn, p.encode_broker(p.TaskCancel(task.task_id, "Task cancelled by user"))))
        return [*out, self._answer(task, "failed", None, "cancelled by its caller", now)]

    def stop(self, now: float) -> list[Action]:
        """n8n shutting down: drain and close every runner, fail every unanswered task."""
        self.stopped = True
        out: list[Action] = []
        for conn in list(self._runners):
            if self._runners[conn].registered:
                out.append(Send(conn, p.encode_broker(p.Drain())))
            out.append(Close(conn, CLOSE_GOING_AWAY, "the broker is shutting down"))
        for task in list(self._tasks.values()):
            out.append(self._answer(task, "failed", None, "the mock broker stopped", now))
        self._runners.clear()
        self._offers.clear()
        return out

    # -- time --------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        times = [t.deadline if t.state != "queued" else t.request_deadline for t in self._tasks.values()]
        if self._runners:
            times.append(self._next_heartbeat)
        return min(times) if times else None

    def tick(self, now: float) -> list[Action]:
        out: list[Action] = []
        for task in list(self._tasks.values()):
            if task.state == "queued" and task.request_deadline <= now:
                out.append(self._fail(task, f"no task runner took the task within "
                                            f"{self.request_timeout_s:g} s", now))
            elif task.state == "accepting" and task.deadline <= now:
                out += self._accept_timed_out(task, now)
            elif task.state == "running" and task.deadline <= now:
                out.append(Send(task.conn, p.encode_broker(
                    p.TaskCancel(task.task_id, "Task execution timed out"))))
                out.append(self._fail(task, f"Task execution timed out after "
                                            f"{self.task_timeout_s:g} seconds", now))
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + self.heartbeat_s
            for runner in list(self._runners.values()):
                if runner.alive:
                    runner.alive = False
                    out.append(Ping(runner.conn))
                else:
                    out += [Close(runner.conn, CLOSE_PROTOCOL_ERROR, "failed heartbeat check"),
                            *self.closed(runner.conn, now)]
        return out + self._settle(now)

    # -- views -------------------------------------------------------------------------------

    def runners(self) -> list[dict[str, Any]]:
        """The registered runners: id, name, types, open offers, tasks held."""
        return [{"id": r.runner_id, "name": r.name, "types": list(r.types),
                 "offers": sum(1 for o in self._offers if o.conn == r.conn),
                 "tasks": sum(1 for t in self._by_id.values() if t.conn == r.conn)}
                for r in self._runners.values() if r.registered]

    @property
    def unanswered(self) -> int:
        return len(self._tasks)

    # -- inside -------------------------------------------------------------------------------

    def _settle(self, now: float) -> list[Action]:
        out: list[Action] = []
        self._offers = [o for o in self._offers if o.valid_until > now]
        for task in list(self._queue):
            index = next((i for i, o in enumerate(self._offers) if o.task_type == task.spec.task_type), None)
            if index is None:
                continue
            offer = self._offers.pop(index)
            self._queue.remove(task)
            self._next_task += 1
            task.task_id, task.conn, task.state = f"mock{self._next_task:04d}", offer.conn, "accepting"
            task.deadline = now + ACCEPT_S
            self._by_id[task.task_id] = task
            out.append(Send(offer.conn, p.encode_broker(p.TaskOfferAccept(offer.offer_id, task.task_id))))
        return out

    def _held(self, conn: int, task_id: str, state: str) -> _Task | None:
        task = self._by_id.get(task_id)
        if task is None or task.conn != conn or task.state != state:
            self.stray += 1
            return None
        return task

    def _accepted(self, conn: int, task_id: str, now: float) -> list[Action]:
        task = self._held(conn, task_id, "accepting")
        if task is None:
            return []
        self._runners[conn].accept_timeouts = 0
        task.state, task.deadline = "running", now + self.task_timeout_s
        settings = p.Settings(code=task.spec.code, node_mode=task.spec.node_mode, workflow_mode="manual",
                              continue_on_fail=False,
                              items=list(task.spec.items) if task.spec.task_type == "python" else None,
                              node_name=data.NODE, node_id=data.NODE_ID,
                              workflow_name=data.WORKFLOW_NAME, workflow_id=data.WORKFLOW_ID,
                              chunk=p.Chunk(0, len(task.spec.items))
                              if task.spec.node_mode == "runOnceForEachItem" else None)
        return [Send(conn, p.encode_broker(p.TaskSettings(task_id, settings)))]

    def _accept_timed_out(self, task: _Task, now: float) -> list[Action]:
        conn = task.conn
        cancel = p.TaskCancel(task.task_id, "Acknowledgement window elapsed")
        out: list[Action] = [Send(conn, p.encode_broker(cancel))]
        self._requeue(task, now)
        self._offers = [o for o in self._offers if o.conn != conn]
        runner = self._runners.get(conn)
        if runner is not None:
            runner.accept_timeouts += 1
            if runner.accept_timeouts >= MAX_ACCEPT_TIMEOUTS:
                out += [Close(conn, CLOSE_PROTOCOL_ERROR, "the runner did not acknowledge 3 tasks in a row"),
                        *self.closed(conn, now)]
        return out

    def _rpc(self, conn: int, call_id: str, task_id: str, name: str, params: list[Any]) -> list[Action]:
        task = self._held(conn, task_id, "running")
        if task is None:
            return []
        if name == p.RPC_LOG:
            task.logs.append(tuple(params))
            return [Send(conn, p.encode_broker(p.RpcResponse(task_id, call_id, "success")))]
        return [Send(conn, p.encode_broker(p.RpcResponse(
            task_id, call_id, "error", f"the mock broker does not serve {name}")))]

    def _requeue(self, task: _Task, now: float) -> None:
        self._by_id.pop(task.task_id, None)
        task.state, task.task_id, task.conn, task.deadline = "queued", "", -1, math.inf
        self._queue.appendleft(task)

    def _fail(self, task: _Task, message: str, now: float) -> Answer:
        return self._answer(task, "failed", None, message, now)

    def _answer(self, task: _Task, status: Status, value: Any, message: str, now: float) -> Answer:
        self._tasks.pop(task.handle, None)
        self._by_id.pop(task.task_id, None)
        if task.state == "queued" and task in self._queue:
            self._queue.remove(task)
        runner = self._runners.get(task.conn)
        return Answer(Outcome(task.handle, status, value, message, task.submitted_at, now,
                              tuple(task.logs), runner.runner_id if runner else ""))
