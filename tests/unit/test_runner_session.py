"""The runner's session core (``sandbox.host.session``): its rules, with the clock passed in."""

from __future__ import annotations

import pytest

from sandbox.host import session as s

HB, LIVENESS = 1.0, 3


def opened(now: float = 0.0) -> s.Session:
    """A session whose connection came up at ``now``."""
    core = s.Session(HB, LIVENESS)
    core.opened(now)
    core.link_up(now)
    return core


def test_rule_1_the_first_heartbeat_is_due_one_interval_after_the_connection_is_up():
    core = opened(10.0)
    assert (core.tick(10.5), core.wake_at()) == (None, 11.0)
    assert core.tick(11.0) == s.Beat()
    assert core.wake_at() == 12.0


def test_rule_1_a_session_whose_connection_never_comes_up_waits_without_expiring():
    """A runner cut off from its broker kept a fresh socket for 3 s, then waited up to 32 s
    of backoff with no socket at all: back 16-32 s after the link returned."""
    core = s.Session(HB, LIVENESS)
    core.opened(0.0)
    assert [core.tick(t) for t in (1.0, 5.0, 100.0)] == [None, None, None]
    assert core.wake_at() is None
    core.link_up(100.5)
    assert (core.tick(101.5), core.tick(104.0)) == (s.Beat(), s.Expired())


def test_rule_1_an_inproc_connection_is_up_at_once():
    core = s.Session(HB, LIVENESS)
    core.opened(0.0, up=True)
    assert core.tick(1.0) == s.Beat()


def test_rule_2_a_frame_from_the_broker_restarts_the_liveness_clock():
    core = opened()
    for now in (1.0, 2.0, 3.0):
        assert core.tick(now) == s.Beat()
    core.heard(3.0)
    assert core.tick(5.9) == s.Beat()  # 2.9 s of silence: still alive
    assert core.tick(6.1) == s.Expired()


def test_rule_3_silence_past_the_liveness_expires_the_session_once():
    core = opened()
    assert core.tick(3.01) == s.Expired()
    assert (core.tick(4.0), core.tick(10.0), core.wake_at()) == (None, None, None)


def test_rule_4_a_connection_that_drops_after_it_was_up_ends_the_session_at_once():
    """After a broker restart, runners waited 3 s of liveness and 1 s of backoff although
    the socket monitor saw their connection reset."""
    core = opened()
    core.heard(0.5)
    assert core.link_down(0.6) == s.Expired()
    assert (core.link_down(0.7), core.tick(0.8)) == (None, None)
    assert core.closed(0.6) == 0.0
    assert core.tick(0.6) == s.Resume()


def test_rule_4_a_connection_that_was_never_up_does_not_end_the_session_when_it_drops():
    core = s.Session(HB, LIVENESS)
    core.opened(0.0)
    assert core.link_down(0.5) is None
    assert core.active


@pytest.mark.parametrize("vain_sessions, delay_s", [(1, 2.0), (2, 4.0), (3, 8.0), (5, 32.0),
                                                    (9, 32.0)])
def test_rule_5_sessions_that_connect_but_never_hear_the_broker_back_off(vain_sessions, delay_s):
    core = s.Session(HB, LIVENESS)
    delay = 0.0
    for _ in range(vain_sessions):
        core.opened(0.0)
        core.link_up(0.0)
        assert core.tick(3.5) == s.Expired()
        delay = core.closed(3.5)
    assert delay == delay_s


def test_rule_5_a_session_in_which_the_broker_spoke_reconnects_at_once_and_resets_the_backoff():
    core = opened()
    assert core.tick(3.5) == s.Expired()
    assert core.closed(3.5) == 2.0
    core.opened(5.5)
    core.link_up(5.5)
    core.heard(6.0)
    assert core.tick(9.5) == s.Expired()  # a partition: silent past the liveness
    assert (core.closed(9.5), core.failures, core.resume_at) == (0.0, 0, 9.5)


def test_rule_5_the_wait_ends_with_one_resume_at_its_instant():
    core = opened()
    assert core.tick(3.5) == s.Expired()
    core.closed(5.0)
    assert (core.wake_at(), core.tick(6.5)) == (7.0, None)
    assert core.tick(7.0) == s.Resume()
    assert (core.tick(7.1), core.resume_at, core.wake_at()) == (None, None, None)


def test_a_session_closed_for_good_sets_no_wait():
    core = opened()
    core.closed(1.0, reconnect=False)
    assert (core.resume_at, core.wake_at(), core.tick(100.0)) == (None, None, None)


# -- rule 7: the tasks outlive the session -----------------------------------------------------


def test_rule_7_a_holding_list_is_answered_task_by_task():
    """[26.2] A runner that came back could not finish and report the tasks it kept running."""
    kept = s.Kept()
    for task_id in ("running", "done", "lost-done", "never-sent"):
        if task_id != "never-sent":
            kept.received(task_id)
    kept.finished("done", b"frame-of-done", 1.0)
    answers = kept.holding(("running", "done", "lost-done", "missing"), running={"running"})
    assert answers == s.Answers(resend=[b"frame-of-done"], lost=["lost-done"],
                                missing=["missing"])


def test_rule_7_done_frames_are_kept_for_keep_s_and_within_max_bytes():
    kept = s.Kept(keep_s=10.0, max_bytes=10)
    for task_id in ("a", "b", "c"):
        kept.received(task_id)
    kept.finished("a", b"12345", 0.0)
    kept.finished("b", b"12345", 5.0)
    assert kept.holding(("a", "b"), set()).resend == [b"12345", b"12345"]
    kept.finished("c", b"1", 6.0)  # 11 bytes: the oldest goes
    assert kept.holding(("a", "b", "c"), set()) == s.Answers([b"12345", b"1"], ["a"], [])
    kept.prune(15.5)  # b is older than 10 s now
    assert kept.holding(("b", "c"), set()) == s.Answers([b"1"], ["b"], [])


def test_rule_7_received_ids_are_bounded():
    kept = s.Kept(max_ids=2)
    for task_id in ("a", "b", "c"):
        kept.received(task_id)
    assert kept.holding(("a", "b", "c"), set()).missing == ["a"]


def test_rule_7_what_runs_here_that_the_broker_does_not_hold_is_stopped():
    kept = s.Kept()
    kept.received("held")
    kept.received("forgotten")
    assert kept.holding(["held"], running={"held", "forgotten"}).stop == ["forgotten"]
