"""The broker's pure core, rule by rule (numbers refer to the rules in broker/core.py).

No sockets and no clock: every test drives ``BrokerCore`` with messages and ``now``.
"""

from __future__ import annotations

from collections import Counter

import pytest

from broker import core as c
from broker import protocol as p
from broker.core import BrokerConfig, BrokerCore, Outcome, Send

C1, C2 = b"client-1", b"client-2"
R1, R2 = b"runner-1", b"runner-2"


def submit(id: str, runtime: str = "python", **kw) -> p.Submit:
    return p.Submit(id=id, runtime=runtime, code="return 1", data=b"\xc0", **kw)


def ready(slots: int = 1, runtimes: dict[str, str] | None = None, groups: tuple[str, ...] = (),
          name: str = "") -> p.Ready:
    return p.Ready(runtimes=runtimes or {"python": "3.11.7", "javascript": "0.10"}, slots=slots,
                   groups=groups, name=name)


def tasks_to(sends: list[Send], runner: bytes) -> list[str]:
    """Client ids (the part after the client prefix) of the tasks sent to ``runner``."""
    return [s.msg.task_id.split(":", 1)[1] for s in sends
            if s.to == runner and isinstance(s.msg, p.TaskMsg)]


def to_client(sends: list[Send], client: bytes, kind: type) -> list:
    return [s.msg for s in sends if s.to == client and isinstance(s.msg, kind)]


def status_of(msg: p.ResultMsg) -> tuple[str, str]:
    """A broker-made answer: its status and message (there is no envelope)."""
    assert msg.envelope is None
    return msg.status, msg.message


def done(task_key: str, envelope: bytes = b"env", status: str = p.OK) -> p.Done:
    return p.Done(task_key, envelope, status)


def key(client: bytes, id: str) -> str:
    return f"{client.hex()}:{id}"


def queue_then_dispatch(core: BrokerCore, submits: list[p.Submit], slots: int) -> list[str]:
    """Queue everything with no runner, then register one runner with ``slots``; run order."""
    for s in submits:
        assert core.on_client(C1, s, 0.0) == []
    return tasks_to(core.on_runner(R1, ready(slots=slots), 0.0), R1)


# -- rule 1: priority, then FIFO ------------------------------------------------------------


@pytest.mark.parametrize(
    ("submits", "slots", "expected"),
    [
        ([submit("a"), submit("b"), submit("c")], 3, ["a", "b", "c"]),
        ([submit("a"), submit("b", priority=5), submit("c")], 3, ["b", "a", "c"]),
        ([submit("a", priority=-1), submit("b"), submit("c", priority=1)], 2, ["c", "b"]),
        ([submit("a", priority=2), submit("b", priority=2), submit("c", priority=9)], 3,
         ["c", "a", "b"]),
    ],
    ids=["fifo", "priority-first", "only-as-many-as-slots", "fifo-within-priority"],
)
def test_dispatch_order_is_priority_then_fifo(submits, slots, expected):
    assert queue_then_dispatch(BrokerCore(), submits, slots) == expected


def test_a_freed_slot_takes_the_highest_priority_waiting_task():
    core = BrokerCore()
    core.on_runner(R1, ready(slots=1), 0.0)
    assert tasks_to(core.on_client(C1, submit("first"), 0.0), R1) == ["first"]
    core.on_client(C1, submit("low"), 0.1)
    core.on_client(C1, submit("high", priority=3), 0.2)
    out = core.on_runner(R1, done(key(C1, "first"), b"env"), 0.3)
    assert to_client(out, C1, p.ResultMsg)[0].envelope == b"env"
    assert tasks_to(out, R1) == ["high"]


# -- rule 2: bounded queue ------------------------------------------------------------------


def test_queue_full_rejects_at_once_with_the_count():
    core = BrokerCore(BrokerConfig(max_queued=2))
    core.on_client(C1, submit("a"), 0.0)
    core.on_client(C1, submit("b"), 0.0)
    out = core.on_client(C1, submit("c"), 0.0)
    assert to_client(out, C1, p.Rejected) == [p.Rejected("c", "queue full (2 waiting)", c.QUEUE_FULL)]
    assert set(core.queued) == {key(C1, "a"), key(C1, "b")}


def test_a_task_id_in_use_is_rejected():
    core = BrokerCore()
    core.on_client(C1, submit("a"), 0.0)
    out = core.on_client(C1, submit("a"), 0.0)
    assert to_client(out, C1, p.Rejected)[0].message == "task id 'a' is already in use"
    # the same id from another client is another task
    assert core.on_client(C2, submit("a"), 0.0) == []
    assert len(core.queued) == 2


# -- rule 3: no runner could ever run it ----------------------------------------------------


@pytest.mark.parametrize(
    ("task", "message"),
    [
        (submit("t", runtime="ruby", wait_for_runner=False),
         "no runner for runtime 'ruby': this broker's runners serve javascript 0.10, python "
         "3.11.7; start them with --runtimes naming ruby (`sandbox serve`, `sandbox runner`; "
         "embedded: Client(runtimes=...))"),
        (submit("t", group="gpu", wait_for_runner=False),
         "no runner for runtime 'python' in group 'gpu'"),
        (submit("t", version="3.12", wait_for_runner=False),
         "no runner for runtime 'python' version 3.12*: this broker's runners serve "
         "javascript 0.10, python 3.11.7"),
    ],
    ids=["runtime", "group", "version"],
)
def test_no_runner_rejects_at_once_when_the_task_will_not_wait(task, message):
    core = BrokerCore()
    core.on_runner(R1, ready(groups=("cpu",)), 0.0)
    out = core.on_client(C1, task, 0.0)
    assert to_client(out, C1, p.Rejected) == [p.Rejected("t", message, c.NO_RUNNER)]
    assert not core.queued


@pytest.mark.parametrize(
    ("task", "message"),
    [
        (submit("t", runtime="pyodide"),
         "no runner for runtime 'pyodide': this broker's runners serve javascript 0.10, "
         "python 3.11.7; start them with --runtimes naming pyodide (`sandbox serve`, "
         "`sandbox runner`; embedded: Client(runtimes=...))"),
        (submit("t", version="3.12"),
         "no runner for runtime 'python' version 3.12*: this broker's runners serve "
         "javascript 0.10, python 3.11.7"),
    ],
    ids=["runtime", "version"],
)
def test_a_runtime_no_runner_ever_served_is_rejected_at_once_though_the_task_would_wait(
        task, message):
    core = BrokerCore()
    core.on_runner(R1, ready(), 0.0)
    out = core.on_client(C1, task, 0.0)
    assert to_client(out, C1, p.Rejected) == [p.Rejected("t", message, "no_runner")]
    assert not core.queued


def test_a_runtime_served_before_waits_for_its_runner_to_come_back():
    # the javascript runner restarts: its tasks wait for it, they are not refused
    core = BrokerCore()
    core.on_runner(R1, ready(runtimes={"python": "3.11.7"}), 0.0)
    core.on_runner(R2, ready(runtimes={"javascript": "0.10"}), 0.0)
    core.on_runner(R2, p.Bye(), 1.0)
    assert core.on_client(C1, submit("t", runtime="javascript"), 2.0) == []
    assert tasks_to(core.on_runner(R2, ready(runtimes={"javascript": "0.10"}), 3.0), R2) == ["t"]


def test_with_no_runner_registered_yet_every_task_waits():
    # a daemon's runners are still starting: nothing is known to be left out yet
    core = BrokerCore()
    assert core.on_client(C1, submit("t", runtime="pyodide"), 0.0) == []
    assert tasks_to(core.on_runner(R1, ready(runtimes={"pyodide": "3.11.3"}), 1.0), R1) == ["t"]


