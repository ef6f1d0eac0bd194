"""What the socket monitor's events say about a connection (pure)."""

from __future__ import annotations

import pytest
import zmq

from sandbox.link import LinkState


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
