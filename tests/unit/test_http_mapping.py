"""The HTTP API without sockets: a body to a checked request, a result to an answer, the
keys, the OpenAPI document, the settings; and the routes on a fake backend (Starlette's
in-process test client: no socket, no broker)."""

from __future__ import annotations

import asyncio
import datetime
import json
import math
import os
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate

from sandbox.config import Limits, ServiceConfig
from sandbox.errors import ApiError, ConfigError
from sandbox.http import mapping, openapi
from sandbox.http.app import ANONYMOUS, make_app
from sandbox.http.keys import ApiKeys
from sandbox.request import OPTION_NAMES, Options, Request
from sandbox.result import ErrorInfo, OutputChunk, Result, Status

LIMITS = Limits()
ALICE_KEY = "alice-key-0123456789"
BOB_KEY = "bob-key-0123456789ab"


def task(**fields: object) -> bytes:
    return json.dumps({"runtime": "python", "code": "return 1", **fields}).encode()


def refused(body: bytes) -> ApiError:
    with pytest.raises(ApiError) as info:
        mapping.task_request(body, defaults=LIMITS, principal="alice")
    return info.value


# -- a body to a request -------------------------------------------------------------------------


def test_a_task_body_becomes_the_request_the_clients_build():
    body = task(runtime="py", data={"b": {"$bytes": "aGk="}, "n": {"$int": str(2**64)}},
                timeout_s=2, memory_mb=64, imports=["json"], priority=3, lane="eval")
    req = mapping.task_request(body, defaults=LIMITS, principal="alice")
    from sandbox.request import request
    expected = request("python", "return 1", {"b": b"hi", "n": 2**64},
                       Options(timeout_s=2, memory_mb=64, imports=("json",), priority=3,
                               lane="eval"), defaults=LIMITS)
    assert req == expected


def test_malformed_json_is_400():
    error = refused(b'{"runtime": ')
    assert (error.status, str(error)) == (
        400, "the body is not valid JSON: Expecting value: line 1 column 13 (char 12)")


def test_a_body_that_is_not_utf8_is_400():
    assert (refused(b'{"code": "\xff"}').status, str(refused(b'{"code": "\xff"}'))) == (
        400, "the body is not UTF-8 (invalid start byte at byte 10)")


def test_nan_is_not_json_and_says_its_tag():
    error = refused(b'{"runtime": "python", "code": "return data", "data": NaN}')
    assert (error.status, str(error)) == (
        400, 'the body is not valid JSON: NaN is not JSON (send {"$float": "NaN"})')


def test_json_nested_too_deeply_to_read_is_400_not_a_crash():
    error = refused(b"[" * 100_000)
    assert (error.status, str(error)) == (400, "the body is JSON nested too deeply to read")


def test_data_nested_deeper_than_the_codec_takes_is_422():
    body = b'{"runtime": "python", "code": "", "data": ' + b"[" * 300 + b"]" * 300 + b"}"
    error = refused(body)
    assert (error.status, str(error).startswith("data cannot be sent to the sandbox: ")) == (
        422, True)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["runtime", "code", "data", "timeout_s", "imports", "$bytes", "$int",
                         "$map", "$dict", "x"]) | st.text(max_size=5), inner, max_size=4),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | _JSON.map(lambda v: json.dumps(v).encode()))
def test_a_body_becomes_a_request_or_an_api_error_and_nothing_else(body):
    """Untrusted bytes fail one way: whatever a client sends, ApiError (a 4xx) or a request."""
    try:
        assert isinstance(mapping.task_request(body, defaults=LIMITS, principal="p"), Request)
    except ApiError as exc:
        assert 400 <= exc.status < 500


def test_a_body_that_is_not_an_object_is_422():
    error = refused(b"[1, 2]")
    assert (error.status, str(error)) == (422, "a task must be a JSON object, not an array")


def test_unknown_fields_are_422_naming_each_of_them():
    error = refused(task(timeout=3, memory=64))
    assert (error.status, error.fields) == (422, ("memory", "timeout"))
    assert str(error).startswith("unknown field(s): memory, timeout (a task takes code, data, ")


def test_missing_fields_are_422_naming_them():
    error = refused(b'{"data": 1}')
    assert (error.status, str(error), error.fields) == (
        422, "missing field(s): runtime, code", ("runtime", "code"))