def test_no_runner_waits_when_the_task_will_wait_and_runs_when_one_arrives():
    core = BrokerCore()
    assert core.on_client(C1, submit("t", group="gpu"), 0.0) == []
    assert tasks_to(core.on_runner(R1, ready(groups=("cpu",)), 1.0), R1) == []
    assert tasks_to(core.on_runner(R2, ready(groups=("gpu",)), 2.0), R2) == ["t"]


# -- rule 4: queue deadline with a reason ---------------------------------------------------


@pytest.mark.parametrize(
    ("setup", "task", "message"),
    [
        ("none", submit("t", group="gpu"),
         "no runner for runtime 'python' in group 'gpu' (waited 30 s)"),
        ("busy", submit("t"), "all 1 slots busy for 30 s"),
        ("lane", submit("t", lane="eval"), "lane 'eval' at its cap of 1 for 30 s"),
        ("busy", submit("t", queue_timeout_s=5), "all 1 slots busy for 5 s"),
    ],
    ids=["no-runner", "slots-busy", "lane-cap", "own-timeout"],
)
def test_queue_deadline_rejects_with_why_nothing_ran(setup, task, message):
    core = BrokerCore(BrokerConfig(lane_caps={"eval": 1}))
    if setup in ("busy", "lane"):
        core.on_runner(R1, ready(slots=1 if setup == "busy" else 4), 0.0)
        core.on_client(C2, submit("holder", lane="eval" if setup == "lane" else "default"), 0.0)
    core.on_client(C1, task, 0.0)
    wait = task.queue_timeout_s or 30
    core.on_runner(R1, p.RunnerHeartbeat(), wait - 0.5) if setup != "none" else None
    assert to_client(core.tick(wait - 0.1), C1, p.Rejected) == []
    if setup != "none":
        core.on_runner(R1, p.RunnerHeartbeat(), wait - 0.05)
    assert to_client(core.tick(wait), C1, p.Rejected) == [p.Rejected("t", message, c.QUEUE_TIMEOUT)]
    assert not core.queued


def test_global_in_flight_cap_is_named_when_it_is_the_reason():
    core = BrokerCore(BrokerConfig(max_in_flight=1, queue_timeout_s=1, heartbeat_s=10))
    core.on_runner(R1, ready(slots=4), 0.0)
    core.on_client(C1, submit("a"), 0.0)
    core.on_client(C1, submit("b"), 0.0)
    assert to_client(core.tick(1.0), C1, p.Rejected) == [
        p.Rejected("b", "the broker's 1 in-flight slots busy for 1 s", c.QUEUE_TIMEOUT)]


# -- rule 5: placement ----------------------------------------------------------------------


def test_a_task_goes_to_the_runner_with_most_free_slots():
    core = BrokerCore()
    core.on_runner(R1, ready(slots=1), 0.0)
    core.on_runner(R2, ready(slots=3), 0.0)
    assert tasks_to(core.on_client(C1, submit("a"), 0.0), R2) == ["a"]
    assert tasks_to(core.on_client(C1, submit("b"), 0.0), R2) == ["b"]
    out = core.on_client(C1, submit("c"), 0.0)  # R1 1 free, R2 1 free: either, exactly one
    assert len(tasks_to(out, R1) + tasks_to(out, R2)) == 1


@pytest.mark.parametrize(
    ("runner_runtimes", "runner_groups", "task", "placed"),
    [
        ({"python": "3.11.7"}, (), submit("t"), True),
        ({"python": "3.11.7"}, (), submit("t", runtime="javascript"), False),
        ({"python": "3.11.7"}, (), submit("t", version="3.11"), True),
        ({"python": "3.11.7"}, (), submit("t", version="3.1"), True),  # a prefix, as documented
        ({"python": "3.11.7"}, (), submit("t", version="3.12"), False),
        ({"python": "3.11.7"}, ("gpu",), submit("t", group="gpu"), True),
        ({"python": "3.11.7"}, ("gpu",), submit("t"), True),  # no group named: any runner
        ({"python": "3.11.7"}, (), submit("t", group="gpu"), False),
    ],
    ids=["runtime", "other-runtime", "version-prefix", "short-prefix", "other-version",
         "group", "any-group", "missing-group"],
)
def test_a_task_runs_only_where_runtime_version_and_group_match(runner_runtimes, runner_groups,
                                                                task, placed):
    core = BrokerCore()
    core.on_runner(R1, ready(runtimes=runner_runtimes, groups=runner_groups), 0.0)
    assert tasks_to(core.on_client(C1, task, 0.0), R1) == (["t"] if placed else [])


# -- rule 6: caps, no head-of-line blocking -------------------------------------------------


def test_a_runner_is_never_oversubscribed():
    core = BrokerCore()
    core.on_runner(R1, ready(slots=2), 0.0)
    sent = []
    for i in range(5):
        sent += tasks_to(core.on_client(C1, submit(str(i)), 0.0), R1)
    assert sent == ["0", "1"]
    assert len(core.runners[R1].running) == 2 and len(core.queued) == 3


def test_lane_cap_limits_its_lane_and_not_the_others():
    core = BrokerCore(BrokerConfig(lane_caps={"eval": 1}))
    core.on_runner(R1, ready(slots=4), 0.0)
    sent = []
    for s in [submit("e1", lane="eval"), submit("e2", lane="eval"), submit("p1", lane="prod"),
              submit("p2")]:
        sent += tasks_to(core.on_client(C1, s, 0.0), R1)
    assert sent == ["e1", "p1", "p2"]
    out = core.on_runner(R1, done(key(C1, "e1"), b"x"), 0.1)
    assert tasks_to(out, R1) == ["e2"]


def test_global_cap_limits_everything():
    core = BrokerCore(BrokerConfig(max_in_flight=2))
    core.on_runner(R1, ready(slots=8), 0.0)
    sent = []
    for i in range(4):
        sent += tasks_to(core.on_client(C1, submit(str(i)), 0.0), R1)
    assert sent == ["0", "1"]


def test_a_task_that_cannot_be_placed_does_not_block_those_behind_it():
    core = BrokerCore()
    core.on_runner(R1, ready(slots=2, runtimes={"javascript": "0.10"}), 0.0)
    out = core.on_client(C1, submit("py", priority=9), 0.0)
    assert tasks_to(out, R1) == []
    assert tasks_to(core.on_client(C1, submit("js", runtime="javascript"), 0.0), R1) == ["js"]


# -- rules 7-9: runners, liveness, heartbeats -----------------------------------------------


def test_runner_is_lost_after_liveness_missed_heartbeats():
    core = BrokerCore(BrokerConfig(heartbeat_s=1.0, liveness=3))
    core.on_runner(R1, ready(), 0.0)
    core.tick(3.0)
    assert R1 in core.runners
    core.on_runner(R1, p.RunnerHeartbeat(idle_children=4), 2.9)  # any message refreshes it
    core.tick(5.8)
    assert R1 in core.runners and core.idle_children() == 4
    core.tick(5.95)
    assert R1 not in core.runners
    assert core.counters["runners_lost"] == 1


def test_broker_sends_heartbeats_every_interval():
    core = BrokerCore(BrokerConfig(heartbeat_s=1.0))
    core.on_runner(R1, ready(), 0.0)
    beats = [t for t in (0.0, 0.5, 1.0, 1.5, 2.0) if any(
        s.to == R1 and isinstance(s.msg, p.BrokerHeartbeat) for s in core.tick(t))]
    assert beats == [0.0, 1.0, 2.0]


