"""What the socket monitor's events say about a connection (pure)."""

from __future__ import annotations

import pytest
import zmq

from sandbox.client.fakes import FakeBroker
from sandbox.link import LinkState, reach


def test_an_inproc_link_is_up_at_once_and_others_after_the_handshake():
    assert LinkState("inproc://x").up
    state = LinkState("tcp://127.0.0.1:1")
    assert not state.up
    state.on_event(zmq.EVENT_HANDSHAKE_SUCCEEDED)
    assert state.up
    state.on_event(zmq.EVENT_DISCONNECTED)
    assert not state.up and state.refused is None


def test_a_refused_key_is_named_and_a_later_success_clears_it():
    state = LinkState("tcp://broker:7700")
    state.on_event(zmq.EVENT_HANDSHAKE_FAILED_AUTH, 400)
    assert state.refused == "the server refused this key (broker tcp://broker:7700, status 400)"
    assert state.unreachable(3) == state.refused
    state.on_event(zmq.EVENT_HANDSHAKE_SUCCEEDED)
    assert state.up and state.refused is None


@pytest.mark.parametrize("event", [zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
                                   zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL])
def test_a_failed_handshake_says_what_to_check(event):
    state = LinkState("tcp://broker:7700")
    state.on_event(event, 32)
    assert state.unreachable(2) == ("the handshake with the broker at tcp://broker:7700 failed "
                                    "(wrong server key, or not a broker?); gave up after 2 s")


def test_nobody_there_says_so():
    assert LinkState("ipc:///x.sock").unreachable(1.5) == (
        "cannot reach the broker at ipc:///x.sock within 1.5 s (is it running?)")


def test_a_refused_connection_marks_the_link_absent_until_a_handshake():
    state = LinkState("ipc:///x.sock")
    state.on_event(zmq.EVENT_CONNECT_RETRIED, 100)
    assert state.absent
    state.on_event(zmq.EVENT_HANDSHAKE_SUCCEEDED)
    assert state.up and not state.absent


# -- reach: is a broker there? said at once (issue 14, item 4) ----------------------------------


def test_reach_says_no_daemon_at_once_where_nothing_listens(ipc_dir):
    """[14.4] `exec --connect` to no daemon waited ~40 s, then said '(is it running?)'."""
    endpoint = f"ipc://{ipc_dir}/nobody.sock"
    assert reach(zmq.Context.instance(), endpoint, None, timeout_s=60) == (
        f"no daemon at {endpoint} (nothing accepts connections there: is `sandbox serve` "
        "running?)")


def test_reach_is_satisfied_by_a_broker(ipc_dir):
    with FakeBroker(f"ipc://{ipc_dir}/b.sock") as broker:
        assert reach(zmq.Context.instance(), broker.endpoint, None, timeout_s=60) is None


def test_a_runner_socket_never_refuses_a_send_for_a_full_queue():
    """A runner's `done` met zmq.Again at the default high-water mark and was dropped (with a
    log line): the broker then held the task until its deadline. A runner's sends are bounded
    by its slots (one `done` each) and its heartbeats, so its queue has no mark."""
    from sandbox.link import prepare

    context = zmq.Context.instance()
    runner, client = context.socket(zmq.DEALER), context.socket(zmq.DEALER)
    try:
        prepare(runner, None, immediate=False)
        prepare(client, None)
        assert (runner.getsockopt(zmq.SNDHWM), client.getsockopt(zmq.SNDHWM)) == (0, 1000)
    finally:
        runner.close(0)
        client.close(0)


def test_a_key_name_with_no_file_says_the_file_does_not_exist(tmp_path):
    from sandbox.errors import ConfigError
    from sandbox.link import CurveClient

    with pytest.raises(ConfigError) as caught:
        CurveClient.load(str(tmp_path), "nobody")
    assert str(caught.value) == (
        f"the key file {tmp_path}/nobody.key_secret does not exist (`sandbox keys {tmp_path} "
        "--client nobody` makes it, or --runner nobody)")
