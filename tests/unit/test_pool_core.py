"""The pool's rules (sandbox/host/pool_core.py), one test per rule, and a randomized model check:
pure, no processes, the clock passed in."""

from __future__ import annotations

import random
import signal

import pytest

from runtimes import outcome
from runtimes.outcome import Status
from sandbox.host import pool_core as core
from sandbox.host.pool_core import ChildState, JailState, PoolCore, PoolRules

RULES = PoolRules(size=2, acquire_timeout_s=5.0, start_timeout_s=10.0, recycle_delay_s=0.003,
                  exit_report_s=2.0)
OK = outcome.encode(Status.OK, "ok", value=b"\x2a")


def killed(sig: int) -> int:
    return sig  # a wait status for "terminated by sig" is the signal number itself


def of(actions, kind):
    return [a for a in actions if isinstance(a, kind)]


def delivered(actions) -> dict:
    return {a.key: (a.status, outcome.decode(a.envelope, max_bytes=1 << 20).message)
            for a in of(actions, core.Deliver)}


def up(rules: PoolRules = RULES, now: float = 0.0) -> PoolCore:
    """A pool whose jail is up and whose children are spawned and idle (pids 1..size)."""
    pool = PoolCore("python", rules)
    assert of(pool.start(now), core.StartJail)
    assert of(pool.jail_ready(now), core.Spawn) == [core.Spawn(rules.size)]
    for pid in range(1, rules.size + 1):
        pool.spawned(pid, now)
    return pool


# -- rule 1: the pool keeps `size` children ------------------------------------------------


def test_ready_asks_for_a_full_pool_and_spawns_count_down():
    pool = PoolCore("python", RULES)
    pool.start(0)
    assert pool.jail_ready(0) == [core.Spawn(2)]
    assert pool.spawned(1, 0) == []  # the second is still on its way: nothing more to ask
    assert pool.counts()["pending"] == 1


def test_a_released_child_is_replaced():
    pool = up()
    acts = pool.submit("a", 1.0, 0)
    pid = of(acts, core.SendTask)[0].pid
    acts = pool.result(pid, OK, Status.OK, 0.1)
    acts += pool.tick(0.2)  # past the recycle delay
    assert core.Release(pid) in acts
    assert core.Spawn(1) in acts


# -- rule 1r: children that run a worker program are idle once ready --------------------------

WORKERS = PoolRules(size=2, acquire_timeout_s=5.0, ready_timeout_s=30.0, start_failures=3,
                    kill_grace_s=0.5)


def starting(rules: PoolRules = WORKERS, now: float = 0.0) -> PoolCore:
    """A pool of workers whose jail is up and whose children (pids 1..size) are spawned but
    not ready yet."""
    pool = PoolCore("pyodide", rules)
    pool.start(now)
    pool.jail_ready(now)
    for pid in range(1, rules.size + 1):
        pool.spawned(pid, now)
    return pool


def test_a_spawned_worker_takes_no_task_until_it_is_ready():
    pool = starting()
    assert pool.children[1].state is ChildState.STARTING
    assert pool.submit("a", 1.0, 0.1, reuse="k") == []
    assert pool.counts()["pending"] == 0  # starting children occupy the pool: none asked for
    assert pool.child_ready(1, 2.5) == [core.SendTask(1, "a", True)]


def test_a_ready_worker_counts_its_age_from_when_it_became_ready():
    pool = starting(PoolRules(size=1, ready_timeout_s=30.0, worker_age_s=10.0))
    pool.child_ready(1, 3.0)
    pool.submit("a", 1.0, 3.0, reuse="k")
    pool.result(1, OK, Status.OK, 3.1)
    assert pool.children[1].state is ChildState.IDLE
    assert pool.wake_at() == pytest.approx(13.0)