@pytest.mark.parametrize(
    ("idempotent", "max_attempts", "outcome"),
    [(True, 3, "retried"), (True, 1, "crashed"), (False, 3, "crashed")],
    ids=["idempotent-retried", "no-attempts-left", "not-idempotent"],
)
def test_lost_runner_retries_idempotent_tasks_and_crashes_the_others(idempotent, max_attempts,
                                                                      outcome):
    core = BrokerCore(BrokerConfig(heartbeat_s=1.0, liveness=2, runner_hold_s=0))
    core.on_runner(R1, ready(), 0.0)
    core.on_client(C1, submit("t", idempotent=idempotent, max_attempts=max_attempts), 0.0)
    core.on_runner(R2, ready(), 1.5)
    out = core.tick(2.5)  # R1 silent for 2.5 s > 2 s; R2 heard from 1 s ago
    if outcome == "retried":
        assert tasks_to(out, R2) == ["t"] and to_client(out, C1, p.ResultMsg) == []
        assert core.running[key(C1, "t")].attempts == 2
        finished = core.on_runner(R2, done(key(C1, "t"), b"ok"), 2.6)
        assert to_client(finished, C1, p.ResultMsg) == [
            p.ResultMsg("t", p.OK, "", b"ok", 2, 2500.0)]  # waited 2.5 s before attempt 2
    else:
        [result] = to_client(out, C1, p.ResultMsg)
        status, message = status_of(result)
        assert status == p.CRASHED and "runner lost" in message
        assert tasks_to(out, R2) == [] and not core.running


def test_retries_stop_after_max_attempts():
    core = BrokerCore()
    core.on_client(C1, submit("t", idempotent=True, max_attempts=2), 0.0)
    core.on_runner(R1, ready(), 0.0)
    out = core.on_runner(R1, p.Bye(), 0.1)  # attempt 1 lost: retried, but no runner now
    assert to_client(out, C1, p.ResultMsg) == [] and key(C1, "t") in core.queued
    core.on_runner(R2, ready(), 0.2)
    [result] = to_client(core.on_runner(R2, p.Bye(), 0.3), C1, p.ResultMsg)
    assert result.attempts == 2 and status_of(result)[0] == p.CRASHED


def test_re_registration_keeps_the_runners_tasks_and_names_them_to_it():
    """Rule 9r: the same identity registering again is the same process on a new connection."""
    core = BrokerCore()
    core.on_runner(R1, ready(slots=2), 0.0)
    core.on_client(C1, submit("t"), 0.0)
    out = core.on_runner(R1, ready(slots=2), 1.0)
    assert to_client(out, C1, p.ResultMsg) == []
    assert [s.msg for s in out if s.to == R1] == [p.Holding((key(C1, "t"),))]
    assert core.runners[R1].running == {key(C1, "t")}
    finished = core.on_runner(R1, done(key(C1, "t"), b"ok"), 1.1)
    assert to_client(finished, C1, p.ResultMsg) == [p.ResultMsg("t", p.OK, "", b"ok", 1, 0.0)]


def test_bye_removes_the_runner_and_counts_it_as_left_not_lost():
    """[21.7] A runner stopped with SIGTERM said bye and was counted lost all the same."""
    core = BrokerCore()
    core.on_runner(R1, ready(), 0.0)
    core.on_runner(R1, p.Bye(), 0.1)
    assert core.runners == {}
    assert (core.counters["runners_left"], core.counters["runners_lost"]) == (1, 0)


def test_a_silent_runner_counts_as_lost_not_left():
    core = BrokerCore(BrokerConfig(heartbeat_s=1.0, liveness=2))
    core.on_runner(R1, ready(), 0.0)
    core.tick(2.1)
    assert (core.counters["runners_left"], core.counters["runners_lost"]) == (0, 1)


def test_messages_from_an_unknown_runner_are_dropped_and_counted():
    core = BrokerCore()
    assert core.on_runner(R1, done("x:y", b""), 0.0) == []
    assert core.on_runner(R1, p.RunnerHeartbeat(), 0.0) == []
    assert core.counters["dropped_unknown_runner"] == 2


# -- rule 10: results -----------------------------------------------------------------------


def test_done_forwards_the_envelope_untouched_and_frees_the_slot():
    core = BrokerCore()
    core.on_runner(R1, ready(), 0.0)
    core.on_client(C1, submit("t"), 0.0)
    envelope = b"\x85opaque envelope bytes"
    out = core.on_runner(R1, done(key(C1, "t"), envelope, p.TIMEOUT), 0.1)
    assert to_client(out, C1, p.ResultMsg) == [p.ResultMsg("t", p.TIMEOUT, "", envelope, 1, 0.0)]
    assert core.runners[R1].free == 1 and not core.running


def test_an_envelope_too_large_to_forward_ends_as_output_limit(monkeypatch):
    monkeypatch.setattr(p, "MAX_ENVELOPE_BYTES", 10)
    core = BrokerCore()
    core.on_runner(R1, ready(), 0.0)
    core.on_client(C1, submit("t"), 0.0)
    [result] = to_client(core.on_runner(R1, done(key(C1, "t"), b"x" * 11), 0.1), C1, p.ResultMsg)
    assert status_of(result) == (p.OUTPUT_LIMIT, "the result (11 bytes) is larger than the "
                                                 "broker forwards (10 bytes)")
    assert core.take_outcomes() == [Outcome("python", "default", p.OUTPUT_LIMIT, c.FRAME_CAP,
                                            0.0, 0.1)]


def test_done_from_a_runner_that_does_not_hold_the_task_is_dropped():
    core = BrokerCore()
    core.on_runner(R1, ready(), 0.0)
    core.on_runner(R2, ready(), 0.0)
    core.on_client(C1, submit("t"), 0.0)
    holder = R1 if core.runners[R1].running else R2
    other = R2 if holder == R1 else R1
    assert to_client(core.on_runner(other, done(key(C1, "t"), b"x"), 0.1), C1, p.ResultMsg) == []
    assert core.counters["dropped_stale_done"] == 1 and key(C1, "t") in core.running


# -- rule 11: cancellation in each state ----------------------------------------------------


def test_cancel_a_queued_task_removes_it():
    core = BrokerCore()
    core.on_client(C1, submit("t"), 0.0)
    out = core.on_client(C1, p.Cancel("t"), 0.1)
    assert to_client(out, C1, p.Rejected) == [p.Rejected("t", "cancelled before it ran", c.CANCELLED)]
    assert not core.queued
    assert tasks_to(core.on_runner(R1, ready(), 0.2), R1) == []


def test_cancel_a_running_task_kills_it_and_answers_at_once():
    core = BrokerCore()
    core.on_runner(R1, ready(), 0.0)
    core.on_client(C1, submit("t"), 0.0)
    core.on_client(C1, submit("next"), 0.0)
    out = core.on_client(C1, p.Cancel("t"), 0.1)
    assert Send(R1, p.CancelTask(key(C1, "t"))) in out
    [result] = to_client(out, C1, p.ResultMsg)
    assert status_of(result) == (p.CRASHED, "cancelled while running")
    # the slot is freed when the runner reports; its late result is not sent again
    out = core.on_runner(R1, done(key(C1, "t"), b"late"), 0.2)
    assert to_client(out, C1, p.ResultMsg) == []
    assert tasks_to(out, R1) == ["next"]


