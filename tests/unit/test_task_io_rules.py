"""A task's stdin, its two output streams, streaming and its usage: the pure parts, no jail.

The messages on each boundary (the jail's, the broker's), the child's output buffer, the
envelope's usage, the broker's streaming rule (10s), the clients' decoding, the one request
check. The same through real jails: tests/integration/test_task_io.py."""

from __future__ import annotations

import msgpack
import pytest

from broker import core
from broker import protocol as p
from runtimes import framing, outcome, output, protocol
from runtimes.outcome import Status
from sandbox.client.base import OutputDecoder
from sandbox.config import Limits
from sandbox.errors import RequestError
from sandbox.imports import ImportPolicy
from sandbox.request import Options, build, request
from sandbox.result import OutputChunk, Result

LIMITS = Limits()


# -- the child's output buffer ------------------------------------------------------------------


def test_merged_by_default_stdout_holds_both_streams_in_order():
    buf = output.OutputBuffer(100)
    buf.write(b"a", output.STDOUT)
    buf.write(b"b", output.STDERR)
    buf.write(b"c", output.STDOUT)
    assert buf.streams() == ("abc", "")


def test_kept_apart_each_stream_holds_its_own_text():
    buf = output.OutputBuffer(100, separate=True)
    for data, stream in ((b"a", output.STDOUT), (b"b", output.STDERR), (b"c", output.STDOUT),
                         (b"d", output.STDERR)):
        buf.write(data, stream)
    assert (buf.streams(), buf.getvalue()) == (("ac", "bd"), "abcd")


def test_the_cap_binds_what_is_streamed():
    sent: list[tuple[int, bytes]] = []
    output.stream_to(lambda stream, data: sent.append((stream, data)))
    try:
        buf = output.OutputBuffer(5, streaming=True)
        buf.write(b"abc", output.STDOUT)
        buf.write(b"defg", output.STDERR)
        buf.write(b"h", output.STDOUT)
        buf.flush()
    finally:
        output.stream_to(None)
    assert (sent, buf.truncated) == ([(output.STDOUT, b"abc"), (output.STDERR, b"de")], True)


def test_output_streams_line_by_line():
    sent: list[tuple[int, bytes]] = []
    output.stream_to(lambda stream, data: sent.append((stream, data)))
    try:
        buf = output.OutputBuffer(100, streaming=True)
        for piece in (b"a", b" ", b"1", b"\n", b"b"):
            buf.write(piece)
        before_flush = list(sent)
        buf.flush()
    finally:
        output.stream_to(None)
    assert (before_flush, sent) == ([(output.STDOUT, b"a 1\n")],
                                    [(output.STDOUT, b"a 1\n"), (output.STDOUT, b"b")])


def test_a_buffer_that_does_not_stream_sends_nothing():
    sent: list[tuple[int, bytes]] = []
    output.stream_to(lambda stream, data: sent.append((stream, data)))
    try:
        output.OutputBuffer(5).write(b"abc")
    finally:
        output.stream_to(None)
    assert sent == []


# -- the jail's protocol ------------------------------------------------------------------------


def test_a_task_carries_stdin_and_its_output_options():
    task = protocol.Task(code="1", data=b"\xc0", as_bytes=1, memory_bytes=1, cpu_s=1,
                         stdout_bytes=1, result_bytes=1, stdin=b"in\x00put",
                         separate_stderr=True, stream=True)
    back = protocol.decode(protocol.encode(task), (protocol.Task,),
                           max_bytes=protocol.MAX_TASK_BYTES)
    assert back == task


def test_an_output_frame_is_never_taken_for_an_envelope():
    frame = protocol.encode_output(output.STDERR, b"x")
    assert (protocol.is_output(frame), protocol.is_output(outcome.encode(Status.OK, "ok")),
            protocol.decode_output(frame)) == (True, False, (output.STDERR, b"x"))


@pytest.mark.parametrize("frame", [b"", b"\x00", b"\x00\x01", b"\x00\x03x", b"\x01\x01x"])
def test_a_malformed_output_frame_is_a_wire_error(frame):
    with pytest.raises(framing.WireError):
        protocol.decode_output(frame)


# -- usage in the envelope ----------------------------------------------------------------------


def test_the_hosts_usage_wins_over_what_a_snippet_wrote():
    forged = msgpack.packb({"status": "ok", "retire": False, "v": 1, "message": "ok",
                            "value": None, "stdout": "", "truncated": False, "error": None,
                            "duration_ms": 0.0, "cpu_ms": 0.0, "peak_memory_kb": 1})
    env = outcome.decode(outcome.with_usage(forged, 12.5, 20480), max_bytes=1 << 20)
    assert (env.cpu_ms, env.peak_memory_kb) == (12.5, 20480)