@pytest.mark.parametrize("event, reason", [
    (lambda pool, now: pool.exited(1, killed(signal.SIGSYS), False, now),
     "it ended before it was ready: killed for a forbidden operation (seccomp: SIGSYS)"),
    (lambda pool, now: pool.exited(1, 70 << 8, False, now),
     "it ended before it was ready: the sandboxed process exited with code 70 without a result"),
    (lambda pool, now: pool.channel_lost(1, now), "it closed its channel before it was ready"),
    (lambda pool, now: pool.not_ready(1, "its ready frame is malformed: x", now),
     "its ready frame is malformed: x"),
    (lambda pool, now: pool.tick(30.0), "it was not ready within 30 s"),
])
def test_a_worker_that_fails_to_get_ready_is_replaced_naming_why(event, reason):
    pool = starting()
    acts = event(pool, 1.0)
    assert core.Release(1) in acts and core.Spawn(1) in acts
    assert pool.start_failure == f"a pyodide worker did not start: {reason}"


def test_failures_in_a_row_fail_the_jail_and_a_waiting_task_hears_why():
    pool = starting(PoolRules(size=1, acquire_timeout_s=5.0, ready_timeout_s=30.0,
                              start_failures=2))
    pool.submit("a", 1.0, 0.0, reuse="k")
    pool.channel_lost(1, 0.5)
    pool.spawned(2, 0.6)
    acts = pool.exited(2, 70 << 8, False, 0.7)
    assert core.StopJail() in acts and pool.jail is JailState.DOWN
    assert pool.jail_reason == ("2 workers in a row did not start; the last: it ended before it "
                                "was ready: the sandboxed process exited with code 70 without a "
                                "result")
    assert delivered(pool.tick(5.0))["a"][1].startswith("the pyodide jail was not running for 5 s")


def test_one_ready_worker_ends_a_run_of_failures():
    pool = starting(PoolRules(size=2, ready_timeout_s=30.0, start_failures=2))
    pool.channel_lost(1, 0.5)
    pool.child_ready(2, 0.6)
    pool.spawned(3, 0.7)
    pool.channel_lost(3, 0.8)
    assert pool.jail is JailState.UP


def test_a_task_waiting_on_starting_workers_is_told_so():
    pool = starting(PoolRules(size=1, acquire_timeout_s=5.0, ready_timeout_s=30.0))
    pool.submit("a", 1.0, 0.0, reuse="k")
    assert delivered(pool.tick(5.0)) == {"a": (Status.REJECTED, "no idle pyodide sandbox within 5 s "
                                                                "(pool of 1: 1 still starting, the "
                                                                "others busy)")}


def test_a_starting_worker_is_not_released_for_a_task_of_another_key():
    pool = starting(PoolRules(size=2, ready_timeout_s=30.0))
    pool.child_ready(1, 0.1)
    pool.submit("a", 1.0, 0.2, reuse="x")
    pool.result(1, OK, Status.OK, 0.3)  # worker 1 is x's now
    acts = pool.submit("b", 1.0, 0.4, reuse="y")  # worker 2 is starting: it will do
    assert acts == []
    assert pool.child_ready(2, 1.0) == [core.SendTask(2, "b", True)]


# -- rule 2: idle children are handed out oldest first ---------------------------------------


def test_a_task_takes_the_oldest_idle_child():
    pool = up()
    assert pool.submit("a", 1.0, 0) == [core.SendTask(1, "a")]
    assert pool.submit("b", 1.0, 0) == [core.SendTask(2, "b")]


# -- rule 3: a busy child's task ends one way -------------------------------------------------


def test_a_complete_frame_delivers_the_envelope_as_it_came():
    pool = up()
    pool.submit("a", 1.0, 0)
    acts = pool.result(1, OK, Status.OK, 0.01)
    assert of(acts, core.Deliver) == [core.Deliver("a", OK, Status.OK, 1)]


def test_the_deadline_kills_and_answers_timeout():
    pool = up()
    pool.submit("a", 1.5, 0)
    assert pool.wake_at() == 1.5
    assert pool.tick(1.49) == []
    acts = pool.tick(1.5)
    assert delivered(acts) == {"a": (Status.TIMEOUT, "exceeded the wall-clock timeout of 1.5 s")}
    assert core.Release(1) in acts


def test_a_cancel_kills_and_answers_crashed():
    pool = up()
    pool.submit("a", 1.0, 0)
    acts = pool.cancel("a", 0.1)
    assert delivered(acts) == {"a": (Status.CRASHED, "cancelled while running")}
    assert core.Release(1) in acts