@pytest.mark.parametrize("state", ["unknown", "finished", "cancelled-twice", "other-client"])
def test_cancel_of_an_unknown_or_finished_task_changes_nothing_and_is_not_answered(state):
    """A late cancel must not look like a second answer (it replaced real results)."""
    core = BrokerCore()
    core.on_runner(R1, ready(), 0.0)
    if state != "unknown":
        core.on_client(C1, submit("t"), 0.0)
    if state == "finished":
        core.on_runner(R1, done(key(C1, "t"), b"x"), 0.1)
    if state == "cancelled-twice":
        core.on_client(C1, p.Cancel("t"), 0.1)
    client = C2 if state == "other-client" else C1
    core.take_outcomes()
    assert core.on_client(client, p.Cancel("t"), 0.2) == []
    assert core.counters["cancel_unknown"] == 1 and core.take_outcomes() == []
    if state == "other-client":
        assert key(C1, "t") in core.running  # one client cannot cancel another's task


# -- the rest -------------------------------------------------------------------------------


def test_ping_is_answered_with_pong():
    assert BrokerCore().on_client(C1, p.Ping(), 0.0) == [Send(C1, p.Pong(), droppable=True)]


def test_a_runner_message_from_a_client_is_rejected():
    out = BrokerCore().on_client(C1, done("x", b""), 0.0)
    assert out == [Send(C1, p.Rejected(None, "rejected: a client may not send 'done'"),
                        droppable=True)]


def test_queue_depths_per_lane():
    core = BrokerCore()
    for s in [submit("a"), submit("b", lane="eval"), submit("c", lane="eval")]:
        core.on_client(C1, s, 0.0)
    assert core.queue_depths() == {"default": 1, "eval": 2}
    core.on_client(C1, p.Cancel("b"), 0.1)
    core.on_client(C1, p.Cancel("c"), 0.1)
    assert core.queue_depths() == {"default": 1, "eval": 0}  # an emptied lane reads 0


def test_every_submitted_task_gets_exactly_one_answer_and_one_outcome_under_churn():
    """Random interleavings of submits (with and without caller deadlines), cancels, dones,
    lost and stale runners, clients that vanish, full client sockets and a drain: a model
    check. Every task gets at most one answer, exactly one outcome, and an answer unless
    its client was gone."""
    import random

    rng = random.Random(1)
    clients = (C1, C2)
    for run in range(60):
        core = BrokerCore(BrokerConfig(heartbeat_s=1.0, liveness=2, queue_timeout_s=5,
                                       max_queued=20, max_per_client=12,
                                       max_workers_per_principal=2))
        answers: dict[str, int] = {}
        owner: dict[str, bytes] = {}
        gone: set[str] = set()  # tasks whose client vanished before their answer
        outcomes: dict[str, int] = {}
        now = 0.0

        def record(sends: list[Send], answers: dict[str, int] = answers,
                   outcomes: dict[str, int] = outcomes, core: BrokerCore = core,
                   owner: dict[str, bytes] = owner) -> None:
            for s in sends:
                if isinstance(s.msg, (p.ResultMsg, p.Rejected)) and s.msg.id:
                    assert s.to == owner[s.msg.id]  # an answer goes to its own client only
                    answers[s.msg.id] = answers.get(s.msg.id, 0) + 1
            for outcome in core.take_outcomes():
                outcomes[outcome.lane] = outcomes.get(outcome.lane, 0) + 1  # lane = task id

        for step in range(200):
            now += rng.random() * 0.3
            action = rng.random()
            client = rng.choice(clients)
            if action < 0.33:
                tid = f"t{step}"
                owner[tid] = client
                deadline = rng.choice([None, None, rng.random() * 4])
                record(core.on_client(client, submit(
                    tid, lane=tid, idempotent=rng.random() < 0.5, max_attempts=rng.randint(1, 3),
                    deadline_s=deadline, isolation=rng.choice(["process", "worker"])), now))
            elif action < 0.42 and owner:
                tid = rng.choice(sorted(owner))
                sends = core.on_client(owner[tid], p.Cancel(tid), now)
                if answers.get(tid):  # a cancel of something answered changes nothing
                    assert sends == []
                record(sends)
            elif action < 0.7:
                runner = rng.choice([R1, R2])
                if runner in core.runners and core.runners[runner].running:
                    task_key = rng.choice(sorted(core.runners[runner].running))
                    record(core.on_runner(runner, done(task_key, b"e"), now))
                else:  # a done for a task this runner does not hold: no outcome
                    record(core.on_runner(runner, done(key(client, "t0"), b"e"), now))
            elif action < 0.8:
                record(core.on_runner(rng.choice([R1, R2]), ready(slots=rng.randint(1, 3)), now))
            elif action < 0.84:
                runner = rng.choice([R1, R2])
                if runner in core.runners:
                    record(core.on_runner(runner, p.Bye(), now))
            elif action < 0.86:
                state = core.clients.get(client)
                gone |= {t for t, o in owner.items() if o == client and not answers.get(t)}
                record(core.on_client_gone(client, now))
                assert state is None or client not in core.clients
            elif action < 0.88:
                core.on_backlog(client, rng.choice([0, 0, 5, 20]))
            elif action < 0.89 and run % 2:
                record(core.drain(now))
            else:
                for runner in list(core.runners):
                    if rng.random() < 0.7:
                        core.on_runner(runner, p.RunnerHeartbeat(), now)
                record(core.tick(now))
            # every queued task waits in the dispatch order or parked, once (rule 7)
            waiting = [e[2] for e in core._order] + [e[2] for q in core._parked.values() for e in q]
            assert sorted(waiting) == sorted(core.queued)
            # the counts dispatch reads, kept as tasks come and go, are what a count finds
            running = list(core.running.values())
            assert (core.running.workers, core.running.lanes) == (
                Counter(t.principal for t in running if t.submit.isolation == "worker"),
                Counter(t.submit.lane for t in running))
        # the end: one live runner finishes everything, or the grace ends
        for client in clients:
            core.on_backlog(client, 0)
        record(core.on_runner(R1, ready(slots=50), now))
        for _ in range(100):
            now += 0.5
            for runner in list(core.runners):
                core.on_runner(runner, p.RunnerHeartbeat(), now)
                for task_key in sorted(core.runners[runner].running):
                    record(core.on_runner(runner, done(task_key, b"e"), now))
            record(core.tick(now))
        record(core.shutdown(now))
        assert not core.queued and not core.running and not core.clients and not core._parked
        assert all(n == 1 for n in answers.values()), answers
        assert set(answers) | gone == set(owner)
        assert outcomes == dict.fromkeys(owner, 1)


def test_a_long_backlog_keeps_its_order_and_deadlines():
    core = BrokerCore(BrokerConfig(queue_timeout_s=10, heartbeat_s=100))
    core.on_runner(R1, ready(slots=1), 0.0)
    for i in range(3000):
        core.on_client(C1, submit(f"t{i}", priority=i % 3, queue_timeout_s=10 + i % 5), 0.0)
    first = core.on_runner(R1, done(key(C1, "t0"), b"x"), 1.0)
    assert tasks_to(first, R1) == ["t2"]  # highest priority, earliest submitted (t0 ran first)
    rejected = to_client(core.tick(10.0), C1, p.Rejected)
    assert {r.id for r in rejected} == {f"t{i}" for i in range(3000) if i % 5 == 0} - {"t0"}
    assert len(core.queued) == 3000 - 2 - len(rejected)


def test_deadlines_hold_after_many_tasks_came_and_went():
    """Finished tasks leave stale deadline entries behind; their compaction loses nothing."""
    core = BrokerCore(BrokerConfig(queue_timeout_s=5, heartbeat_s=100))
    core.on_runner(R1, ready(slots=1), 0.0)
    core.on_client(C2, submit("holder"), 0.0)  # keeps the only slot busy
    for i in range(2500):
        core.on_client(C1, submit(f"t{i}"), 0.0)
        core.on_client(C1, p.Cancel(f"t{i}"), 0.0)
    core.on_client(C1, submit("last", queue_timeout_s=1), 0.5)
    assert len(core._deadlines) < 2500  # compacted
    assert to_client(core.tick(1.4), C1, p.Rejected) == []
    assert to_client(core.tick(1.5), C1, p.Rejected) == [
        p.Rejected("last", "all 1 slots busy for 1 s", c.QUEUE_TIMEOUT)]