def test_usage_that_could_not_be_read_is_none():
    env = outcome.decode(outcome.with_usage(outcome.encode(Status.OK, "ok"), None, None),
                         max_bytes=1 << 20)
    assert (env.cpu_ms, env.peak_memory_kb) == (None, None)


def test_usage_is_appended_to_an_envelope_of_more_than_15_fields():
    body = msgpack.packb({"status": "ok", "retire": False, "v": 1, "message": "ok",
                          "value": None, "stdout": "", "truncated": False, "error": None,
                          "duration_ms": 0.0, **{f"x{i}": i for i in range(8)}})
    assert body[0] == 0xDE
    env = outcome.decode(outcome.with_usage(body, 1.0, 2), max_bytes=1 << 20)
    assert (env.cpu_ms, env.peak_memory_kb) == (1.0, 2)


def test_negative_usage_is_a_wire_error():
    body = outcome.with_usage(outcome.encode(Status.OK, "ok"), -1.0, 5)
    with pytest.raises(framing.WireError):
        outcome.decode(body, max_bytes=1 << 20)


def test_a_result_reports_stderr_and_usage():
    body = outcome.with_usage(outcome.encode(Status.OK, "ok", stdout="o", stderr="e"), 3.0, 4)
    r = Result.from_wire(body, max_bytes=1 << 20)
    assert (r.stdout, r.stderr, r.cpu_ms, r.peak_memory_kb) == ("o", "e", 3.0, 4)


# -- the broker's protocol ----------------------------------------------------------------------


def submit(**fields: object) -> p.Submit:
    base: dict[str, object] = {"id": "t1", "runtime": "python", "code": "return 1",
                               "data": b"\xc0"}
    return p.Submit(**{**base, **fields})  # type: ignore[arg-type]


def test_a_submit_without_the_new_fields_decodes_as_before():
    raw = msgpack.packb({"v": 1, "t": "submit", "id": "t1", "runtime": "python",
                         "code": "return 1", "data": b"\xc0"})
    msg = p.decode(raw)
    assert (msg.stdin, msg.separate_stderr, msg.stream) == (None, False, False)


def test_huge_stdin_is_refused_by_the_protocol():
    with pytest.raises(p.ProtocolError, match="'stdin' is over"):
        p.decode(p.encode(submit(stdin=b"x" * (p.MAX_STDIN_BYTES + 1))))


@pytest.mark.parametrize("msg", [
    p.Chunk("t1", "stdlog", b"x"), p.Chunk("t1", "stdout", b""),
    p.Output("t1", "stdout", b"x" * (p.MAX_CHUNK_BYTES + 1))])
def test_a_bad_chunk_is_a_protocol_error(msg):
    with pytest.raises(p.ProtocolError):
        p.decode(p.encode(msg))


# -- the broker's rule 10s ----------------------------------------------------------------------


RUNNER = b"runner-1"
CLIENT = b"client-1"


def running(stream: bool = True, stdout_bytes: int | None = None,
            config: core.BrokerConfig | None = None) -> tuple[core.BrokerCore, str]:
    c = core.BrokerCore(config)
    c.on_runner(RUNNER, p.Ready({"python": "3.11"}, slots=1), 0.0)
    sends = c.on_client(CLIENT, submit(stream=stream, limits=p.TaskLimits(stdout_bytes=stdout_bytes)),
                        0.0)
    (task,) = [s.msg for s in sends if isinstance(s.msg, p.TaskMsg)]
    assert task.stream is stream
    return c, task.task_id


def test_a_chunk_goes_to_its_client_as_output_that_may_be_dropped():
    c, key = running()
    sends = c.on_runner(RUNNER, p.Chunk(key, "stderr", b"hi"), 1.0)
    assert sends == [core.Send(CLIENT, p.Output("t1", "stderr", b"hi"), droppable=True)]


def test_a_chunk_for_a_task_that_does_not_stream_is_dropped_and_counted():
    c, key = running(stream=False)
    assert (c.on_runner(RUNNER, p.Chunk(key, "stdout", b"hi"), 1.0),
            c.counters["dropped_stale_chunk"]) == ([], 1)