def test_an_oversized_frame_is_output_limit():
    pool = up()
    pool.submit("a", 1.0, 0)
    acts = pool.oversized(1, 10_000, 1_000, 0.1)
    assert delivered(acts) == {"a": (Status.OUTPUT_LIMIT,
                                     "result of 10000 bytes exceeds the limit of 1000 bytes")}
    assert core.Release(1) in acts


def test_a_frame_that_is_not_an_envelope_is_crashed():
    pool = up()
    pool.submit("a", 1.0, 0)
    acts = pool.result(1, b"\xc1garbage", None, 0.1)
    assert delivered(acts) == {"a": (Status.CRASHED, "the sandboxed process sent a malformed result")}


def test_a_worker_that_answers_its_own_timeout_is_killed_only_after_the_grace():
    pool = starting()
    pool.child_ready(1, 0.0)
    pool.submit("a", 1.0, 0.0, reuse="k")
    assert pool.tick(1.2) == []  # its own interrupt has until 1.5
    timeout = outcome.encode(Status.TIMEOUT, "exceeded (interrupted inside the worker)")
    acts = pool.result(1, timeout, Status.TIMEOUT, 1.3)
    assert delivered(acts)["a"][0] is Status.TIMEOUT and core.Release(1) in acts


def test_a_worker_whose_interrupt_did_not_end_the_task_is_killed_from_outside():
    pool = starting()
    pool.child_ready(1, 0.0)
    pool.submit("a", 1.0, 0.0, reuse="k")
    acts = pool.tick(1.5)
    assert delivered(acts) == {"a": (Status.TIMEOUT, "exceeded the wall-clock timeout of 1 s "
                                                     "(killed from outside 0.5 s later: the "
                                                     "interrupt did not end it)")}
    assert core.Release(1) in acts


@pytest.mark.parametrize("wait_status, message", [
    (71 << 8, "the runtime failed"),
    (killed(signal.SIGABRT), "aborted at its heap limit"),
    (3 << 8, "the sandboxed process exited with code 3 without a result"),
])
def test_a_runtime_gives_its_exit_codes_and_signals_a_meaning(wait_status, message):
    rules = PoolRules(size=1, exit_reasons=((71, "the runtime failed"),),
                      signal_reasons=((signal.SIGABRT, "aborted at its heap limit"),))
    pool = up(rules)
    pool.submit("a", 1.0, 0)
    pool.channel_lost(1, 0.1)
    assert delivered(pool.exited(1, wait_status, False, 0.2)) == {"a": (Status.CRASHED, message)}


# -- rule 4: a channel that closes without a result ------------------------------------------


@pytest.mark.parametrize("wait_status, oom, status, message", [
    (killed(signal.SIGSYS), False, Status.VIOLATION, "killed for a forbidden operation (seccomp: SIGSYS)"),
    (killed(signal.SIGXCPU), False, Status.TIMEOUT, "killed for exceeding its CPU time limit"),
    (killed(signal.SIGKILL), True, Status.MEMORY_LIMIT,
     "killed by the kernel for exceeding the jail's memory cap"),
    (killed(signal.SIGKILL), False, Status.CRASHED, "killed by SIGKILL without a result"),
    (killed(signal.SIGSEGV), False, Status.CRASHED, "killed by SIGSEGV without a result"),
    (3 << 8, False, Status.CRASHED, "the sandboxed process exited with code 3 without a result"),
])
def test_the_exit_report_says_why_a_closed_channel_ended(wait_status, oom, status, message):
    pool = up()
    pool.submit("a", 1.0, 0)
    assert pool.channel_lost(1, 0.1) == []  # its channel closes as it dies: wait for the report
    assert pool.wants_cause(1)
    assert delivered(pool.exited(1, wait_status, oom, 0.11)) == {"a": (status, message)}


def test_a_child_killed_from_outside_is_not_blamed_on_the_snippet():
    """A child killed from outside was reported as 'the snippet closed its result channel
    without a result': its channel closed as it died, and the pool killed it again."""
    pool = up()
    pool.submit("a", 1.0, 0)
    assert pool.channel_lost(1, 0.1) == []
    acts = pool.exited(1, killed(signal.SIGKILL), False, 0.3)
    assert delivered(acts) == {"a": (Status.CRASHED, "killed by SIGKILL without a result")}