def test_a_malformed_tag_in_data_is_422():
    error = refused(task(data={"$bytes": "not base64!"}))
    assert (error.status, error.fields) == (422, ("data",))
    assert str(error).startswith("data: invalid base64 in $bytes")


@pytest.mark.parametrize(("fields", "message"), [
    ({"runtime": "ruby"}, "unknown runtime 'ruby' (known: javascript, js, py, pyodide, python)"),
    ({"timeout_s": 0}, "bad limits: timeout_s must be between 1 ms and 3600 s, not 0 s"),
    ({"memory_mb": "lots"}, "bad limits: memory_mb must be an int, not str"),
    ({"code": 7}, "code must be a str, not int"),
    ({"priority": 5000}, "'priority' must be -1000..1000"),
    ({"reuse_key": "k"}, "'reuse_key' applies to isolation \"worker\""),
], ids=["runtime", "timeout", "memory-type", "code-type", "priority", "reuse-key"])
def test_a_request_the_one_check_refuses_is_422_with_its_message(fields, message):
    error = refused(task(**fields))
    assert (error.status, str(error)) == (422, message)


def test_a_workers_reuse_key_is_taken_within_the_principal():
    """Capability denied: a principal naming another's reuse key shares its warm worker."""
    body = task(isolation="worker", reuse_key="shared")
    alice = mapping.task_request(body, defaults=LIMITS, principal="alice")
    bob = mapping.task_request(body, defaults=LIMITS, principal="bob")
    assert (alice.options.reuse_key, bob.options.reuse_key) == ("alice:shared", "bob:shared")


def test_pyodide_tasks_are_workers_of_their_principal_without_naming_a_key():
    req = mapping.task_request(task(runtime="pyodide"), defaults=LIMITS, principal="alice")
    assert (req.options.isolation, req.options.reuse_key) == ("worker", "alice:default")


def test_a_process_task_keeps_no_reuse_key():
    req = mapping.task_request(task(), defaults=LIMITS, principal="alice")
    assert req.options.reuse_key is None


# -- a result to an answer -----------------------------------------------------------------------


def test_a_result_is_200_with_its_value_in_the_tagged_view():
    when = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    result = Result(Status.OK, "ok", value={"b": b"hi", "nan": math.nan, "big": 2**70, "at": when,
                                            "ints": {1: "one"}}, stdout="x\n", duration_ms=1.23456,
                    exec_ms=0.5)
    answer = mapping.task_answer(result)
    assert answer == mapping.Answer(200, {
        "status": "ok",
        "result": {"b": {"$bytes": "aGk="}, "nan": {"$float": "NaN"}, "big": {"$int": str(2**70)},
                  "at": {"$datetime": "2026-01-02T03:04:05+00:00"},
                  "ints": {"$map": [[1, "one"]]}},
        "stdout": "x\n", "truncated": False, "error": None, "message": "ok",
        "duration_ms": 1.235, "exec_ms": 0.5, "stderr": "", "cpu_ms": None,
        "peak_memory_kb": None, "files": None, "files_skipped": None})


def test_a_snippets_error_is_200_the_task_was_served():
    result = Result(Status.ERROR, "ValueError: no", error=ErrorInfo("ValueError", "no", "tb"))
    answer = mapping.task_answer(result)
    assert (answer.status, answer.body["status"], answer.body["error"]) == (
        200, "error", {"type": "ValueError", "message": "no", "traceback": "tb"})


@pytest.mark.parametrize(("reason", "status"), [
    ("queue_full", 429), ("client_cap", 429), ("draining", 503), ("no_runner", 503),
    ("queue_timeout", 503), ("", 422), ("duplicate_id", 422),
])
def test_a_rejection_is_answered_by_who_can_act_on_it(reason, status):
    answer = mapping.task_answer(Result.rejected("why", reason))
    assert (answer.status, answer.media_type, answer.body["detail"]) == (
        status, "application/problem+json", "why")


def test_a_full_queue_says_when_to_retry():
    answer = mapping.task_answer(Result.rejected("queue full (3 waiting)", "queue_full"))
    assert answer == mapping.Answer(
        429, {"title": "Too Many Requests", "status": 429, "detail": "queue full (3 waiting)",
              "reason": "queue_full"}, (("Retry-After", "1"),), "application/problem+json")