def test_a_chunk_from_another_runner_is_dropped():
    c, key = running()
    c.on_runner(b"runner-2", p.Ready({"python": "3.11"}, slots=1), 0.0)
    assert c.on_runner(b"runner-2", p.Chunk(key, "stdout", b"hi"), 1.0) == []


def test_cant_flood_the_broker_past_a_tasks_output_cap():
    c, key = running(stdout_bytes=10)
    first = c.on_runner(RUNNER, p.Chunk(key, "stdout", b"x" * 8), 1.0)
    over = c.on_runner(RUNNER, p.Chunk(key, "stdout", b"x" * 8), 1.0)
    assert (len(first), over, c.counters["dropped_chunk_over_cap"]) == (1, [], 1)


def test_cant_flood_the_broker_with_tiny_chunks():
    c, key = running()
    forwarded = sum(len(c.on_runner(RUNNER, p.Chunk(key, "stdout", b"x"), 1.0))
                    for _ in range(p.MAX_STREAM_CHUNKS + 10))
    assert (forwarded, c.counters["dropped_chunk_over_cap"]) == (p.MAX_STREAM_CHUNKS, 10)


def test_the_task_message_carries_stdin_and_output_options():
    c = core.BrokerCore()
    c.on_runner(RUNNER, p.Ready({"python": "3.11"}, slots=1), 0.0)
    sends = c.on_client(CLIENT, submit(stdin=b"in", separate_stderr=True), 0.0)
    (task,) = [s.msg for s in sends if isinstance(s.msg, p.TaskMsg)]
    assert (task.stdin, task.separate_stderr, task.stream) == (b"in", True, False)


# -- the clients' decoding ----------------------------------------------------------------------


def test_a_character_cut_between_chunks_comes_whole():
    decoder = OutputDecoder()
    snow = "☃".encode()
    first = decoder.feed(p.Output("t1", "stdout", b"a" + snow[:1]))
    second = decoder.feed(p.Output("t1", "stdout", snow[1:]))
    assert (first, second) == (OutputChunk("stdout", "a"), OutputChunk("stdout", "☃"))


# -- the one request check ----------------------------------------------------------------------


def test_text_stdin_travels_as_utf8():
    req = request("python", "return input()", None, Options(stdin="é"), defaults=LIMITS)
    assert req.message.stdin == "é".encode()


@pytest.mark.parametrize("runtime, options, why", [
    ("javascript", Options(stdin="x"), "stdin applies to python, not javascript"),
    ("pyodide", Options(stream=True), "not available for pyodide"),
    ("python", Options(stdin=3), "stdin must be str or bytes, not int"),  # type: ignore[arg-type]
    ("python", Options(stdin="x" * (p.MAX_STDIN_BYTES + 1)), "stdin is 4194305 bytes, over"),
])
def test_stdin_and_streams_a_runtime_cannot_take_are_refused(runtime, options, why):
    with pytest.raises(RequestError, match=why):
        request(runtime, "return 1", None, options, defaults=LIMITS)


def test_the_runner_checks_stdin_again():
    with pytest.raises(RequestError, match="over the"):
        build("python", "return 1", b"\xc0", defaults=LIMITS, import_policy=ImportPolicy.of(),
              stdin=b"x" * (p.MAX_STDIN_BYTES + 1))


# -- files ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, why", [
    ("../etc/passwd", "has a '..' component"),
    ("a/../../b", "has a '..' component"),
    ("/etc/passwd", "is absolute"),
    ("a//b", "has a 'empty' component"),
    ("./a", "has a '.' component"),
    ("a\x00b", "holds a NUL"),
    ("", "non-empty string"),
    ("/".join(["d"] * 17), "more than 16 directories deep"),
    ("x" * 256, "a component over 255 bytes"),
])
def test_cant_name_a_file_outside_the_tasks_directory(name, why):
    with pytest.raises(RequestError, match=why):
        request("python", "return 1", None, Options(files={name: b""}), defaults=LIMITS)


def test_files_travel_as_bytes_by_name():
    req = request("python", "return 1", None, Options(files={"in/a.txt": "é", "b": b"\x00"},
                                                       return_files=True), defaults=LIMITS)
    assert (req.message.files, req.message.return_files) == (
        {"in/a.txt": "é".encode(), "b": b"\x00"}, True)


