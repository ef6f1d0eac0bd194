"""The broker's session rules (broker/core.py, rules 15 to 17): pure, no sockets, no clock."""

from __future__ import annotations

from broker import core as c
from broker import protocol as p
from broker.core import BrokerConfig, BrokerCore
from tests.unit.test_broker_core import C1, C2, R1, R2, done, key, ready, to_client

ALICE, BOB = "curve:alice", "curve:bob"


def op(id: str, session: str, what: str = "call", **kw) -> p.Submit:
    return p.Submit(id=id, runtime="python", code="return 1", data=b"\xc0", session=session,
                    session_op=what, **kw)


def sent(sends, runner: bytes) -> list[p.TaskMsg]:
    return [s.msg for s in sends if s.to == runner and isinstance(s.msg, p.TaskMsg)]


def opened(core: BrokerCore, session: str = "nb", client: bytes = C1, principal: str = ALICE,
           now: float = 0.0) -> p.TaskMsg:
    """Open ``session`` for ``principal`` and report it open: the message its runner got."""
    sends = core.on_client(client, op(f"open-{session}", session, "open"), now, principal)
    (msg,) = [m for r in core.runners for m in sent(sends, r)]
    runner = next(r for r in core.runners if msg.task_id in core.runners[r].running)
    core.on_runner(runner, done(msg.task_id), now)
    return msg


def two_runners(**config) -> BrokerCore:
    core = BrokerCore(BrokerConfig(**config))
    core.on_runner(R1, ready(slots=4), 0.0)
    core.on_runner(R2, ready(slots=4), 0.0)
    return core


def test_an_open_goes_to_a_runner_naming_the_session_by_its_principal():
    core = two_runners()
    msg = opened(core)
    assert (msg.session, msg.session_op) == (f"{c.principal_tag(ALICE)}/nb", "open")


def test_calls_go_to_the_runner_that_holds_the_session_and_no_other():
    core = two_runners()
    first = opened(core)
    holder = next(r for r in (R1, R2) if core.sessions[(ALICE, "nb")].runner == r)
    for i in range(5):
        sends = core.on_client(C1, op(f"c{i}", "nb"), 1.0, ALICE)
        assert [m.session for m in sent(sends, holder)] == [first.session]
        core.on_runner(holder, done(key(C1, f"c{i}")), 1.0)


def test_the_same_id_named_by_two_principals_is_two_sessions():
    core = two_runners()
    a = opened(core, "nb", C1, ALICE)
    b = opened(core, "nb", C2, BOB)
    assert a.session != b.session
    assert set(core.sessions) == {(ALICE, "nb"), (BOB, "nb")}


def test_another_principal_cannot_call_a_session_by_naming_its_id():
    core = two_runners()
    opened(core, "nb", C1, ALICE)
    sends = core.on_client(C2, op("x", "nb"), 1.0, BOB)
    assert to_client(sends, C2, p.Rejected)[0].message == "session 'nb' is not open (open it first)"


def test_opens_beyond_the_principals_cap_are_rejected_naming_it():
    core = two_runners(max_sessions_per_principal=2)
    opened(core, "a")
    opened(core, "b")
    sends = core.on_client(C1, op("o", "c", "open"), 1.0, ALICE)
    (rejected,) = to_client(sends, C1, p.Rejected)
    assert (rejected.message, rejected.reason) == (
        "this principal has 2 sessions open, its cap (max_sessions_per_principal); close one "
        "first", c.SESSION_CAP)
    opened(core, "c", C2, BOB)  # another principal still may


def test_opens_beyond_the_services_cap_are_rejected_naming_it():
    core = two_runners(max_sessions=1)
    opened(core, "a")
    sends = core.on_client(C2, op("o", "b", "open"), 1.0, BOB)
    assert to_client(sends, C2, p.Rejected)[0].message == (
        "1 sessions are open, the service's cap (max_sessions); close one first")


def test_a_close_forgets_the_session_and_a_later_call_is_session_lost():
    core = two_runners()
    opened(core)
    core.on_client(C1, op("x", "nb", "close"), 1.0, ALICE)
    sends = core.on_client(C1, op("c", "nb"), 2.0, ALICE)
    (answer,) = to_client(sends, C1, p.ResultMsg)
    assert (answer.status, answer.message) == (p.SESSION_LOST, "session 'nb' ended: it was closed")
    assert core.session_count() == 0


def test_a_lost_runner_ends_its_sessions_and_answers_a_running_call_session_lost():
    core = two_runners()
    opened(core)
    holder = core.sessions[(ALICE, "nb")].runner
    core.on_client(C1, op("c", "nb", idempotent=True, max_attempts=3), 1.0, ALICE)
    sends = core.on_runner_gone(holder, 2.0)
    (answer,) = to_client(sends, C1, p.ResultMsg)
    assert (answer.status, answer.message) == (
        p.SESSION_LOST, "session 'nb' is lost: runner lost (disconnected)")  # never retried
    sends = core.on_client(C1, op("d", "nb"), 3.0, ALICE)
    assert to_client(sends, C1, p.ResultMsg)[0].status == p.SESSION_LOST
    assert not [m for r in (R1, R2) for m in sent(sends, r)]  # no new empty session anywhere


def test_a_runner_saying_its_session_ended_frees_the_principals_cap():
    core = two_runners(max_sessions_per_principal=1)
    msg = opened(core)
    holder = core.sessions[(ALICE, "nb")].runner
    core.on_runner(holder, p.SessionEnded(msg.session, "it was idle for 600 s"), 5.0)
    sends = core.on_client(C1, op("c", "nb"), 6.0, ALICE)
    assert to_client(sends, C1, p.ResultMsg)[0].message == (
        "session 'nb' ended: it was idle for 600 s")
    opened(core, "other", now=7.0)


def test_another_runner_cannot_end_a_session_it_does_not_hold():
    core = two_runners()
    msg = opened(core)
    holder = core.sessions[(ALICE, "nb")].runner
    other = R2 if holder == R1 else R1
    core.on_runner(other, p.SessionEnded(msg.session, "forged"), 5.0)
    assert (ALICE, "nb") in core.sessions


def test_an_open_that_never_ran_leaves_nothing_behind():
    core = BrokerCore(BrokerConfig(queue_timeout_s=1.0))
    core.on_client(C1, op("o", "nb", "open"), 0.0, ALICE)
    assert core.session_count() == 1  # opening: counted against the caps
    core.tick(2.0)  # no runner ever came
    assert core.session_count() == 0 and not core.ended


def test_an_open_the_runner_refused_leaves_nothing_behind():
    core = two_runners()
    sends = core.on_client(C1, op("o", "nb", "open"), 0.0, ALICE)
    (msg,) = [m for r in (R1, R2) for m in sent(sends, r)]
    holder = next(r for r in (R1, R2) if msg.task_id in core.runners[r].running)
    core.on_runner(holder, done(msg.task_id, status=p.REJECTED), 0.1)
    assert core.session_count() == 0


def test_a_call_of_a_session_bypasses_the_queue():
    core = BrokerCore()
    core.on_runner(R1, ready(slots=1), 0.0)
    opened(core)
    core.on_client(C2, p.Submit(id="busy", runtime="python", code="1", data=b"\xc0"), 0.5, BOB)
    sends = core.on_client(C1, op("c", "nb"), 1.0, ALICE)  # the only slot is taken
    assert len(sent(sends, R1)) == 1


def test_a_session_call_under_the_restricted_policy_is_refused_by_the_protocol():
    import pytest

    with pytest.raises(p.ProtocolError, match="default policy"):
        p.validate(op("c", "nb", policy="restricted"))