def test_runtimes_are_summed_over_the_runners():
    runners: list[tuple[Mapping[str, str], int]] = [
        ({"python": "3.11.2", "javascript": "quickjs-ng-0.17.0"}, 4),
        ({"python": "3.11.9"}, 2)]
    assert mapping.runtimes_json(runners) == {"runtimes": [
        {"name": "javascript", "aliases": ["js"], "versions": ["quickjs-ng-0.17.0"],
         "runners": 1, "slots": 4},
        {"name": "python", "aliases": ["py"], "versions": ["3.11.2", "3.11.9"], "runners": 2,
         "slots": 6}]}


# -- keys ----------------------------------------------------------------------------------------


def test_keys_map_bearer_tokens_to_principals():
    keys = ApiKeys.parse(f"# who\nalice {ALICE_KEY}\n\nbob {BOB_KEY}\n")
    assert [keys.principal(h) for h in (f"Bearer {ALICE_KEY}", f"bearer {BOB_KEY}",
                                        "Bearer wrong-key-0123456789", ALICE_KEY, None)] == [
        "alice", "bob", None, None, None]


@pytest.mark.parametrize(("text", "message"), [
    ("alice", "f line 1: expected `principal key`"),
    ("alice short", "f line 1: a key is at least 16 printable characters without spaces"),
    ("al ice key", "f line 1: expected `principal key`"),
    (f"a/b {ALICE_KEY}", "f line 1: a principal is 1 to 64 of A-Z a-z 0-9 . _ @ -"),
    (f"alice {ALICE_KEY}\nbob {ALICE_KEY}", "f line 2: this key is already alice's"),
    ("# none", "f: no keys"),
])
def test_a_bad_keys_file_is_refused_naming_the_line_never_the_key(text, message):
    with pytest.raises(ConfigError) as info:
        ApiKeys.parse(text, "f")
    assert str(info.value) == message


def test_a_keys_file_others_can_read_is_refused(tmp_path):
    path = tmp_path / "keys"
    path.write_text(f"alice {ALICE_KEY}\n")
    os.chmod(path, 0o640)
    with pytest.raises(ConfigError) as info:
        ApiKeys.load(str(path))
    assert str(info.value) == (f"api_keys_file {path}: mode 0640 lets others read the keys "
                               "(chmod 600 it)")
    os.chmod(path, 0o600)
    assert ApiKeys.load(str(path)).by_key == {ALICE_KEY: "alice"}


# -- settings ------------------------------------------------------------------------------------


def test_the_api_is_off_by_default_and_named_like_every_setting():
    assert ServiceConfig().api_bind == ""
    loaded = ServiceConfig.load(env={"SANDBOX_API_BIND": "127.0.0.1:8080"},
                                flags={"api_keys_file": "/k"})
    assert (loaded.api_bind, loaded.api_keys_file) == ("127.0.0.1:8080", "/k")


@pytest.mark.parametrize("address", ["0.0.0.0:8080", ":8080", "10.1.2.3:8080", "[::]:8080"])
def test_without_keys_the_api_binds_only_to_loopback(address):
    with pytest.raises(ConfigError) as info:
        ServiceConfig(api_bind=address)
    assert str(info.value) == (f"api_bind {address!r} is not a loopback address: without "
                               "api_keys_file the HTTP API serves this host only")


@pytest.mark.parametrize("address", ["127.0.0.1:8080", "localhost:1", "[::1]:8080", "127.0.0.2:0"])
def test_loopback_addresses_need_no_keys(address):
    assert ServiceConfig(api_bind=address).api_bind == address


# -- the OpenAPI document ------------------------------------------------------------------------


def test_the_openapi_document_is_valid_openapi_3_1():
    doc = openapi.document("1.2.3")
    validate(doc)  # raises on an invalid document
    assert (doc["openapi"], sorted(doc["paths"])) == (
        "3.1.0", ["/v1/openapi.json", "/v1/runtimes", "/v1/sessions", "/v1/sessions/{id}",
                  "/v1/sessions/{id}/files", "/v1/sessions/{id}/run", "/v1/tasks"])