def test_a_child_alive_after_closing_its_channel_is_killed_and_the_snippet_named():
    pool = up()
    pool.submit("a", 1.0, 0)
    pool.channel_lost(1, 0.1)
    assert pool.wake_at() == pytest.approx(2.1)
    assert core.Kill(1) in pool.tick(2.1)  # no report: it lives, and closed its channel itself
    acts = pool.exited(1, killed(signal.SIGKILL), False, 2.2)
    assert delivered(acts) == {"a": (Status.CRASHED, "the snippet closed its result channel "
                                                     "without a result; the runner killed it")}


def test_an_exit_before_the_channel_closes_is_classified_at_once():
    pool = up()
    pool.submit("a", 1.0, 0)
    acts = pool.exited(1, killed(signal.SIGKILL), False, 0.1)
    assert delivered(acts) == {"a": (Status.CRASHED, "killed by SIGKILL without a result")}


def test_no_exit_report_in_time_is_crashed_saying_so():
    pool = up()
    pool.submit("a", 1.0, 0)
    pool.channel_lost(1, 0.1)
    pool.tick(2.1)  # killed: it was alive
    assert pool.wake_at() == pytest.approx(4.1)
    acts = pool.tick(4.1)
    assert delivered(acts) == {"a": (Status.CRASHED, "the sandboxed process vanished without a "
                                                     "result (no exit report)")}


# -- rule 5: frozen, then released -------------------------------------------------------------


def test_a_finished_child_is_stopped_then_released_after_the_delay():
    pool = up()
    pool.submit("a", 1.0, 0)
    acts = pool.result(1, OK, Status.OK, 1.0)
    assert core.Release(1) not in acts
    assert pool.children[1].state is ChildState.FROZEN
    assert pool.tick(1.002) == []
    assert core.Release(1) in pool.tick(1.003)


def test_under_a_stream_a_frozen_childs_replacement_is_spawned_at_once():
    pool = up(PoolRules(size=4))
    for key in "abc":
        pool.submit(key, 1.0, 0)
    acts = pool.result(1, OK, Status.OK, 1.0)  # one idle child of four: under pressure
    assert core.Spawn(1) in acts and core.Release(1) not in acts


def test_spaced_tasks_leave_the_fork_for_the_release():
    pool = up(PoolRules(size=4))
    pool.submit("a", 1.0, 0)
    acts = pool.result(1, OK, Status.OK, 1.0)  # three idle of four
    assert not of(acts, core.Spawn) and core.Release(1) not in acts
    assert core.Spawn(1) in pool.tick(1.003)


def test_without_spawn_ahead_the_replacement_waits_for_the_release():
    pool = up(PoolRules(size=2, spawn_ahead=False))
    pool.submit("a", 1.0, 0)
    assert not of(pool.result(1, OK, Status.OK, 1.0), core.Spawn)
    assert core.Spawn(1) in pool.tick(1.003)


def test_no_more_than_size_children_wait_frozen():
    pool = up(PoolRules(size=2, recycle_delay_s=1.0))
    pool.submit("a", 1.0, 0)
    pool.result(1, OK, Status.OK, 0.1)  # frozen; its replacement (3) comes
    pool.spawned(3, 0.2)
    pool.submit("b", 1.0, 0.3)
    pool.result(2, OK, Status.OK, 0.4)  # frozen too
    pool.spawned(4, 0.5)
    pool.submit("c", 1.0, 0.6)
    assert core.Release(3) in pool.result(3, OK, Status.OK, 0.7)  # two frozen already


def test_a_finished_child_is_released_at_once_when_no_child_is_idle():
    pool = up()
    pool.submit("a", 1.0, 0)
    pool.submit("b", 1.0, 0)
    acts = pool.result(1, OK, Status.OK, 0.5)
    assert core.Release(1) in acts