# -- rule 2: the per-client cap, counting what its socket has not taken ---------------------


def test_a_client_at_its_cap_is_rejected_with_the_count_and_others_are_not():
    core = BrokerCore(BrokerConfig(max_per_client=2))
    core.on_runner(R1, ready(slots=1), 0.0)
    core.on_client(C1, submit("a"), 0.0)  # running
    core.on_client(C1, submit("b"), 0.0)  # queued
    out = core.on_client(C1, submit("c"), 0.0)
    assert to_client(out, C1, p.Rejected) == [p.Rejected(
        "c", "this client holds 2 unanswered tasks, its cap (max_per_client 2)", c.CLIENT_CAP)]
    assert core.on_client(C2, submit("c"), 0.0) == []  # another client is not held back
    core.on_runner(R1, done(key(C1, "a")), 0.1)  # answered: room for one more
    assert to_client(core.on_client(C1, submit("d"), 0.1), C1, p.Rejected) == []


def test_answers_waiting_for_a_full_client_socket_count_against_its_cap():
    core = BrokerCore(BrokerConfig(max_per_client=3))
    core.on_backlog(C1, 3)  # three answers its socket has not taken yet
    out = core.on_client(C1, submit("a"), 0.0)
    assert to_client(out, C1, p.Rejected)[0].message.startswith("this client holds 3 ")
    assert [o.reason for o in core.take_outcomes()] == [c.CLIENT_CAP]
    core.on_backlog(C1, 0)  # its socket took them
    assert core.on_client(C1, submit("b"), 0.0) == [] and key(C1, "b") in core.queued


def test_only_refusals_are_marked_as_droppable_never_an_accepted_tasks_answer():
    """[21.4] What the shell may drop for a client that does not read: answers to what the
    core did not take on. Everything it accepted is answered unmarked, however it ends."""
    core = BrokerCore(BrokerConfig(max_per_client=2, queue_timeout_s=1, heartbeat_s=100))
    core.on_runner(R1, ready(slots=1), 0.0)
    sends = core.on_client(C1, submit("ran"), 0.0)  # accepted, runs
    sends += core.on_client(C1, submit("waits"), 0.0)  # accepted, queued
    sends += core.on_client(C1, submit("over"), 0.0)  # refused: the client's cap
    sends += core.on_client(C1, p.Ping(), 0.0)
    sends += core.on_malformed(C1, "not a message", None)
    sends += core.tick(1.0)  # "waits" is rejected after its queue wait: it was accepted
    sends += core.on_runner(R1, done(key(C1, "ran")), 1.1)
    marked = [(type(s.msg).__name__, getattr(s.msg, "id", None), s.droppable)
              for s in sends if s.to == C1]
    assert sorted(marked, key=str) == sorted([
        ("Rejected", "over", True), ("Pong", None, True), ("Rejected", None, True),
        ("Rejected", "waits", False), ("ResultMsg", "ran", False)], key=str)


# -- rule 5: the caller's deadline -----------------------------------------------------------


def test_a_queued_task_whose_caller_stopped_waiting_is_dropped():
    core = BrokerCore(BrokerConfig(queue_timeout_s=30, heartbeat_s=100))
    core.on_client(C1, submit("t", deadline_s=2.0), 0.0)
    assert to_client(core.tick(1.9), C1, p.Rejected) == []
    [rejected] = to_client(core.tick(2.0), C1, p.Rejected)
    assert rejected.message == ("nobody waits for it any more (the caller's deadline passed "
                                "before it ran)")
    assert not core.queued
    assert tasks_to(core.on_runner(R1, ready(), 2.1), R1) == []  # it never runs
    assert [o.reason for o in core.take_outcomes()] == [c.EXPIRED]


def test_a_running_task_whose_caller_stopped_waiting_is_cancelled():
    core = BrokerCore(BrokerConfig(heartbeat_s=100))
    core.on_runner(R1, ready(), 0.0)
    core.on_client(C1, submit("t", deadline_s=3.0), 0.0)
    out = core.tick(3.0)
    assert Send(R1, p.CancelTask(key(C1, "t"))) in out
    [result] = to_client(out, C1, p.ResultMsg)
    assert status_of(result) == (p.CRASHED, "cancelled: nobody waits for it any more (the "
                                            "caller's deadline passed)")
    # the runner's late report frees the slot and is not a second outcome
    core.on_runner(R1, done(key(C1, "t")), 3.1)
    assert core.runners[R1].free == 1
    assert [(o.status, o.reason) for o in core.take_outcomes()] == [(p.CRASHED, c.EXPIRED)]


def test_a_lost_idempotent_task_is_not_retried_past_its_callers_deadline():
    core = BrokerCore(BrokerConfig(heartbeat_s=100))
    core.on_runner(R1, ready(), 0.0)
    core.on_client(C1, submit("t", idempotent=True, max_attempts=3, deadline_s=1.0), 0.0)
    out = core.on_runner(R1, p.Bye(), 1.5)
    [result] = to_client(out, C1, p.ResultMsg)
    assert status_of(result)[0] == p.CRASHED and not core.queued


# -- rule 12: a cancel never replaces a result ------------------------------------------------


def test_a_cancel_after_the_result_left_sends_nothing_more():
    core = BrokerCore()
    core.on_runner(R1, ready(slots=2), 0.0)
    core.on_client(C1, submit("fast"), 0.0)
    core.on_client(C1, submit("slow"), 0.0)
    out = core.on_runner(R1, done(key(C1, "fast"), b"real"), 0.1)
    assert [m.envelope for m in to_client(out, C1, p.ResultMsg)] == [b"real"]
    assert core.on_client(C1, p.Cancel("fast"), 0.2) == []


# -- rule 13: a client that cannot be reached ---------------------------------------------------


def test_a_gone_clients_tasks_are_dropped_and_cancelled_without_answers():
    core = BrokerCore()
    core.on_runner(R1, ready(slots=1), 0.0)
    core.on_client(C1, submit("running"), 0.0)
    core.on_client(C1, submit("queued"), 0.0)
    core.on_client(C2, submit("other"), 0.0)
    out = core.on_client_gone(C1, 0.5)
    assert Send(R1, p.CancelTask(key(C1, "running"))) in out
    assert to_client(out, C1, p.ResultMsg) == [] and to_client(out, C1, p.Rejected) == []
    assert key(C1, "queued") not in core.queued and key(C2, "other") in core.queued
    # [21.7] nobody's failure: counted as cancelled, not as crashed or rejected
    assert [(o.status, o.reason) for o in core.take_outcomes()] == [
        (c.CANCELLED_STATUS, c.CLIENT_GONE)] * 2
    # the cancelled task's slot frees when the runner reports; then the other client runs
    assert tasks_to(core.on_runner(R1, done(key(C1, "running")), 0.6), R1) == ["other"]


def test_a_runner_the_socket_cannot_reach_is_lost():
    core = BrokerCore(BrokerConfig(runner_hold_s=0))
    core.on_runner(R1, ready(), 0.0)
    core.on_client(C1, submit("t"), 0.0)
    [result] = to_client(core.on_runner_gone(R1, 0.1), C1, p.ResultMsg)
    assert status_of(result) == (p.CRASHED, "runner lost (disconnected) while running the task")
    assert R1 not in core.runners