def test_the_document_describes_every_option_by_its_name():
    task_fields = openapi.document("0")["components"]["schemas"]["Task"]["properties"]
    assert set(openapi.OPTION_SCHEMAS) == OPTION_NAMES
    assert set(task_fields) == mapping.TASK_FIELDS


# -- the routes on a fake backend ----------------------------------------------------------------
#
# httpx's in-process transport calls the ASGI app without a socket; the app's lifespan (which
# makes and closes the backend) runs around each call.


class FakeBackend:
    """Answers each request with its code and principal as the value, and records them."""

    def __init__(self) -> None:
        self.defaults = LIMITS
        self.asked: list[tuple[Request, str]] = []
        self.closed = False
        self.sessions: dict[str, object] = {}

    async def run(self, req: Request, principal: str,
                  on_output: Callable[[OutputChunk], None] | None = None) -> Result:
        self.asked.append((req, principal))
        if on_output is not None and req.code.startswith("print"):
            on_output(OutputChunk("stdout", "one\n"))
            on_output(OutputChunk("stderr", "two\n"))
        if req.code == "full":
            return Result.rejected("queue full (9 waiting)", "queue_full")
        if req.code == "surrogate":
            return Result(Status.OK, "ok", stdout="\ud800")
        return Result(Status.OK, "ok", value=[req.code, principal])

    def runtimes(self) -> list[tuple[Mapping[str, str], int]]:
        return [({"python": "3.11.2"}, 4)]

    async def open_session(self, opening, key: str) -> Result:
        self.sessions[key] = opening
        return Result(Status.OK, "open")

    async def call_session(self, key: str, code: str, data, options) -> Result:
        if key not in self.sessions:
            return Result.rejected(f"session {key!r} is not open (open it first)", "no_session")
        self.options = options
        return Result(Status.OK, "ok", value=[key, code, data, options.timeout_s])

    async def close_session(self, key: str) -> Result:
        self.sessions.pop(key, None)
        return Result(Status.OK, "closed")

    async def aclose(self) -> None:
        self.closed = True


KEYS = ApiKeys.parse(f"alice {ALICE_KEY}\nbob {BOB_KEY}")


def call(method: str, path: str, *, body: object = None, key: str | None = ALICE_KEY,
         keys: ApiKeys | None = KEYS, backend: FakeBackend | None = None,
         **headers: str) -> httpx.Response:
    backend = backend or FakeBackend()
    app = make_app(lambda: backend, keys=keys, body_bytes=1024, body_timeout_s=5, version="0")
    if key is not None:
        headers["authorization"] = f"Bearer {key}"

    async def go() -> httpx.Response:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                return await client.request(method, path, content=body,  # type: ignore[arg-type]
                                            headers=headers)

    reply = asyncio.run(go())
    assert backend.closed
    return reply


def post(body: object, **kw: object) -> httpx.Response:
    return call("POST", "/v1/tasks", body=body, **{"content-type": "application/json", **kw})  # type: ignore[arg-type]


def test_a_task_runs_as_its_keys_principal():
    reply = post(task(code="return 2"), key=BOB_KEY)
    assert (reply.status_code, reply.json()["result"]) == (200, ["return 2", "bob"])


@pytest.mark.parametrize("key", [None, "wrong-key-0123456789"], ids=["no-key", "wrong-key"])
def test_no_key_or_a_wrong_key_is_401_and_nothing_runs(key):
    backend = FakeBackend()
    reply = post(task(), key=key, backend=backend)
    assert (reply.status_code, reply.headers["www-authenticate"], backend.asked) == (
        401, 'Bearer realm="sandbox"', [])


def test_the_runtimes_need_a_key_too():
    assert call("GET", "/v1/runtimes", key=None).status_code == 401
    assert call("GET", "/v1/runtimes").json() == {"runtimes": [
        {"name": "python", "aliases": ["py"], "versions": ["3.11.2"], "runners": 1, "slots": 4}]}


def test_a_wrong_content_type_is_415():
    backend = FakeBackend()
    reply = call("POST", "/v1/tasks", body=task(), backend=backend,
                 **{"content-type": "text/plain"})
    assert (reply.status_code, reply.json()["detail"], backend.asked) == (
        415, "a task is application/json, not text/plain", [])


