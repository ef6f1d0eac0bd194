"""The pool's session rules (sandbox/host/pool_core.py, rules 13 to 16), one test per rule:
pure, no processes, the clock passed in."""

from __future__ import annotations

import signal

from runtimes import outcome
from runtimes.outcome import Status
from sandbox.host import pool_core as core
from sandbox.host.pool_core import ChildState, PoolRules
from tests.unit.test_pool_core import OK, delivered, killed, of, up

RULES = PoolRules(size=2, acquire_timeout_s=5.0, recycle_delay_s=0.003, exit_report_s=2.0,
                  max_sessions=3, interrupt_grace_s=1.0, ended_kept=2)
TIMEOUT = outcome.encode(Status.TIMEOUT, "interrupted")


def opened(pool: core.PoolCore, session: str = "s", now: float = 0.0,
           idle_s: float = 60.0, life_s: float = 600.0) -> int:
    """Open ``session`` and return the pid of the child it holds."""
    acts = pool.open_session(("open", session), session, idle_s, life_s, now)
    assert delivered(acts) == {("open", session): (Status.OK, f"session {session!r} is open")}
    pid = pool.sessions[session].pid
    assert pid is not None
    for spawn in of(acts, core.Spawn):  # the pool's refill comes up
        for _ in range(spawn.count):
            pool.spawned(max(pool.children) + 1, now)
    return pid


def test_opening_a_session_holds_an_idle_child_sends_nothing_and_refills_the_pool():
    pool = up(RULES)
    acts = pool.open_session("o", "s", 60.0, 600.0, 0.0)
    assert of(acts, core.SendTask) == []
    assert core.Spawn(1) in acts  # the held child no longer counts among the pool's size
    assert pool.children[pool.sessions["s"].pid].session == "s"


def test_opening_an_open_id_attaches_to_it():
    pool = up(RULES)
    pid = opened(pool)
    acts = pool.open_session("again", "s", 60.0, 600.0, 1.0)
    assert delivered(acts) == {"again": (Status.OK, "session 's' is open")}
    assert pool.sessions["s"].pid == pid


def test_sessions_beyond_max_sessions_are_rejected_naming_the_cap():
    pool = up(RULES)
    for i in range(3):
        pool.open_session(f"o{i}", f"s{i}", 60.0, 600.0, 0.0)
    acts = pool.open_session("o3", "s3", 60.0, 600.0, 0.0)
    assert delivered(acts) == {"o3": (Status.REJECTED, "3 python sessions are open, the most "
                                                       "allowed (max_sessions); close one first")}


def test_an_opening_waits_for_a_child_and_is_rejected_at_the_acquire_deadline():
    pool = up(PoolRules(size=1, acquire_timeout_s=5.0))
    pool.submit("busy", 10.0, 0.0)
    assert delivered(pool.open_session("o", "s", 60.0, 600.0, 0.0)) == {}
    assert delivered(pool.tick(5.0))["o"][0] is Status.REJECTED
    assert "s" not in pool.sessions


def test_a_call_goes_to_the_sessions_child_as_a_session_task():
    pool = up(RULES)
    pid = opened(pool)
    assert pool.call("c", "s", 2.0, 1.0) == [core.SendTask(pid, "c", True, "s")]


def test_whatever_the_child_answers_the_session_stays_open():
    pool = up(RULES)
    pid = opened(pool)
    for i, status in enumerate((Status.ERROR, Status.MEMORY_LIMIT, Status.OK)):
        pool.call(i, "s", 2.0, 1.0)
        acts = pool.result(pid, outcome.encode(status, "x"), status, 1.5, retire=True)
        assert delivered(acts)[i][0] is status
        assert not of(acts, core.Release)
    assert pool.children[pid].state is ChildState.IDLE


def test_a_second_call_while_one_runs_is_rejected():
    pool = up(RULES)
    opened(pool)
    pool.call("c1", "s", 2.0, 1.0)
    assert delivered(pool.call("c2", "s", 2.0, 1.0)) == {
        "c2": (Status.REJECTED, "session 's' is running another call")}


def test_a_call_to_an_id_never_opened_is_rejected():
    pool = up(RULES)
    assert delivered(pool.call("c", "nope", 2.0, 0.0)) == {
        "c": (Status.REJECTED, "session 'nope' is not open (open it first)")}


def test_a_call_to_an_ended_session_is_session_lost_with_why_never_a_new_session():
    pool = up(RULES)
    opened(pool)
    pool.close_session("x", "s", 1.0)
    assert delivered(pool.call("c", "s", 2.0, 2.0)) == {
        "c": (Status.SESSION_LOST, "session 's' ended: it was closed")}
    assert "s" not in pool.sessions


def test_only_the_last_ended_kept_ids_are_remembered():
    pool = up(RULES)
    for name in ("a", "b", "c"):
        opened(pool, name)
        pool.close_session("x", name, 1.0)
    assert list(pool.ended) == ["b", "c"]


def test_a_call_past_its_deadline_is_interrupted_first():
    pool = up(RULES)
    pid = opened(pool)
    pool.call("c", "s", 2.0, 1.0)
    assert pool.tick(3.0) == [core.Interrupt(pid)]
    acts = pool.result(pid, TIMEOUT, Status.TIMEOUT, 3.2)
    assert delivered(acts) == {"c": (Status.TIMEOUT, "interrupted")}
    assert pool.children[pid].state is ChildState.IDLE  # state kept