# -- rule 14: draining --------------------------------------------------------------------------


def test_a_drain_answers_every_queued_task_at_once_and_starts_none():
    core = BrokerCore(BrokerConfig(heartbeat_s=100))
    core.on_runner(R1, ready(slots=1), 0.0)
    core.on_client(C1, submit("running"), 0.0)
    core.on_client(C1, submit("q1"), 0.0)
    core.on_client(C1, submit("q2", priority=5), 0.0)
    out = core.drain(1.0)
    assert to_client(out, C1, p.Rejected) == [p.Rejected("q2", c.SHUTTING_DOWN, c.DRAINING),
                                              p.Rejected("q1", c.SHUTTING_DOWN, c.DRAINING)]
    assert not core.queued
    later = core.on_client(C1, submit("late"), 1.1)
    assert to_client(later, C1, p.Rejected) == [p.Rejected("late", c.SHUTTING_DOWN, c.DRAINING)]
    # the running task finishes within the grace and is answered; nothing starts after it
    out = core.on_runner(R1, done(key(C1, "running"), b"r"), 1.2)
    assert [m.envelope for m in to_client(out, C1, p.ResultMsg)] == [b"r"]
    assert tasks_to(out, R1) == [] and tasks_to(core.on_runner(R2, ready(), 1.3), R2) == []
    assert [o.reason for o in core.take_outcomes()] == [c.DRAINING] * 3 + [""]


def test_a_drain_does_not_retry_lost_tasks():
    core = BrokerCore(BrokerConfig(heartbeat_s=100))
    core.on_runner(R1, ready(), 0.0)
    core.on_client(C1, submit("t", idempotent=True, max_attempts=3), 0.0)
    core.drain(0.5)
    [result] = to_client(core.on_runner(R1, p.Bye(), 0.6), C1, p.ResultMsg)
    assert status_of(result) == (p.CRASHED, "runner left while running the task")
    assert not core.queued


def test_the_end_of_the_grace_cancels_what_still_runs():
    core = BrokerCore(BrokerConfig(heartbeat_s=100))
    core.on_runner(R1, ready(slots=2), 0.0)
    core.on_client(C1, submit("a"), 0.0)
    core.on_client(C1, submit("b"), 0.0)
    core.drain(1.0)
    out = core.shutdown(11.0)
    assert sorted(s.msg.task_id for s in out if isinstance(s.msg, p.CancelTask)) == [
        key(C1, "a"), key(C1, "b")]
    assert [status_of(m) for m in to_client(out, C1, p.ResultMsg)] == [
        (p.CRASHED, "the broker shut down before the task finished")] * 2


# -- outcomes: what the metrics count, once per task ----------------------------------------------


def test_outcomes_come_from_the_cores_own_decisions_once_per_task():
    core = BrokerCore(BrokerConfig(max_queued=1, heartbeat_s=100))
    core.on_runner(R1, ready(slots=1), 0.0)
    core.on_client(C1, submit("ran"), 0.0)
    core.on_client(C1, submit("waits"), 0.5)
    core.on_client(C1, submit("full"), 0.5)  # queue full
    core.on_client(C1, submit("ran"), 0.5)  # its id is in use
    core.on_client(C1, p.Cancel("ran"), 1.0)  # cancelled while running
    core.on_runner(R1, done(key(C1, "ran"), b"late"), 1.5)  # the late done: no second count
    core.on_runner(R2, done(key(C1, "ghost"), b"x"), 1.6)  # a stale done: no count at all
    core.on_runner(R1, done(key(C1, "waits"), b"r", p.ERROR), 2.0)
    assert core.take_outcomes() == [
        Outcome("python", "default", p.REJECTED, c.QUEUE_FULL, None, None),
        Outcome("python", "default", p.REJECTED, c.DUPLICATE_ID, None, None),
        Outcome("python", "default", c.CANCELLED_STATUS, c.CANCELLED, 0.0, 1.0),
        Outcome("python", "default", p.ERROR, "", 1.0, 0.5),
    ]
    assert core.take_outcomes() == []


@pytest.mark.parametrize("running", [True, False], ids=["running", "queued"])
def test_a_cancelled_task_is_counted_as_cancelled_not_crashed(running):
    """[21.7] A task its caller cancelled (Ctrl-C, wait_for) was counted crashed, so a crash
    alert fired on cancellations. Its answer keeps its wire status (crashed or rejected)."""
    core = BrokerCore()
    if running:
        core.on_runner(R1, ready(slots=1), 0.0)
    core.on_client(C1, submit("t"), 0.0)
    out = core.on_client(C1, p.Cancel("t"), 1.0)
    [answer] = [s.msg for s in out if s.to == C1]
    assert type(answer) is (p.ResultMsg if running else p.Rejected)
    [outcome] = core.take_outcomes()
    assert (outcome.status, outcome.reason) == (c.CANCELLED_STATUS, c.CANCELLED)


def test_a_client_message_on_the_runner_socket_is_counted_not_answered():
    core = BrokerCore()
    assert core.on_runner(R1, submit("x"), 0.0) == []
    assert core.on_malformed(R1, "junk", None, from_runner=True) == []
    assert core.counters["malformed_runner"] == 2


def test_total_slots_are_the_registered_runners_slots():
    core = BrokerCore()
    core.on_runner(R1, ready(slots=3), 0.0)
    core.on_runner(R2, ready(slots=5), 0.0)
    assert core.total_slots() == 8


# -- worker mode ------------------------------------------------------------------------------


@pytest.mark.parametrize("extra, reuse", [
    ({}, None),
    ({"isolation": "worker"}, "default/"),
    ({"isolation": "worker", "lane": "eval"}, "eval/"),
    ({"isolation": "worker", "lane": "eval", "reuse_key": "tenant-7"}, "eval/tenant-7"),
])
def test_a_worker_task_names_its_principal_lane_and_key_to_the_runner(extra, reuse):
    core = BrokerCore(BrokerConfig())
    core.on_runner(R1, ready(slots=1), 0.0)
    sends = core.on_client(C1, submit("a", **extra), 0.0, principal="curve:K1")
    (task,) = [s.msg for s in sends if isinstance(s.msg, p.TaskMsg)]
    tag = c.principal_tag("curve:K1")
    assert task.reuse == (None if reuse is None else f"{tag}/{reuse}")


def test_rule_10_a_draining_runner_is_given_no_new_task_and_keeps_what_it_runs():
    core = BrokerCore(BrokerConfig(heartbeat_s=1.0))
    core.on_runner(b"r", p.Ready({"python": "3.11"}, 2, (), "r"), 0.0)
    out = core.on_client(b"c", p.Submit("t1", "python", "return 1", b"\xc0"), 0.0)
    assert [type(s.msg) for s in out] == [p.TaskMsg]
    assert core.on_runner(b"r", p.RunnerHeartbeat(1, draining=True), 0.1) == [
        Send(b"r", p.BrokerHeartbeat(draining=True))]  # all it was sent went before
    assert core.on_runner(b"r", p.RunnerHeartbeat(1, draining=True), 0.15) == []
    assert core.on_client(b"c", p.Submit("t2", "python", "return 2", b"\xc0"), 0.2) == []
    done = core.on_runner(b"r", p.Done(out[0].msg.task_id, b"env", "ok"), 0.3)
    assert [(s.to, type(s.msg)) for s in done] == [(b"c", p.ResultMsg)]
    assert list(core.queued) == [f"{b'c'.hex()}:t2"]  # still waiting: no runner takes it