def test_a_body_over_the_cap_is_413_before_it_is_read():
    body = task(code="x" * 2000)
    reply = post(body)
    assert (reply.status_code, reply.json()["detail"], reply.headers["connection"]) == (
        413, f"the body is {len(body)} bytes, over the 1024-byte cap", "close")


def test_a_streamed_body_over_the_cap_is_413():
    async def chunks():  # no Content-Length: the cap is found while reading
        yield b"{" + b" " * 1000
        yield b" " * 100

    reply = post(chunks())
    assert (reply.status_code, reply.json()["detail"]) == (413, "the body is over the 1024-byte cap")


def test_text_that_utf8_cannot_carry_is_escaped_not_an_internal_error():
    reply = post(task(code="surrogate"))
    assert (reply.status_code, reply.content.count(b"\\ud800"), reply.json()["stdout"]) == (
        200, 1, "\ud800")


def test_a_full_queue_is_429_with_retry_after():
    reply = post(task(code="full"))
    assert (reply.status_code, reply.headers["retry-after"], reply.json()["reason"]) == (
        429, "1", "queue_full")


def test_an_unknown_route_is_404_and_a_wrong_method_405():
    missing, wrong = call("GET", "/v1/nothing"), call("GET", "/v1/tasks")
    assert (missing.status_code, missing.json()["detail"]) == (404, "no route /v1/nothing")
    assert (wrong.status_code, wrong.json()["detail"]) == (405, "GET is not allowed on /v1/tasks")


def test_the_openapi_document_is_served_without_a_key():
    reply = call("GET", "/v1/openapi.json", key=None)
    assert reply.json() == json.loads(json.dumps(openapi.document("0")))


def test_without_keys_every_caller_is_the_local_principal():
    reply = post(task(), key=None, keys=None)
    assert reply.json()["result"] == ["return 1", ANONYMOUS]


def test_the_result_fields_are_the_documents():
    doc = openapi.document("0")["components"]["schemas"]["Result"]
    body = mapping.task_answer(Result(Status.OK, "ok")).body
    assert set(doc["properties"]) == set(body) == set(doc["required"])


# -- sessions ----------------------------------------------------------------------------------


def test_a_session_opens_under_its_principal_and_is_called_by_id():
    backend = FakeBackend()
    r = call("POST", "/v1/sessions", body=json.dumps({"runtime": "py", "session_id": "nb"}),
             backend=backend, **{"content-type": "application/json"})
    assert (r.status_code, r.json(), r.headers["location"]) == (
        201, {"id": "nb", "runtime": "python"}, "/v1/sessions/nb")
    assert list(backend.sessions) == ["alice:nb"]
    r = call("POST", "/v1/sessions/nb/run", body=json.dumps({"code": "return 1", "data": 2,
                                                             "timeout_s": 1.5}),
             backend=backend, **{"content-type": "application/json"})
    assert (r.status_code, r.json()["result"]) == (200, ["alice:nb", "return 1", 2, 1.5])


def test_another_principals_call_of_the_same_id_is_404():
    backend = FakeBackend()
    call("POST", "/v1/sessions", body=json.dumps({"runtime": "python", "session_id": "nb"}),
         backend=backend, **{"content-type": "application/json"})
    r = call("POST", "/v1/sessions/nb/run", body=json.dumps({"code": "return 1"}),
             backend=backend, key=BOB_KEY, **{"content-type": "application/json"})
    assert (r.status_code, r.json()["detail"]) == (
        404, "session 'bob:nb' is not open (open it first)")


@pytest.mark.parametrize(("body", "field"), [
    ({"runtime": "cobol"}, "runtime"),
    ({"runtime": "python", "session_id": "a/b"}, "session_id"),
    ({"runtime": "python", "memory_mb": "lots"}, "memory_mb"),
    ({"runtime": "python", "idle_timeout_s": -1}, "idle_timeout_s"),
    ({"runtime": "python", "code": "x"}, "code"),
])
def test_a_bad_session_body_is_422_naming_the_field(body, field):
    r = call("POST", "/v1/sessions", body=json.dumps(body), **{"content-type": "application/json"})
    assert (r.status_code, r.json()["fields"]) == (422, [field])


JSON: dict[str, Any] = {"content-type": "application/json"}


def _opened() -> FakeBackend:
    backend = FakeBackend()
    call("POST", "/v1/sessions", body=json.dumps({"runtime": "python", "session_id": "nb"}),
         backend=backend, **JSON)
    return backend