def test_a_waiting_task_releases_frozen_children_at_once():
    pool = up(PoolRules(size=1, recycle_delay_s=1.0))
    pool.submit("a", 1.0, 0)
    pool.result(1, OK, Status.OK, 0.1)  # no idle child: released at once
    pool.spawned(2, 0.2)
    pool.submit("b", 1.0, 0.3)
    pool.result(2, OK, Status.OK, 0.4)
    assert pool.children[2].state is ChildState.RELEASED  # nothing idle: at once


# -- rule 5h: refills at the tasks' priority while the pool is short ----------------------------

HURRY = PoolRules(size=4, hurry=True)


def test_a_pool_short_of_idle_children_hurries_its_refills():
    pool = up(HURRY)  # four idle: nothing said
    pool.submit("a", 1.0, 0)
    pool.submit("b", 1.0, 0)
    acts = pool.submit("c", 1.0, 0)  # one idle of four, none on its way yet
    assert of(acts, core.Hurry) == []
    acts = pool.result(1, OK, Status.OK, 1.0)  # its replacement is asked for: short
    assert core.Spawn(1) in acts
    assert of(acts, core.Hurry) == [core.Hurry(True)]


def test_a_refilled_pool_goes_back_to_the_background():
    pool = up(HURRY)
    for key in "abc":
        pool.submit(key, 1.0, 0)
    pool.result(1, OK, Status.OK, 1.0)  # hurrying: one idle, one on its way
    pool.result(2, OK, Status.OK, 1.0)  # two on their way
    assert pool.hurrying is True
    # two idle of four (half): back to the background, though one is still on its way
    assert of(pool.spawned(5, 1.1), core.Hurry) == [core.Hurry(False)]


def test_hurry_is_said_only_when_it_changes():
    pool = up(HURRY)
    for key in "abc":
        pool.submit(key, 1.0, 0)
    said = of(pool.result(1, OK, Status.OK, 1.0), core.Hurry)
    said += of(pool.result(2, OK, Status.OK, 1.0), core.Hurry)
    assert said == [core.Hurry(True)]


def test_a_waiting_task_hurries_the_refill():
    pool = up(PoolRules(size=1, hurry=True))
    pool.submit("a", 1.0, 0)
    pool.submit("b", 1.0, 0)  # waits
    acts = pool.result(1, OK, Status.OK, 0.5)  # released at once, a fork asked for
    assert core.Spawn(1) in acts
    assert of(acts, core.Hurry) == [core.Hurry(True)]


def test_a_new_jail_starts_at_the_background():
    pool = up(PoolRules(size=1, hurry=True))
    pool.submit("a", 1.0, 0)
    pool.submit("b", 1.0, 0)
    pool.result(1, OK, Status.OK, 0.5)  # hurrying
    pool.jail_lost("gone", 1.0)
    assert pool.hurrying is False


def test_without_hurry_nothing_is_said():
    pool = up(PoolRules(size=1))
    pool.submit("a", 1.0, 0)
    pool.submit("b", 1.0, 0)
    assert of(pool.result(1, OK, Status.OK, 0.5), core.Hurry) == []


# -- rule 5w: worker mode -----------------------------------------------------------------------


def test_a_worker_serves_its_key_again_after_ok_or_error_only():
    pool = up(PoolRules(size=1, worker_tasks=3))
    assert pool.submit("a", 1.0, 0, reuse="lane-x") == [core.SendTask(1, "a", True)]
    pool.result(1, OK, Status.OK, 0.1)
    assert pool.children[1].state is ChildState.IDLE
    assert pool.submit("b", 1.0, 0.2, reuse="lane-x") == [core.SendTask(1, "b", True)]
    acts = pool.result(1, outcome.encode(Status.OUTPUT_LIMIT, "big"), Status.OUTPUT_LIMIT, 0.3)
    assert core.Release(1) in acts


def test_a_worker_never_serves_another_key_nor_a_fresh_task():
    pool = up(PoolRules(size=2))
    pool.submit("a", 1.0, 0, reuse="x")
    pool.result(1, OK, Status.OK, 0.1)
    assert pool.submit("b", 1.0, 0.2, reuse="y") == [core.SendTask(2, "b", True)]
    pool.result(2, OK, Status.OK, 0.3)
    acts = pool.submit("c", 1.0, 0.4)  # fresh: no fresh child idle; the oldest worker gives way
    assert core.Release(1) in acts and not of(acts, core.SendTask)
    assert pool.spawned(3, 0.5) == [core.SendTask(3, "c", False)]