def test_demand_and_occupancy_are_what_an_autoscaler_reads_per_runtime_group_and_lane():
    core = BrokerCore(BrokerConfig(heartbeat_s=1.0))
    core.on_runner(b"r1", p.Ready({"python": "3.11"}, 1, ("gpu",), "r1"), 0.0)
    core.on_runner(b"r2", p.Ready({"python": "3.11", "javascript": "ng"}, 2, (), "r2"), 0.0)
    for i, (group, lane) in enumerate([(None, "default"), (None, "default"), (None, "default"),
                                       ("gpu", "batch"), ("gpu", "batch"), ("tpu", "default")]):
        core.on_client(b"c", p.Submit(f"t{i}", "python", "return 1", b"\xc0", group=group,
                                      lane=lane), float(i))
    # (a task for a runtime no runner ever served is refused at once: it never queues)
    # the first three take the three slots (a task naming no group runs anywhere); the rest
    # waits: two for the gpu runner, one for a group nobody carries
    assert core.demand(10.0) == {
        ("python", "gpu", "batch"): (2, 7.0),
        ("python", "unserved", "default"): (1, 5.0),
    }
    assert core.occupancy() == {
        ("python", ""): (3, 3), ("python", "gpu"): (1, 1), ("javascript", ""): (2, 2),
    }


# -- rule 7t: tenancy -------------------------------------------------------------------------


def reuse_of(sends: list[Send]) -> str:
    (task,) = [s.msg for s in sends if isinstance(s.msg, p.TaskMsg)]
    assert task.reuse is not None
    return task.reuse


def test_one_reuse_key_named_by_two_principals_is_two_workers():
    core = BrokerCore()
    core.on_runner(R1, ready(slots=4), 0.0)
    named = {"isolation": "worker", "reuse_key": "shared"}
    a = reuse_of(core.on_client(C1, submit("a", **named), 0.0, principal="curve:A"))
    b = reuse_of(core.on_client(C2, submit("b", **named), 0.0, principal="curve:B"))
    again = reuse_of(core.on_client(C2, submit("c", **named), 0.0, principal="curve:A"))
    assert a != b
    assert again == a  # the principal, not the connection, owns the worker


def test_over_a_connection_alone_each_connection_is_its_own_principal():
    core = BrokerCore()
    core.on_runner(R1, ready(slots=4), 0.0)
    named = {"isolation": "worker", "reuse_key": "shared"}
    a = reuse_of(core.on_client(C1, submit("a", **named), 0.0))
    b = reuse_of(core.on_client(C2, submit("b", **named), 0.0))
    assert a.split("/", 1)[0] == c.principal_tag(c.connection_principal(C1))
    assert b.split("/", 1)[0] == c.principal_tag(c.connection_principal(C2))
    assert a != b


def test_a_reuse_key_cannot_name_another_principals_workers():
    """A key that spells out another principal's scope is scoped once more: the runner
    only ever sees keys the broker made."""
    core = BrokerCore()
    core.on_runner(R1, ready(slots=4), 0.0)
    victim = reuse_of(core.on_client(C1, submit("a", isolation="worker", reuse_key="k"), 0.0,
                                     principal="curve:V"))
    forged = victim.split("/", 1)[1]  # "default/k" is what a caller can name; try the rest
    sends = core.on_client(C2, submit("b", isolation="worker", lane=victim.split("/")[0],
                                      reuse_key=forged), 0.0, principal="curve:M")
    assert reuse_of(sends).startswith(c.principal_tag("curve:M") + "/")
    assert reuse_of(sends) != victim


def test_a_principal_at_its_worker_cap_waits_and_others_do_not():
    core = BrokerCore(BrokerConfig(max_workers_per_principal=2, queue_timeout_s=5,
                                   heartbeat_s=100))
    core.on_runner(R1, ready(slots=8), 0.0)
    worker = {"isolation": "worker"}
    for i in range(3):
        core.on_client(C1, submit(f"a{i}", reuse_key=f"k{i}", **worker), 0.0, principal="uid:1")
    assert sorted(t.submit.id for t in core.running.values()) == ["a0", "a1"]
    # another principal, and this one's fresh-process tasks, are not held back
    assert tasks_to(core.on_client(C2, submit("b", **worker), 0.0, principal="uid:2"), R1) == ["b"]
    assert tasks_to(core.on_client(C1, submit("p"), 0.0, principal="uid:1"), R1) == ["p"]
    [rejected] = to_client(core.tick(5.0), C1, p.Rejected)
    assert rejected == p.Rejected("a2", "this principal's 2 warm workers busy (its cap, "
                                        "max_workers_per_principal) for 5 s", "queue_timeout")


def test_a_freed_worker_lets_the_principals_next_task_run():
    core = BrokerCore(BrokerConfig(max_workers_per_principal=1))
    core.on_runner(R1, ready(slots=4), 0.0)
    core.on_client(C1, submit("a", isolation="worker"), 0.0, principal="uid:1")
    assert core.on_client(C1, submit("b", isolation="worker"), 0.0, principal="uid:1") == []
    sends = core.on_runner(R1, done(key(C1, "a")), 0.1)
    assert tasks_to(sends, R1) == ["b"]


@pytest.mark.parametrize("limits, message", [
    (p.TaskLimits(timeout_s=3600), "timeout_s 3600 s is above this service's cap of 60 s "
                                   "(max_timeout_s)"),
    (p.TaskLimits(memory_mb=65536), "memory_mb 65536 MB is above this service's cap of 1024 MB "
                                    "(max_memory_mb)"),
    (p.TaskLimits(result_bytes=64 << 20), "result_bytes 67108864 bytes is above this service's "
                                          "cap of 1048576 bytes (max_result_bytes)"),
])
def test_rule_2c_a_limit_above_the_operators_cap_is_rejected_at_once_naming_the_cap(limits, message):
    """Through serve, memory_mb=65536 and timeout_s=3600 were accepted: one client could hold
    every slot for an hour."""
    core = BrokerCore(BrokerConfig(max_timeout_s=60, max_memory_mb=1024, max_result_bytes=1 << 20))
    core.on_runner(R1, p.Ready({"python": "3.11"}, 2, (), "r"), 0.0)
    out = core.on_client(C1, p.Submit("t", "python", "return 1", b"\xc0", limits=limits), 0.0)
    assert to_client(out, C1, p.Rejected) == [p.Rejected("t", message, "limit_cap")]


def test_rule_2c_limits_within_the_caps_run():
    core = BrokerCore(BrokerConfig(max_timeout_s=60, max_memory_mb=1024))
    core.on_runner(R1, p.Ready({"python": "3.11"}, 2, (), "r"), 0.0)
    out = core.on_client(C1, p.Submit("t", "python", "return 1", b"\xc0",
                                      limits=p.TaskLimits(timeout_s=60, memory_mb=1024)), 0.0)
    assert [type(s.msg) for s in out] == [p.TaskMsg]


# -- rules 9h and 9r: a lost runner is held; one that comes back reattaches --------------------


def lost_with(tasks: list[p.Submit], hold_s: float = 5.0) -> BrokerCore:
    """R1 (4 slots) runs ``tasks`` from 0 s and is lost to silence at 3.5 s (liveness 3 s)."""
    core = BrokerCore(BrokerConfig(heartbeat_s=1.0, liveness=3, runner_hold_s=hold_s))
    core.on_runner(R1, ready(slots=4), 0.0)
    for task in tasks:
        core.on_client(C1, task, 0.0)
    out = core.tick(3.5)
    assert R1 not in core.runners and R1 in core.held
    assert to_client(out, C1, p.ResultMsg) == []
    return core