def test_a_sessions_files_are_uploaded_with_put_as_a_call_that_runs_no_code():
    backend = _opened()
    r = call("PUT", "/v1/sessions/nb/files", backend=backend, **JSON,
             body=json.dumps({"files": {"a.txt": "hi", "b": {"$bytes": "AAE="}}}))
    assert (r.status_code, r.json()["result"][:2], backend.options.files,
            backend.options.return_files) == (
        200, ["alice:nb", ""], {"a.txt": "hi", "b": b"\x00\x01"}, False)


def test_a_sessions_files_are_downloaded_with_get_as_a_call_that_runs_no_code():
    backend = _opened()
    r = call("GET", "/v1/sessions/nb/files", backend=backend)
    assert (r.status_code, r.json()["result"][:2], backend.options.files,
            backend.options.return_files) == (200, ["alice:nb", ""], None, True)


def test_another_principals_download_of_the_same_id_is_404():
    r = call("GET", "/v1/sessions/nb/files", backend=_opened(), key=BOB_KEY)
    assert (r.status_code, r.json()["detail"]) == (
        404, "session 'bob:nb' is not open (open it first)")


@pytest.mark.parametrize(("body", "field"), [
    ({"files": {"a": "b"}, "code": "x"}, "code"),
    ({"files": ["a"]}, "files"),
    ({}, "files"),
    ({"files": {"a": {"$bytes": "%%"}}}, "files"),
])
def test_a_bad_upload_is_422_naming_the_field(body, field):
    r = call("PUT", "/v1/sessions/nb/files", backend=_opened(), body=json.dumps(body), **JSON)
    assert (r.status_code, r.json()["fields"]) == (422, [field])


def test_a_session_call_may_carry_files_in_the_tagged_view_and_ask_for_them_back():
    code, data, options = mapping.session_call(json.dumps(
        {"code": "", "files": {"b": {"$bytes": "AAE="}}, "return_files": True}).encode())
    assert (options.files, options.return_files) == ({"b": b"\x00\x01"}, True)


def test_a_session_is_closed_with_delete():
    backend = FakeBackend()
    call("POST", "/v1/sessions", body=json.dumps({"runtime": "python", "session_id": "nb"}),
         backend=backend, **{"content-type": "application/json"})
    r = call("DELETE", "/v1/sessions/nb", backend=backend)
    assert (r.status_code, r.json()["status"], backend.sessions) == (200, "ok", {})
# -- a task that streams: Server-Sent Events -----------------------------------------------------


def test_a_streaming_task_is_answered_with_its_output_then_its_result_as_events():
    reply = post(task(code="print", stream=True))
    events = [block.split("\n") for block in reply.text.strip().split("\n\n")]
    assert (reply.status_code, reply.headers["content-type"].split(";")[0]) == (
        200, "text/event-stream")
    assert [(e[0], json.loads(e[1].removeprefix("data: "))) for e in events][:2] == [
        ("event: stdout", {"text": "one\n"}), ("event: stderr", {"text": "two\n"})]
    assert (events[2][0], json.loads(events[2][1].removeprefix("data: "))["result"]) == (
        "event: result", ["print", "alice"])


def test_a_streaming_task_rejected_before_it_ran_gets_the_rejections_status():
    reply = post(task(code="full", stream=True))
    assert (reply.status_code, reply.headers["retry-after"]) == (429, "1")


def test_an_event_is_one_line_of_json_whatever_the_text():
    assert mapping.output_event(OutputChunk("stdout", "a\n\nb\r")) == (
        b'event: stdout\ndata: {"text": "a\\n\\nb\\r"}\n\n')


def test_stdin_may_be_bytes_in_the_tagged_view():
    req = mapping.task_request(task(stdin={"$bytes": "AAE="}), defaults=LIMITS, principal="a")
    assert req.message.stdin == b"\x00\x01"


def test_files_may_be_text_or_bytes_in_the_tagged_view():
    req = mapping.task_request(task(files={"a.txt": "hi", "b": {"$bytes": "AAE="}}),
                               defaults=LIMITS, principal="a")
    assert req.message.files == {"a.txt": b"hi", "b": b"\x00\x01"}
