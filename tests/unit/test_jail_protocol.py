"""The jail boundary: framing, the typed control messages and the task, the result envelope.
Untrusted bytes parse or raise WireError, nothing else."""

from __future__ import annotations

import os
import socket

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtimes import framing, outcome, protocol
from runtimes.framing import WireError
from runtimes.outcome import ErrorDetail, Status

ALL = (protocol.Init, protocol.Spawn, protocol.Ready, protocol.Spawned, protocol.Exited,
       protocol.WorkerReady, protocol.Task, protocol.Answer)
SPEC = protocol.WorkerSpec("/usr/bin/node", "/sandbox/runtimes/pyodide/worker.mjs", 96, 25600,
                           3600, '{"dist": "/sandbox/pyodide"}', ("/sandbox/pyodide",), (), True)
TASK = protocol.Task(code="return 1", data=b"\xc0", as_bytes=1 << 30, memory_bytes=1 << 28,
                     cpu_s=6, stdout_bytes=1024, result_bytes=4096, policy="restricted",
                     imports=protocol.Imports(("json",), ("numpy",)))


@pytest.mark.parametrize("msg", [
    protocol.Init(b"\x06\x00\x00\x00\x00\x00\xff\x7f", (0,), ("numpy",)),
    protocol.Init(b"\x06\x00\x00\x00\x00\x00\xff\x7f", (0,), (), SPEC),
    protocol.WorkerReady("3.11.3", {"attrs": "ModuleNotFoundError: attrs"}),
    protocol.Spawn(4),
    protocol.Ready(1, {"numpy": "ImportError: no"}),
    protocol.Spawned(42),
    protocol.Exited(42, 9),
    TASK,
    protocol.Task("x = 1", b"\xc0", 1 << 30, 1 << 28, 6, 1024, 4096, reusable=True, session=True),
    protocol.Task("x", b"\xc0", 1 << 30, 1 << 28, 6, 1024, 4096, calls=("helpers.httpRequest",)),
    protocol.Answer(3, True, '{"a":1}'),
    protocol.Answer(4, False, ""),
])
def test_every_message_round_trips(msg):
    assert protocol.decode(protocol.encode(msg), ALL, max_bytes=protocol.MAX_TASK_BYTES) == msg


def test_a_call_round_trips_and_is_told_from_an_envelope_and_output():
    body = protocol.encode_call(protocol.Call(9, "helpers.httpRequest", '[{"url":"http://x/"}]'))
    assert protocol.is_call(body) and not protocol.is_output(body)
    assert protocol.decode_call(body) == protocol.Call(9, "helpers.httpRequest", '[{"url":"http://x/"}]')
    assert not protocol.is_call(outcome.encode(Status.OK, "ok"))


@pytest.mark.parametrize("body", [
    b"\x01", b"\x01\xc1", b"\x01" + msgpack.packb([1, "n"]), b"\x01" + msgpack.packb([-1, "n", "[]"]),
    b"\x01" + msgpack.packb([1, "", "[]"]), b"\x01" + msgpack.packb([1, "n" * 129, "[]"]),
    b"\x01" + msgpack.packb([1, "n", b"[]"]), b"\x01" + msgpack.packb({"id": 1}),
])
def test_a_malformed_call_is_refused(body):
    with pytest.raises(WireError):
        protocol.decode_call(body)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=128))
def test_call_decode_fails_one_way(blob):
    try:
        protocol.decode_call(b"\x01" + blob)
    except WireError:
        pass


def test_a_receiver_takes_only_the_types_it_names():
    with pytest.raises(WireError, match="unexpected message type 'ready'"):
        protocol.decode(protocol.encode(protocol.Ready(1)), (protocol.Spawn,))


def test_a_task_without_allow_lists_may_import_nothing():
    raw = msgpack.unpackb(protocol.encode(protocol.Task("x", b"", 1, 1, 1, 1, 1)))
    assert raw["imports"] == {"stdlib": [], "external": [], "narrowed": False, "transitive": True}


