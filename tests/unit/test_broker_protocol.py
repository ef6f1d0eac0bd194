"""The protocol module: every message round-trips, every bad frame is a ProtocolError."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker import protocol as p

EVERY_MESSAGE = [
    p.Submit("a", "python", "return 1", b"\xc0"),
    p.Submit("b", "javascript", "return data", b"\x01", p.TaskLimits(2.5, 64, 1024, 4096),
             priority=-3, lane="eval", group="gpu", version="0.10", wait_for_runner=False,
             queue_timeout_s=1.5, idempotent=True, max_attempts=3, deadline_s=12.5,
             client_secret=bytes(range(p.CLIENT_SECRET_BYTES))),
    p.Cancel("a"),
    p.Ping(),
    p.ResultMsg("a", "ok", "", b"\x80", 2, 1.25),
    p.ResultMsg("a", "crashed", "cancelled while running"),
    p.Rejected("a", "queue full (3 waiting)"),
    p.Rejected(None, "rejected: not a MessagePack message"),
    p.Pong(),
    p.Ready({"python": "3.11.7"}, 4, ("cpu", "eu"), "runner-1"),
    p.RunnerHeartbeat(3),
    p.RunnerHeartbeat(3, echo=12.5),
    p.Missing(("k:a", "k:b")),
    p.Done("k:a", b"\x80", "ok"),
    p.Bye(),
    p.TaskMsg("k:a", "python", "return 1", b"\xc0", p.TaskLimits(timeout_s=1)),
    p.CancelTask("k:a"),
    p.BrokerHeartbeat(),
    p.Submit("s", "python", "x = 1", b"\xc0", session="nb", session_op="open",
             idle_timeout_s=30.0, max_lifetime_s=600.0),
    p.TaskMsg("k:s", "python", "return x", b"\xc0", session="0123456789abcdef/nb"),
    p.SessionEnded("0123456789abcdef/nb", "it was idle for 30 s"),
    p.BrokerHeartbeat(clock=12.5),
    p.Holding(("k:a",)),
]


@pytest.mark.parametrize("msg", EVERY_MESSAGE, ids=lambda m: m.TYPE)
def test_every_message_round_trips(msg):
    assert p.decode(p.encode(msg)) == msg


def body(**fields) -> bytes:
    return msgpack.packb({"v": p.VERSION, **fields}, use_bin_type=True)


def submit_body(**overrides) -> bytes:
    fields = {"t": "submit", "id": "x", "runtime": "python", "code": "return 1", "data": b"\xc0"}
    fields.update(overrides)
    return body(**{k: v for k, v in fields.items() if v is not ...})


@pytest.mark.parametrize(
    ("frame", "message", "msg_id"),
    [
        (b"\xc1", "not a MessagePack message", None),
        (b"", "not a MessagePack message", None),
        (msgpack.packb([1, 2]), "a message must be a MessagePack map", None),
        (msgpack.packb({"v": 9, "t": "submit", "id": "x"}),
         "protocol version 9 is not supported (this side speaks 1)", "x"),
        (msgpack.packb({"t": "submit", "id": "x"}), "protocol version None is not supported", "x"),
        (body(t="nope", id="x"), "unknown message type 'nope'", "x"),
        (body(t=["submit"], id="x"), "unknown message type ['submit']", "x"),
        (body(t={"a": 1}), "unknown message type", None),
        (submit_body(code=...), "malformed submit message", "x"),
        (submit_body(extra=1), "submit: unknown field(s) extra", "x"),
        (submit_body(code=b"bytes"), "'code' must be a string", "x"),
        (submit_body(data="text"), "'data' must be bytes (codec-encoded)", "x"),
        (submit_body(id=""), "'id' must be a string of 1 to 128 characters", None),
        (submit_body(id="x" * 129), "'id' must be a string of 1 to 128 characters", None),
        (submit_body(priority=True), "'priority' must be -1000..1000", "x"),
        (submit_body(priority=10**6), "'priority' must be -1000..1000", "x"),
        (submit_body(limits=[1]), "'limits' must be a map", "x"),
        (submit_body(limits={"cpu": 1}), "unknown limit(s): cpu", "x"),
        (submit_body(limits={"timeout_s": "1"}), "'timeout_s' must be a number", "x"),
        (submit_body(limits={"timeout_s": float("nan")}), "'timeout_s' must be a number", "x"),
        (submit_body(limits={"memory_mb": 1.5}), "'memory_mb' must be an integer", "x"),
        (submit_body(max_attempts=0), "'max_attempts' must be 1..10", "x"),
        (submit_body(wait_for_runner=1), "'wait_for_runner' must be a boolean", "x"),
        (submit_body(queue_timeout_s=-1), "'queue_timeout_s' must be 0..86400", "x"),
        (submit_body(code="x" * (p.MAX_CODE_BYTES + 1)), "'code' is over", "x"),
        (submit_body(session="nb", session_op="fork"), "'session_op' must be one of", "x"),
        (submit_body(session_op="open"), "'session_op', 'idle_timeout_s' and 'max_lifetime_s' "
         "apply to a session", "x"),
        (submit_body(session="x" * 129), "'session' must be a string of 1 to 128", "x"),
        (submit_body(session="nb", isolation="worker"), "a session's call runs in the session",
         "x"),
        (body(t="session_ended", session="", reason="x"), "'session' must be a string", None),
        (body(t="ready", runtimes={}, slots=1), "'runtimes' must map runtime names", None),
        (body(t="ready", runtimes={"python": 3}, slots=1), "'runtimes' must map", None),
        (body(t="ready", runtimes={"python": "3"}, slots=0), "'slots' must be 1..4096", None),
        (body(t="ready", runtimes={"python": "3"}, slots=1, groups="gpu"),
         "'groups' must be strings", None),
        (body(t="done", task_id="k", envelope="text", status="ok"), "'envelope' must be bytes",
         None),
        (body(t="done", task_id="k", envelope=b""), "malformed done message", None),
        (body(t="done", task_id="k", envelope=b"", status="fine"), "'status' must be one of",
         None),
        (body(t="result", id="x", status="ok", envelope="text"), "'envelope' must be bytes or nil",
         "x"),
        (msgpack.packb({"v": 1.0, "t": "ping"}), "protocol version 1.0 is not supported", None),
        (msgpack.packb({"v": True, "t": "ping"}), "protocol version True is not supported", None),
        (b"\x91" * 5000 + b"\xc0", "nested deeper than the decoder allows", None),
        (msgpack.packb({"v": 1, "t": "ping"}) + b"\x01", "extra bytes after the message", None),
        (msgpack.packb({str(i): 0 for i in range(65)}), "65 exceeds max_map_len(64)", None),
        (msgpack.packb([0] * 257), "257 exceeds max_array_len(256)", None),
        (msgpack.packb([[0] * 200] * 6), f"more than {p.MAX_ELEMENTS} elements in all", None),
        (msgpack.packb({"v": 1, "t": "ping", "x": msgpack.ExtType(1, b"x")}),
         "exceeds max_ext_len(0)", None),
        (msgpack.packb("x" * (p.MAX_STR_BYTES + 1)), "exceeds max_str_len", None),
        (submit_body(deadline_s=-1), "'deadline_s' must be", "x"),
        (submit_body(client_secret=b"short"), "'client_secret' must be 16 bytes or nil", "x"),
        (submit_body(client_secret="x" * 16), "'client_secret' must be 16 bytes or nil", "x"),
        (body(t="heartbeat", idle_children="3"), "'idle_children' must be an int", None),
    ],
)
def test_bad_frames_are_protocol_errors_with_a_clear_message(frame, message, msg_id):
    with pytest.raises(p.ProtocolError) as info:
        p.decode(frame)
    assert message in str(info.value)
    assert info.value.msg_id == msg_id


def test_a_frame_cheap_to_send_and_costly_to_build_is_refused_before_it_is_built():
    """A 7.9 MB map of a million keys (under the frame cap) built a million objects."""
    import tracemalloc

    frame = msgpack.packb({str(i): 0 for i in range(1_000_000)})
    tracemalloc.start()
    try:
        with pytest.raises(p.ProtocolError, match="1000000 exceeds max_map_len"):
            p.decode(frame)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024  # nothing of the million was built


def test_nested_lists_under_each_bound_are_stopped_by_the_total():
    """256 lists of 256 items pass every per-container bound; the total stops them."""
    frame = msgpack.packb({"v": 1, "t": "ping", "x": [[0] * 256] * 256})
    with pytest.raises(p.ProtocolError, match="elements in all"):
        p.decode(frame)


@pytest.mark.parametrize("field", ["code", "lane", "runtime", "group", "version", "policy"])
def test_a_lone_surrogate_in_a_text_field_is_a_protocol_error(field):
    fields = {"id": "a", "runtime": "python", "code": "return 1", "data": b"\xc0"}
    fields[field] = {"code": "return '\ud800'", "lane": "\udc00"}.get(field, "x\ud800")
    msg = p.Submit(**fields)
    with pytest.raises(p.ProtocolError, match=f"'{field}' is not valid Unicode"):
        p.validate(msg)
    with pytest.raises(p.ProtocolError, match="not valid Unicode"):
        p.encode(msg)


def test_oversized_frame_is_refused_before_parsing():
    with pytest.raises(p.ProtocolError, match="exceeds"):
        p.decode(b"\x00" * (p.MAX_FRAME_BYTES + 1))


def test_an_overlong_id_is_not_echoed_back():
    with pytest.raises(p.ProtocolError) as info:
        p.decode(body(t="nope", id="x" * 1000))
    assert info.value.msg_id is None


msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats()
    | st.text(max_size=20) | st.binary(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)
field_names = st.sampled_from(
    ["v", "t", "id", "runtime", "code", "data", "limits", "priority", "lane", "group",
     "version", "wait_for_runner", "queue_timeout_s", "idempotent", "max_attempts", "task_id",
     "envelope", "runtimes", "slots", "groups", "name", "idle_children", "idle", "message", "status",
     "deadline_s"]
)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_give_a_message_or_a_protocol_error(frame):
    try:
        p.decode(frame)
    except p.ProtocolError:
        pass


@settings(max_examples=1000, deadline=None)
@given(st.sampled_from(sorted(p._TYPES)) | msgpack_values,
       st.dictionaries(field_names, msgpack_values, max_size=8))
def test_random_message_shaped_maps_give_a_message_or_a_protocol_error(kind, fields):
    frame = msgpack.packb({"v": p.VERSION, **fields, "t": kind}, use_bin_type=True)
    try:
        msg = p.decode(frame)
    except p.ProtocolError as exc:
        assert exc.msg_id is None or isinstance(exc.msg_id, str)
    else:  # what decodes re-encodes to an equal message
        assert p.decode(p.encode(msg)) == msg


def test_a_heartbeat_carries_idle_children_per_runtime_and_bad_counts_are_refused():
    beat = p.RunnerHeartbeat(3, idle={"python": 1, "javascript": 2})
    assert p.decode(p.encode(beat)) == beat
    with pytest.raises(p.ProtocolError, match="'idle' must map"):
        p.decode(p.encode(p.RunnerHeartbeat(1, idle={"python": -1})))


@pytest.mark.parametrize(("peer", "creds"), [
    ("localhost:1000:1000:4242", (1000, 1000, 4242)),  # ipc: SO_PEERCRED
    ("localhost:0:0:0", (0, 0, 0)),  # a peer in a pid namespace the broker cannot see
    ("127.0.0.1", None),
    ("::1", None),
    ("2001:db8::1:2:3", None),  # IPv6: a colon stays in the host part
    ("::1:2", None),
    ("1::2:3", None),  # an empty field among the last three
    ("", None),
    ("host:uid:gid:pid", None),
])
def test_only_an_ipc_peers_address_reads_as_credentials(peer, creds):
    from broker.server import ipc_credentials

    assert ipc_credentials(peer) == creds


def test_a_field_added_with_a_none_default_stays_out_of_the_frame_while_unused():
    """A runner's heartbeat gained ``echo`` (and the broker's ``clock``): a broker of the
    version before refuses fields it does not know, so an unused one is not sent."""
    body = msgpack.unpackb(p.encode(p.RunnerHeartbeat(2)))
    assert set(body) == {"v", "t", "idle_children", "draining", "idle"}
    assert p.decode(p.encode(p.RunnerHeartbeat(2))) == p.RunnerHeartbeat(2)
    assert msgpack.unpackb(p.encode(p.Rejected(None, "bad")))["id"] is None  # no default: sent