def test_a_worker_retires_after_its_tasks_its_age_or_when_it_asks():
    pool = up(PoolRules(size=1, worker_tasks=2, worker_age_s=10.0))
    pool.submit("a", 1.0, 0, reuse="x")
    pool.result(1, OK, Status.OK, 0.1)
    pool.submit("b", 1.0, 0.2, reuse="x")
    assert pool.children[1].state is ChildState.BUSY
    assert core.Release(1) in pool.result(1, OK, Status.OK, 0.3)  # its second task: done
    pool.spawned(2, 0.4)
    pool.submit("c", 1.0, 0.5, reuse="x")
    assert core.Release(2) in pool.result(2, OK, Status.OK, 0.6, retire=True)  # it asked
    pool.spawned(3, 0.7)
    pool.submit("d", 1.0, 0.8, reuse="x")
    pool.result(3, OK, Status.OK, 0.9)
    assert pool.children[3].state is ChildState.IDLE
    assert pool.wake_at() == pytest.approx(10.7)
    assert core.Release(3) in pool.tick(10.7)  # past its age while idle


# -- rule 6: released children are reaped; idle ones that die are replaced --------------------


def test_a_released_child_is_forgotten_only_at_its_exit_report():
    pool = up()
    pool.submit("a", 1.0, 0)
    pool.tick(1.0)  # timeout: released
    assert pool.children[1].state is ChildState.RELEASED
    assert pool.exited(1, killed(signal.SIGKILL), False, 1.1) == []
    assert 1 not in pool.children


def test_an_idle_child_that_dies_is_replaced():
    pool = up()
    acts = pool.exited(2, killed(signal.SIGKILL), True, 0.5)
    assert acts == [core.Release(2), core.Spawn(1)]


def test_an_idle_child_whose_channel_closes_is_released():
    pool = up()
    assert pool.channel_lost(1, 0.5) == [core.Release(1), core.Spawn(1)]


# -- rules 7 and 8: waiting tasks --------------------------------------------------------------


def test_a_waiting_task_is_rejected_at_its_acquire_deadline():
    pool = up(PoolRules(size=1, acquire_timeout_s=5.0))
    pool.submit("a", 10.0, 0)
    assert pool.submit("b", 1.0, 1.0) == []
    assert delivered(pool.tick(6.0)) == {"b": (Status.REJECTED, "no idle python sandbox within "
                                                                "5 s (pool of 1, all busy)")}


def test_waiting_tasks_are_served_in_order():
    pool = up(PoolRules(size=1, recycle_delay_s=0.0))
    pool.submit("a", 1.0, 0)
    pool.submit("b", 1.0, 0)
    pool.submit("c", 1.0, 0)
    pool.result(1, OK, Status.OK, 0.1)
    assert pool.spawned(2, 0.2) == [core.SendTask(2, "b")]


def test_cancelling_a_waiting_task_is_rejected_before_it_ran():
    pool = up(PoolRules(size=1))
    pool.submit("a", 1.0, 0)
    pool.submit("b", 1.0, 0)
    assert delivered(pool.cancel("b", 0.1)) == {"b": (Status.REJECTED, "cancelled before it ran")}


# -- rule 9: one outcome per task --------------------------------------------------------------


def test_nothing_after_the_outcome_answers_again():
    pool = up()
    pool.submit("a", 1.0, 0)
    pool.result(1, OK, Status.OK, 0.1)
    assert of(pool.cancel("a", 0.2), core.Deliver) == []
    assert of(pool.tick(5.0), core.Deliver) == []
    assert of(pool.exited(1, killed(signal.SIGKILL), False, 5.0), core.Deliver) == []


# -- rules 10 to 12: the jail -------------------------------------------------------------------