def test_a_call_that_ignores_its_interrupt_is_killed_and_the_session_lost():
    pool = up(RULES)
    pid = opened(pool)
    pool.call("c", "s", 2.0, 1.0)
    pool.tick(3.0)
    acts = pool.tick(4.0)
    assert delivered(acts) == {"c": (Status.SESSION_LOST, (
        "session 's' is lost: its call ignored the interrupt at its timeout of 2 s "
        "(killed 1 s later)"))}
    assert core.Release(pid) in acts
    assert of(acts, core.SessionEnded)[0].session == "s"


def test_an_idle_session_ends_after_its_idle_timeout():
    pool = up(RULES)
    pid = opened(pool, idle_s=10.0)
    pool.call("c", "s", 2.0, 5.0)
    pool.result(pid, OK, Status.OK, 6.0)
    assert pool.tick(15.9) == []  # idle counts from the end of the last call
    acts = pool.tick(16.0)
    assert acts[:2] == [core.SessionEnded("s", "it was idle for 10 s"), core.Release(pid)]


def test_a_session_ends_at_its_lifetime_even_when_used():
    pool = up(RULES)
    pid = opened(pool, idle_s=10.0, life_s=12.0)
    pool.call("c", "s", 2.0, 9.0)
    acts = pool.result(pid, OK, Status.OK, 10.0)
    assert not of(acts, core.SessionEnded)
    acts = pool.tick(12.0)
    assert core.SessionEnded("s", "it reached its lifetime of 12 s") in acts


def test_a_violation_in_a_call_answers_violation_and_ends_the_session():
    pool = up(RULES)
    pid = opened(pool)
    pool.call("c", "s", 2.0, 1.0)
    pool.channel_lost(pid, 1.1)
    acts = pool.exited(pid, killed(signal.SIGSYS), False, 1.2)
    assert delivered(acts) == {"c": (Status.VIOLATION, (
        "killed for a forbidden operation (seccomp: SIGSYS); session 's' is lost with it"))}
    assert of(acts, core.SessionEnded)[0].session == "s"


def test_an_idle_session_child_that_dies_ends_its_session():
    pool = up(RULES)
    pid = opened(pool)
    acts = pool.exited(pid, killed(signal.SIGKILL), False, 1.0)
    assert of(acts, core.SessionEnded) == [core.SessionEnded(
        "s", "its process ended: killed by SIGKILL without a result")]
    assert delivered(pool.call("c", "s", 1.0, 2.0))["c"][0] is Status.SESSION_LOST


def test_a_cancelled_call_loses_its_session():
    pool = up(RULES)
    pid = opened(pool)
    pool.call("c", "s", 2.0, 1.0)
    acts = pool.cancel("c", 1.5)
    assert delivered(acts)["c"][0] is Status.SESSION_LOST
    assert core.Release(pid) in acts


def test_a_jail_death_loses_every_session_and_its_running_call():
    pool = up(RULES)
    opened(pool, "a")
    opened(pool, "b")
    pool.call("c", "a", 2.0, 1.0)
    acts = pool.jail_lost("boom", 1.5)
    assert delivered(acts) == {"c": (Status.SESSION_LOST, "the python jail died while running "
                                                          "the task: boom")}
    assert {e.session for e in of(acts, core.SessionEnded)} == {"a", "b"}
    assert delivered(pool.call("d", "b", 1.0, 2.0)) == {
        "d": (Status.SESSION_LOST, "session 'b' ended: the python jail died: boom")}


def test_closing_a_session_releases_its_child_and_a_running_call_is_lost():
    pool = up(RULES)
    pid = opened(pool)
    pool.call("c", "s", 2.0, 1.0)
    acts = pool.close_session("x", "s", 1.5)
    assert delivered(acts) == {"c": (Status.SESSION_LOST, "session 's' is lost: it was closed"),
                               "x": (Status.OK, "session 's' closed")}
    assert core.Release(pid) in acts


def test_closing_the_pool_ends_its_sessions():
    pool = up(RULES)
    opened(pool)
    acts = pool.close(1.0)
    assert of(acts, core.SessionEnded) == [core.SessionEnded("s", "the sandbox was closed")]


def test_a_held_child_is_never_handed_to_a_task():
    pool = up(PoolRules(size=1))
    pid = opened(pool)
    acts = pool.submit("t", 1.0, 0.5)
    assert all(a.pid != pid for a in of(acts, core.SendTask))


def test_ending_all_sessions_releases_every_held_child():
    pool = up(RULES)
    a, b = opened(pool, "a"), opened(pool, "b")
    pool.call("c", "a", 2.0, 1.0)
    acts = pool.end_sessions("gone", 1.5)
    assert delivered(acts) == {"c": (Status.SESSION_LOST, "session 'a' is lost: gone")}
    assert {core.Release(a), core.Release(b)} <= set(acts)
    assert pool.session_count() == 0


def test_a_call_that_cannot_be_interrupted_loses_its_session_at_the_deadline():
    pool = up(PoolRules(size=2, interruptible=False))
    pid = opened(pool)
    pool.call("c", "s", 2.0, 1.0)
    acts = pool.tick(3.0)
    assert delivered(acts) == {"c": (Status.SESSION_LOST, (
        "session 's' is lost: its call passed its timeout of 2 s, and a python call cannot be "
        "interrupted: its process was killed"))}
    assert core.Release(pid) in acts and not of(acts, core.Interrupt)