@pytest.mark.parametrize("raw, fragment", [
    ({"v": 2, "t": "spawn", "count": 1}, "version 2"),
    ({"v": 1.0, "t": "spawn", "count": 1}, "version 1.0"),
    ({"v": True, "t": "spawn", "count": 1}, "version True"),
    ({"v": 1, "t": "spawn"}, "'count' is missing"),
    ({"v": 1, "t": "spawn", "count": 65}, "'count' must be an integer in 0..64"),
    ({"v": 1, "t": "spawn", "count": True}, "'count' must be an integer"),
    ({"v": 1, "t": "spawn", "count": 1, "extra": 1}, "unknown field(s) extra"),
    ({"v": 1, "t": "exited", "pid": 3, "status": -1}, "'status' must be an integer"),
    ({"v": 1, "t": "init", "seccomp_program": b"\x00" * 7, "pid_slots": []}, "whole number"),
    ({"v": 1, "t": "init", "seccomp_program": b"\x00" * 8, "pid_slots": [1]}, "instruction indexes"),
    ({"v": 1, "t": "ready", "pid": 1, "preload_failed": {"x": 1}}, "map module names"),
    ({"v": 1, "t": "worker_ready", "python": 3}, "'python' must be a string"),
    ({"v": 1, "t": "init", "seccomp_program": b"\x00" * 8, "pid_slots": [], "worker": []},
     "'worker' must be a map"),
    ({"v": 1, "t": "init", "seccomp_program": b"\x00" * 8, "pid_slots": [],
      "worker": {"node": "/n", "script": "/s", "heap_mb": 1, "address_space_mb": 64, "cpu_s": 1,
                 "settings": "{}"}}, "'heap_mb' must be an integer in 16.."),
    ({"v": 1, "t": "init", "seccomp_program": b"\x00" * 8, "pid_slots": [],
      "worker": {"node": "/n", "script": "/s", "heap_mb": 16, "address_space_mb": 64,
                 "cpu_s": 1}}, "worker: field 'settings' is missing"),
])
def test_bad_messages_are_refused_naming_what_is_wrong(raw, fragment):
    with pytest.raises(WireError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        protocol.decode(msgpack.packb(raw), ALL)


def test_a_task_with_an_unknown_policy_is_refused():
    raw = msgpack.unpackb(protocol.encode(TASK))
    raw["policy"] = "lenient"
    with pytest.raises(WireError, match="unknown policy 'lenient'"):
        protocol.decode(msgpack.packb(raw), (protocol.Task,), max_bytes=1 << 20)


@settings(max_examples=1500, deadline=None)
@given(st.binary(max_size=256))
def test_protocol_decode_fails_one_way(blob):
    try:
        protocol.decode(blob, ALL)
    except WireError:
        pass


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(
    st.sampled_from(["v", "t", "count", "pid", "status", "seccomp_program", "pid_slots", "preload",
                     "preload_failed", "code", "data", "as_bytes", "memory_bytes", "cpu_s",
                     "stdout_bytes", "result_bytes", "policy", "imports", "worker", "python"]),
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text() | st.binary()
    | st.lists(st.integers(-(2**63), 2**63 - 1) | st.text(), max_size=4)
    | st.dictionaries(st.text(), st.text())))
def test_protocol_decode_fails_one_way_on_wrong_fields(fields):
    try:
        protocol.decode(msgpack.packb({"v": 1, **fields}), ALL)
    except WireError:
        pass


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(
    st.sampled_from(["node", "script", "heap_mb", "address_space_mb", "cpu_s", "settings",
                     "read_paths", "write_paths", "debug", "other"]),
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text() | st.binary()
    | st.lists(st.text(), max_size=4)))
def test_a_worker_spec_decodes_or_fails_one_way(worker):
    body = msgpack.packb({"v": 1, "t": "init", "seccomp_program": b"\x00" * 8, "pid_slots": [],
                          "worker": worker})
    try:
        protocol.decode(body, ALL)
    except WireError:
        pass


# -- the result envelope --------------------------------------------------------------------


def test_envelope_round_trip_and_peek():
    body = outcome.encode(Status.ERROR, "ValueError: x", stdout="hi\n", duration_ms=1.5,
                          error=ErrorDetail("ValueError", "x", "tb"))
    env = outcome.decode(body, max_bytes=1 << 20)
    assert env == outcome.Envelope(Status.ERROR, "ValueError: x", None, "hi\n", False,
                                   ErrorDetail("ValueError", "x", "tb"), 1.5, False)
    assert outcome.peek(body) == (Status.ERROR, False)
    assert outcome.peek(outcome.encode(Status.OK, "ok", retire=True)) == (Status.OK, True)


def test_a_worker_sets_retire_in_an_envelope_it_already_encoded():
    body = outcome.encode(Status.OK, "ok", value=b"\x2a", stdout="hi")
    marked = outcome.with_retire(body)
    assert outcome.peek(marked) == (Status.OK, True)
    assert outcome.decode(marked, max_bytes=1 << 20) == outcome.Envelope(
        Status.OK, "ok", value=b"\x2a", stdout="hi", retire=True)
    with pytest.raises(WireError):
        outcome.with_retire(b"\xc1 not an envelope")