def test_a_jail_that_does_not_say_ready_in_time_is_lost_and_restarted():
    pool = PoolCore("python", RULES)
    pool.start(0)
    acts = pool.tick(10.0)
    assert core.StopJail() in acts and pool.jail is JailState.DOWN
    assert pool.jail_reason == "no ready message within 10 s"
    assert pool.wake_at() == pytest.approx(10.1)
    assert pool.tick(10.1) == [core.StartJail()]


def test_a_jail_death_ends_its_tasks_naming_the_reason_and_keeps_waiting_ones():
    pool = up(PoolRules(size=1))
    pool.submit("a", 5.0, 0)
    pool.submit("b", 5.0, 0)
    acts = pool.jail_lost("nsjail was killed by SIGKILL", 1.0)
    assert delivered(acts) == {"a": (Status.CRASHED, "the python jail died while running the task: "
                                                     "nsjail was killed by SIGKILL")}
    assert core.Release(1) in acts and core.StopJail() in acts
    assert pool.children == {}
    pool.tick(1.1)  # restarted
    pool.jail_ready(1.2)
    assert pool.spawned(7, 1.3) == [core.SendTask(7, "b")]


def test_the_restart_backoff_grows_and_resets_once_the_jail_stayed_up():
    pool = PoolCore("python", RULES)
    pool.start(0)
    waits = []
    now = 0.0
    for _ in range(4):
        pool.jail_lost("boom", now)
        waits.append(round(pool.jail_until - now, 3))
        now = pool.jail_until
        pool.tick(now)
    assert waits == [0.1, 0.5, 1.0, 2.0]
    pool.jail_ready(now)
    pool.jail_lost("boom", now + RULES.stable_s)
    assert round(pool.jail_until - (now + RULES.stable_s), 3) == 0.1


def test_close_answers_everyone_and_refuses_later_tasks():
    pool = up(PoolRules(size=1))
    pool.submit("a", 5.0, 0)
    pool.submit("b", 5.0, 0)
    acts = pool.close(1.0)
    assert delivered(acts) == {"a": (Status.CRASHED, "the sandbox was closed while the task ran"),
                               "b": (Status.REJECTED, "the sandbox was closed before the task ran")}
    assert core.StopJail() in acts
    assert delivered(pool.submit("c", 1.0, 2.0)) == {"c": (Status.REJECTED, "the sandbox is closed")}


def test_the_first_task_starts_a_jail_never_started():
    pool = PoolCore("javascript", RULES)
    assert core.StartJail() in pool.submit("a", 1.0, 0)


# -- the model check ------------------------------------------------------------------------------


