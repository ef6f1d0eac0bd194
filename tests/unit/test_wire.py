"""Framing and envelopes: untrusted bytes parse or raise WireError, nothing else."""

from __future__ import annotations

import socket

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtimes import wire
from runtimes.wire import Status


def test_result_envelope_round_trip():
    body = wire.encode_result(Status.OK, "ok", value=b"\x2a", stdout="hi\n", duration_ms=1.5)
    msg = wire.decode_result(body, max_bytes=1 << 20)
    assert msg["status"] is Status.OK
    assert msg["value"] == b"\x2a"
    assert msg["stdout"] == "hi\n"


def test_unknown_version_is_refused_naming_both():
    body = msgpack.packb({"v": 99, "status": "ok"})
    with pytest.raises(wire.WireError, match="99.*1"):
        wire.decode_result(body, max_bytes=1 << 20)


def test_unknown_status_is_refused():
    body = msgpack.packb({"v": 1, "status": "great", "message": "", "stdout": "",
                          "truncated": False, "duration_ms": 0})
    with pytest.raises(wire.WireError, match="unknown status"):
        wire.decode_result(body, max_bytes=1 << 20)


def test_oversized_message_is_refused():
    body = wire.encode_result(Status.OK, "x" * 1000)
    with pytest.raises(wire.WireError, match="exceeds"):
        wire.decode_result(body, max_bytes=100)


@settings(max_examples=1500, deadline=None)
@given(st.binary(max_size=256))
def test_decode_result_fails_one_way(blob):
    try:
        wire.decode_result(blob, max_bytes=1 << 16)
    except wire.WireError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["v", "status", "message", "stdout", "truncated",
                                        "duration_ms", "value", "error"]),
                       st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text() | st.binary()
                       | st.dictionaries(st.text(), st.text())))
def test_decode_result_fails_one_way_on_wrong_fields(fields):
    try:
        wire.decode_result(msgpack.packb(fields), max_bytes=1 << 16)
    except wire.WireError:
        pass


def test_frames_over_a_stream():
    a, b = socket.socketpair()
    with a, b:
        wire.send_frame(a, b"hello")
        big = b"x" * 200_000
        wire.send_frame(a, big)
        assert wire.recv_frame(b, 1 << 20) == b"hello"
        assert wire.recv_frame(b, 1 << 20) == big


def test_frame_over_limit_is_refused():
    a, b = socket.socketpair()
    with a, b:
        wire.send_frame(a, b"x" * 100)
        with pytest.raises(wire.OversizedFrame):
            wire.recv_frame(b, 10)


def test_truncated_frame_is_refused():
    a, b = socket.socketpair()
    with b:
        a.sendall(b"\x00\x00\x00\x10abc")
        a.close()
        with pytest.raises(wire.WireError, match="closed"):
            wire.recv_frame(b, 1 << 20)


def test_control_messages_carry_fds():
    import os

    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    r, w = os.pipe()
    with a, b:
        wire.send_control(a, {"op": "spawned", "pid": 7}, (r,))
        msg, fds = wire.recv_control(b)
        assert msg == {"v": 1, "op": "spawned", "pid": 7}
        assert len(fds) == 1
        os.write(w, b"z")
        assert os.read(fds[0], 1) == b"z"
        for fd in (r, w, *fds):
            os.close(fd)
        a.close()
        assert wire.recv_control(b) == (None, [])


def test_a_task_without_allow_lists_may_import_nothing():
    body = wire.encode_task(code="return 1", data=b"\xc0", as_bytes=1, memory_bytes=1, cpu_s=1,
                            stdout_bytes=1, result_bytes=1024)
    assert wire.unpack(body, max_bytes=1 << 20)["imports"] == {"stdlib": [], "external": []}