@pytest.mark.parametrize("runtime, options, why", [
    ("javascript", Options(files={"a": "b"}), "files apply to python, not javascript"),
    ("python", Options(files={"a": "b"}, isolation="worker"), 'isolation "process"'),
    ("python", Options(files={f"f{i}": b"" for i in range(p.MAX_TASK_FILES + 1)}),
     f"over the limit of {p.MAX_TASK_FILES}"),
    ("python", Options(files={"a": b"x" * (p.MAX_FILES_BYTES + 1)}), "over the 16777216-byte"),
    ("python", Options(files={"a": 3}), "file 'a' must be str or bytes"),  # type: ignore[dict-item]
])
def test_files_a_task_cannot_pass_are_refused(runtime, options, why):
    with pytest.raises(RequestError, match=why):
        request(runtime, "return 1", None, options, defaults=LIMITS)


def test_a_runner_without_files_mb_refuses_files():
    with pytest.raises(RequestError, match="files_mb is 0"):
        build("python", "return 1", b"\xc0", defaults=LIMITS, import_policy=ImportPolicy.of(),
              files={"a": b"b"})


def test_files_over_the_runners_directory_are_refused():
    with pytest.raises(RequestError, match="over the task's directory of 4 bytes"):
        build("python", "return 1", b"\xc0", defaults=LIMITS, import_policy=ImportPolicy.of(),
              files={"a": b"12345"}, files_bytes=4)


def test_the_jail_protocol_refuses_a_bad_name_too():
    task = protocol.Task(code="1", data=b"\xc0", as_bytes=1, memory_bytes=1, cpu_s=1,
                         stdout_bytes=1, result_bytes=1, files={"../x": b""})
    with pytest.raises(framing.WireError, match="'..' component"):
        protocol.decode(protocol.encode(task), (protocol.Task,), max_bytes=protocol.MAX_TASK_BYTES)


def test_the_broker_refuses_too_many_files():
    too_many = submit(files={f"f{i}": b"" for i in range(p.MAX_TASK_FILES + 1)})
    with pytest.raises(p.ProtocolError, match="'files' must map at most"):
        p.validate(too_many)
    with pytest.raises(p.ProtocolError, match="exceeds max_map_len"):  # before decoding
        p.decode(p.encode(too_many))


def test_returned_files_and_what_was_skipped_reach_the_result():
    body = outcome.with_files(outcome.encode(Status.OK, "ok"), {"a": b"1"},
                              {"link": "a symbolic link (never followed)"})
    r = Result.from_wire(body, max_bytes=1 << 20)
    assert (r.files, r.files_skipped, r.to_dict()["files"]) == (
        {"a": b"1"}, {"link": "a symbolic link (never followed)"}, {"a": {"$bytes": "MQ=="}})


def test_only_a_jail_for_files_may_unshare_mount_and_capset():
    import seccomp

    plain, files = seccomp.jail_policy(), seccomp.jail_policy(files=True)
    for name in ("unshare", "mount", "capset"):
        assert (f" {name}," in plain or f" {name} " in plain, f" {name}" in files) == (
            False, True), name


# -- a session's directory: files with a call, kept from call to call ---------------------------

def test_a_sessions_call_carries_files_and_return_files():
    from sandbox.client.base import ClientBase

    built = ClientBase(LIMITS, 1.0).session_request(
        "python", "s1", "call", "", None, Options(files={"a": "1"}, return_files=True))
    assert (built.message.session, built.message.files, built.message.return_files) == (
        "s1", {"a": b"1"}, True)


def test_a_sessions_call_refuses_a_bad_name_as_a_task_does():
    from sandbox.client.base import ClientBase

    refused = ClientBase(LIMITS, 1.0).session_request(
        "python", "s1", "call", "", None, Options(files={"../a": "1"}))
    assert (refused.status, refused.message) == (Status.REJECTED,
                                                 "file name '../a' has a '..' component")


def test_a_sessions_upload_replaces_a_file_and_never_writes_through_a_link(tmp_path,
                                                                          monkeypatch):
    from runtimes import files

    monkeypatch.chdir(tmp_path)
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.write_bytes(b"host")
    files.put({"a": b"one"})
    (tmp_path / "link").symlink_to(outside)
    files.put({"a": b"two", "link": b"mine"}, replace=True)
    assert ((tmp_path / "a").read_bytes(), (tmp_path / "link").is_symlink(),
            (tmp_path / "link").read_bytes(), outside.read_bytes()) == (
        b"two", False, b"mine", b"host")


def test_a_tasks_files_never_replace(tmp_path, monkeypatch):
    from runtimes import files

    monkeypatch.chdir(tmp_path)
    files.put({"a": b"one"})
    with pytest.raises(FileExistsError):
        files.put({"a": b"two"})