def test_peek_of_garbage_is_none():
    assert outcome.peek(b"\xc1 not msgpack") is None
    assert outcome.peek(msgpack.packb({"message": "", "status": "ok"})) is None  # status not first


def test_unknown_envelope_version_is_refused_naming_both():
    body = msgpack.packb({"status": "ok", "v": 99})
    with pytest.raises(WireError, match="99.*1"):
        outcome.decode(body, max_bytes=1 << 20)


def test_unknown_status_is_refused():
    body = msgpack.packb({"status": "great", "v": 1, "message": "", "stdout": "",
                          "truncated": False, "duration_ms": 0})
    with pytest.raises(WireError, match="unknown status"):
        outcome.decode(body, max_bytes=1 << 20)


def test_oversized_envelope_is_refused():
    with pytest.raises(WireError, match="exceeds"):
        outcome.decode(outcome.encode(Status.OK, "x" * 1000), max_bytes=100)


@settings(max_examples=1500, deadline=None)
@given(st.binary(max_size=256))
def test_envelope_decode_fails_one_way(blob):
    try:
        outcome.decode(blob, max_bytes=1 << 16)
    except WireError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["v", "status", "message", "stdout", "truncated",
                                        "duration_ms", "value", "error"]),
                       st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text()
                       | st.binary() | st.dictionaries(st.text(), st.text())))
def test_envelope_decode_fails_one_way_on_wrong_fields(fields):
    try:
        outcome.decode(msgpack.packb(fields), max_bytes=1 << 16)
    except WireError:
        pass


# -- framing --------------------------------------------------------------------------------


def test_frames_over_a_stream():
    a, b = socket.socketpair()
    with a, b:
        framing.send_frame(a, b"hello")
        big = b"x" * 200_000
        framing.send_frame(a, big)
        assert framing.recv_frame(b, 1 << 20) == b"hello"
        assert framing.recv_frame(b, 1 << 20) == big


def test_frame_over_limit_is_refused():
    a, b = socket.socketpair()
    with a, b:
        framing.send_frame(a, b"x" * 100)
        with pytest.raises(framing.OversizedFrame):
            framing.recv_frame(b, 10)


def test_truncated_frame_is_refused():
    a, b = socket.socketpair()
    with b:
        a.sendall(b"\x00\x00\x00\x10abc")
        a.close()
        with pytest.raises(framing.ChannelClosed):
            framing.recv_frame(b, 1 << 20)


def test_the_frame_reader_takes_a_frame_in_pieces():
    a, b = socket.socketpair()
    with a, b:
        b.setblocking(False)
        reader = framing.FrameReader(1 << 20)
        assert reader.read(b) is None  # nothing there yet
        a.sendall(b"\x00\x00")
        assert reader.read(b) is None
        a.sendall(b"\x00\x05he")
        assert reader.read(b) is None
        a.sendall(b"llo")
        assert reader.read(b) == b"hello"


def test_the_frame_reader_refuses_an_oversized_frame_at_its_header():
    a, b = socket.socketpair()
    with a, b:
        b.setblocking(False)
        a.sendall(b"\x7f\xff\xff\xff")
        with pytest.raises(framing.OversizedFrame) as info:
            framing.FrameReader(1024).read(b)
        assert (info.value.size, info.value.limit) == (0x7FFFFFFF, 1024)


def test_the_frame_reader_sees_eof_inside_a_frame():
    a, b = socket.socketpair()
    with b:
        b.setblocking(False)
        a.sendall(b"\x00\x00\x00\x09abc")
        a.close()
        reader = framing.FrameReader(1024)
        assert reader.read(b) is None
        with pytest.raises(framing.ChannelClosed):
            reader.read(b)


def test_control_messages_carry_fds():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    r, w = os.pipe()
    with a, b:
        framing.send_control(a, protocol.encode(protocol.Spawned(7)), (r,))
        body, fds = framing.recv_control(b)
        assert body is not None
        assert protocol.decode(body, (protocol.Spawned,)) == protocol.Spawned(7)
        assert len(fds) == 1
        os.write(w, b"z")
        assert os.read(fds[0], 1) == b"z"
        for fd in (r, w, *fds):
            os.close(fd)
        a.close()
        assert framing.recv_control(b) == (None, [])
