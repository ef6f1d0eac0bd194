"""The runner's session core (``sandbox.host.session``): its rules, with the clock passed in."""

from __future__ import annotations

import pytest

from sandbox.host import session as s

HB, LIVENESS = 1.0, 3


def opened(now: float = 0.0) -> s.Session:
    core = s.Session(HB, LIVENESS)
    core.opened(now)
    return core


def test_rule_1_the_first_heartbeat_is_due_one_interval_after_the_session_opens():
    core = opened(10.0)
    assert (core.tick(10.5), core.wake_at()) == (None, 11.0)
    assert core.tick(11.0) == s.Beat()
    assert core.wake_at() == 12.0


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


@pytest.mark.parametrize("silent_sessions, delay_s", [(1, 2.0), (2, 4.0), (3, 8.0), (5, 32.0),
                                                      (9, 32.0)])
def test_rule_4_sessions_in_which_the_broker_was_never_heard_back_off(silent_sessions, delay_s):
    core = s.Session(HB, LIVENESS)
    delay = 0.0
    for _ in range(silent_sessions):
        core.opened(0.0)
        delay = core.closed(0.0)
    assert delay == delay_s


def test_rule_4_a_session_in_which_the_broker_spoke_resets_the_backoff():
    core = opened()
    core.closed(0.0)
    core.opened(0.0)
    core.heard(0.5)
    assert core.closed(1.0) == 1.0
    assert core.resume_at == 2.0


def test_rule_4_the_wait_ends_with_one_resume_at_its_instant():
    core = opened()
    core.heard(0.1)
    core.closed(5.0)
    assert (core.wake_at(), core.tick(5.5)) == (6.0, None)
    assert core.tick(6.0) == s.Resume()
    assert (core.tick(6.1), core.resume_at, core.wake_at()) == (None, None, None)


def test_a_session_closed_for_good_sets_no_wait():
    core = opened()
    core.closed(1.0, reconnect=False)
    assert (core.resume_at, core.wake_at(), core.tick(100.0)) == (None, None, None)