def test_a_partition_shorter_than_the_hold_loses_nothing():
    """[26.2] A 2 s partition crashed every plain task of the runner the moment it was lost."""
    core = lost_with([submit("t")])
    assert core.total_slots() == 0 and core.running[key(C1, "t")].runner == R1
    out = core.on_runner(R1, ready(slots=4), 4.0)  # back on a new connection, same identity
    assert [s.msg for s in out if s.to == R1] == [p.Holding((key(C1, "t"),))]
    answered = core.on_runner(R1, done(key(C1, "t"), b"ok"), 4.5)
    assert to_client(answered, C1, p.ResultMsg) == [p.ResultMsg("t", p.OK, "", b"ok", 1, 0.0)]
    assert R1 in core.runners and not core.held and core.counters["runners_reattached"] == 1


def test_the_hold_ends_with_runner_lost_when_the_runner_does_not_come_back():
    core = lost_with([submit("t")], hold_s=5.0)
    assert to_client(core.tick(8.4), C1, p.ResultMsg) == []
    [result] = to_client(core.tick(8.5), C1, p.ResultMsg)
    assert status_of(result) == (p.CRASHED, "runner lost (silent for 3 s) while running the task")
    assert not core.held and not core.running
    # what it says once it is gone for good changes nothing: the task had its answer
    assert to_client(core.on_runner(R1, done(key(C1, "t")), 9.0), C1, p.ResultMsg) == []


def test_idempotent_tasks_of_a_lost_runner_are_retried_at_once_as_before():
    core = lost_with([submit("i", idempotent=True, max_attempts=2), submit("t")])
    assert key(C1, "i") in core.queued and key(C1, "t") in core.running
    core.on_runner(R2, ready(), 3.6)
    # the held runner's late answer for the retried task is dropped: first answer wins
    assert to_client(core.on_runner(R1, done(key(C1, "i"), b"late"), 3.7), C1, p.ResultMsg) == []
    [result] = to_client(core.on_runner(R2, done(key(C1, "i"), b"ok"), 3.8), C1, p.ResultMsg)
    assert result.envelope == b"ok" and result.attempts == 2


def test_an_answer_on_the_held_runners_old_connection_wins_and_only_a_ready_reattaches_it():
    """A closed connection's last bytes (a heartbeat the kernel still delivered) reattached a
    held runner, which the connection's end then lost again: it flapped."""
    core = lost_with([submit("a"), submit("b")])
    [result] = to_client(core.on_runner(R1, done(key(C1, "a"), b"a"), 4.0), C1, p.ResultMsg)
    assert result.envelope == b"a" and R1 in core.held
    assert core.on_runner(R1, p.RunnerHeartbeat(), 4.1) == [] and R1 in core.held
    core.on_runner(R1, ready(slots=4), 4.2)
    assert R1 in core.runners and core.runners[R1].running == {key(C1, "b")}
    assert not core.held


def test_a_task_the_runner_never_received_is_sent_again_even_if_not_idempotent():
    """Rule 9r: sent on the connection that was lost, it never ran, so it runs once now."""
    core = lost_with([submit("got"), submit("lost")])
    core.on_runner(R1, ready(slots=4), 4.0)
    out = core.on_runner(R1, p.Missing((key(C1, "lost"), "unknown:x")), 4.1)
    assert tasks_to(out, R1) == ["lost"]
    assert core.running[key(C1, "lost")].attempts == 1  # it never ran: not a second attempt
    assert core.counters["resent_missing"] == 1


def test_a_task_cancelled_while_its_runner_is_held_is_answered_at_once_and_cancelled_later():
    core = lost_with([submit("t")])
    [result] = to_client(core.on_client(C1, p.Cancel("t"), 4.0), C1, p.ResultMsg)
    assert status_of(result) == (p.CRASHED, "cancelled while running")
    out = core.on_runner(R1, ready(slots=4), 4.5)
    assert [s.msg for s in out if s.to == R1] == [p.Holding(()), p.CancelTask(key(C1, "t"))]
    assert core.runners[R1].free == 4


def test_a_held_runner_is_given_nothing_new():
    core = lost_with([])
    core.on_client(C1, submit("new"), 4.0)
    assert key(C1, "new") in core.queued
    assert tasks_to(core.on_runner(R1, ready(slots=4), 4.5), R1) == ["new"]


def test_a_runner_that_says_bye_is_not_held():
    core = BrokerCore(BrokerConfig(runner_hold_s=5.0))
    core.on_runner(R1, ready(), 0.0)
    core.on_client(C1, submit("t"), 0.0)
    [result] = to_client(core.on_runner(R1, p.Bye(), 0.1), C1, p.ResultMsg)
    assert status_of(result) == (p.CRASHED, "runner left while running the task")
    assert not core.held


def test_shutdown_answers_the_tasks_of_a_held_runner():
    core = lost_with([submit("t")])
    [result] = to_client(core.shutdown(4.0), C1, p.ResultMsg)
    assert status_of(result) == (p.CRASHED, "the broker shut down before the task finished")
    assert not core.running


# -- rule 6: the nearest runner with a free slot ---------------------------------------------


def measured(core: BrokerCore, runner: bytes, rtt_s: float, now: float) -> None:
    core.on_runner(runner, p.RunnerHeartbeat(echo=now - rtt_s), now)


def test_dispatch_prefers_the_nearest_runner_and_uses_far_ones_when_near_ones_are_full():
    """[26.7] A far runner took its share of short tasks, each slower by its round trip."""
    core = BrokerCore(BrokerConfig(near_tolerance_ms=10))
    core.on_runner(R1, ready(slots=4), 0.0)  # far: 100 ms
    core.on_runner(R2, ready(slots=2), 0.0)  # near: 1 ms, fewer free slots
    measured(core, R1, 0.100, 1.0)
    measured(core, R2, 0.001, 1.0)
    sent = []
    for i in range(3):
        sent += core.on_client(C1, submit(f"t{i}"), 1.1)
    assert tasks_to(sent, R2) == ["t0", "t1"] and tasks_to(sent, R1) == ["t2"]


def test_runners_within_the_tolerance_are_equals():
    core = BrokerCore(BrokerConfig(near_tolerance_ms=10))
    core.on_runner(R1, ready(slots=4), 0.0)
    core.on_runner(R2, ready(slots=2), 0.0)
    measured(core, R1, 0.008, 1.0)
    measured(core, R2, 0.001, 1.0)
    assert tasks_to(core.on_client(C1, submit("t"), 1.1), R1) == ["t"]  # most free slots


def test_the_round_trip_is_smoothed_and_a_new_runner_counts_as_near():
    core = BrokerCore()
    core.on_runner(R1, ready(), 0.0)
    measured(core, R1, 0.100, 1.0)
    measured(core, R1, 0.000, 2.0)
    assert core.runners[R1].rtt_s == pytest.approx(0.070)
    core.on_runner(R2, ready(), 2.0)
    assert tasks_to(core.on_client(C1, submit("t"), 2.1), R2) == ["t"]


def test_broker_heartbeats_carry_its_clock():
    core = BrokerCore()
    core.on_runner(R1, ready(), 0.0)
    assert [s.msg for s in core.tick(2.5) if s.to == R1] == [p.BrokerHeartbeat(clock=2.5)]


def test_a_long_holding_list_goes_in_parts_and_every_ready_is_answered_with_one():
    core = BrokerCore()
    assert [s.msg for s in core.on_runner(R1, ready(), 0.0)] == [p.Holding(())]
    core.on_runner(R1, ready(slots=250), 0.0)
    for i in range(250):
        core.on_client(C1, submit(f"t{i:03}"), 0.0)
    parts = [s.msg for s in core.on_runner(R1, ready(slots=250), 1.0)]
    assert [(len(m.task_ids), m.more) for m in parts] == [(200, True), (50, False)]