class _Shell:
    """What a shell would see of the core's actions, with the invariants checked as they come."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.answers: dict[object, int] = {}
        self.spawned: set[int] = set()
        self.released: dict[int, int] = {}
        self.running: dict[int, object] = {}  # pid -> task
        self.exited: set[int] = set()
        self.reuse_of: dict[object, object] = {}  # task -> its reuse key
        self.served: dict[int, list[object]] = {}  # pid -> the reuse keys of its tasks
        self.says_ready = False  # a pool of workers (rule 1r)
        self.ready: set[int] = set()  # workers whose ready frame came

    def apply(self, actions: list[core.Action]) -> None:
        for a in actions:
            if isinstance(a, core.Deliver):
                self.answers[a.key] = self.answers.get(a.key, 0) + 1
                if a.pid is not None and self.running.get(a.pid) == a.key:
                    del self.running[a.pid]
            elif isinstance(a, core.SendTask):
                assert a.pid in self.spawned and a.pid not in self.released, (self.seed, a)
                assert not self.says_ready or a.pid in self.ready, (self.seed, "not ready", a)
                assert a.pid not in self.running, (self.seed, "child handed out twice", a)
                self.running[a.pid] = a.key
                history = self.served.setdefault(a.pid, [])
                reuse = self.reuse_of[a.key]
                # a child that ran a task before serves only further tasks of the same key
                assert not history or (reuse is not None and history[-1] == reuse), (self.seed, a)
                history.append(reuse)
            elif isinstance(a, core.Kill):
                assert a.pid not in self.released, (self.seed, "used after release", a)
            elif isinstance(a, core.Release):
                self.released[a.pid] = self.released.get(a.pid, 0) + 1
                assert self.released[a.pid] == 1, (self.seed, "released twice", a)


def _model_run(seed: int) -> None:
    rng = random.Random(seed)
    workers = seed % 2 == 1  # odd seeds: a pool of workers that say ready (rule 1r)
    rules = PoolRules(size=rng.randint(1, 3),
                      acquire_timeout_s=rng.choice([0.5, 2.0] + ([10.0] if workers else [])),
                      recycle_delay_s=rng.choice([0.0, 0.003, 0.5]),
                      worker_tasks=rng.choice([1, 3, 100]), exit_report_s=1.0,
                      ready_timeout_s=rng.choice([0.5, 10.0]) if workers else 0.0,
                      start_failures=rng.choice([1, 4]),
                      kill_grace_s=rng.choice([0.0, 0.5]) if workers else 0.0)
    pool = PoolCore("pyodide" if workers else "python", rules)
    shell = _Shell(seed)
    shell.says_ready = workers
    now = 0.0
    submitted: list[str] = []
    next_pid = 1
    shell.apply(pool.start(now))
    for step in range(120):
        now += rng.choice([0.0, 0.001, 0.01, 0.3, 1.5])
        event = rng.random()
        live = [pid for pid in shell.spawned if pid not in shell.exited]
        if event < 0.2:
            key = f"t{step}"
            submitted.append(key)
            shell.reuse_of[key] = rng.choice(["x", "y"] if workers else [None, None, "x", "y"])
            shell.apply(pool.submit(key, rng.choice([0.2, 1.0]), now, reuse=shell.reuse_of[key]))
        elif event < 0.3 and submitted:
            shell.apply(pool.cancel(rng.choice(submitted), now))
        elif event < 0.45 and pool.jail is JailState.UP and pool.pending:
            pid, next_pid = next_pid, next_pid + 1
            shell.spawned.add(pid)
            shell.apply(pool.spawned(pid, now))
        elif event < 0.6 and shell.running:
            pid = rng.choice(list(shell.running))
            status = rng.choice([Status.OK, Status.ERROR, Status.OUTPUT_LIMIT, None])
            shell.apply(pool.result(pid, OK, status, now, retire=rng.random() < 0.2))
        elif event < 0.67 and live:
            shell.apply(pool.channel_lost(rng.choice(live), now))
        elif event < 0.75 and live:
            pid = rng.choice(live)
            shell.exited.add(pid)
            shell.apply(pool.exited(pid, rng.choice([9, 31, 256]), rng.random() < 0.3, now))
        elif 0.75 <= event < 0.78:  # only in its own band: not whenever an earlier one did not fit
            shell.apply(pool.jail_lost("chaos", now))
            shell.exited |= shell.spawned
        elif event < 0.83 and pool.jail is JailState.STARTING:
            shell.apply(pool.jail_ready(now))
        elif event < 0.95 and workers and live:
            # a frame comes from a starting worker, or (rarely) from any other child
            starting = [pid for pid in live if pid in pool.children
                        and pool.children[pid].state is ChildState.STARTING]
            pid = rng.choice(starting if starting and rng.random() < 0.9 else live)
            if rng.random() < 0.85:
                if pid in starting:
                    shell.ready.add(pid)
                shell.apply(pool.child_ready(pid, now))
            else:
                shell.apply(pool.not_ready(pid, "garbage", now))
        else:
            shell.apply(pool.tick(now))
    shell.apply(pool.close(now + 100))
    assert all(shell.answers.get(k) == 1 for k in submitted), (seed, shell.answers)
    assert set(shell.answers) <= set(submitted)
    assert all(shell.released.get(pid) == 1 for pid in shell.spawned), (seed, shell.released)


def test_model_every_task_one_outcome_no_child_twice_every_child_released():
    """Random event sequences against the core: every submitted task gets exactly one outcome,
    no child runs two tasks at once, a child that ran a task serves only its own reuse key
    after it (never a fresh task, never another tenant), no action names a child after its
    release, and by the end (close) every child that was spawned has been released once;
    in pools of workers (odd seeds) a child gets a task only once it said ready."""
    for seed in range(400):
        _model_run(seed)
