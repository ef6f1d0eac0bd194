"""The HTTP API's requests and answers, as values: no sockets, no server.

What it decides:

- a task's body (``task_request``): a JSON object of ``runtime``, ``code``, ``data`` (in the
  tagged JSON view, ``sandbox.jsonview``) and the options by ``sandbox.request.Options``'s
  names, nothing else. Malformed JSON is 400; a body that is not an object, a field that is
  no field (all of them named), a malformed tag, or a request ``sandbox.request.request``
  refuses, is 422. That one check is the only one: the adapter adds no rule of its own.
- whose task it is: a principal's warm workers serve that principal only, so in worker mode
  the reuse key a caller names is taken within its principal (``alice:KEY``), and two
  principals naming the same key never share a worker.
- the answer to a task (``task_answer``): 200 with the result, in the one JSON shape of a
  Result (``Result.to_dict``, what ``sandbox exec --json`` prints), for every status a task that
  ran can end with (ok, error, timeout...: the task was served; its outcome is the body's),
  and for ``rejected`` the status that says who can do something about it: 422 for a
  request the service refuses (only the caller can fix it), 429 with Retry-After when the
  queue or the caller's share of it is full, 503 when the service cannot run it now
  (draining, no runner, no slot within the queue wait).
- sessions: ``POST /v1/sessions`` opens one (its body: ``runtime``, optional ``session_id``,
  ``memory_mb``, ``idle_timeout_s``, ``max_lifetime_s``; an id the caller has open is
  attached to), ``POST /v1/sessions/{id}/run`` calls it (``code``, ``data`` and the call's
  limits ``timeout_s``, ``stdout_bytes``, ``result_bytes``, ``imports``), ``DELETE
  /v1/sessions/{id}`` closes it. A session is its principal's: the id a caller names is
  taken within its principal (``alice:ID``). A call's outcome is a task's (200, the Result;
  ``session_lost`` among the statuses); an id that is not open is 404, the session caps 429.
  A call may carry ``files`` and ``return_files`` (a session's directory, with the
  operator's ``files_mb``); ``PUT /v1/sessions/{id}/files`` (``{"files": {...}}``) and ``GET
  /v1/sessions/{id}/files`` are calls that run no code, one writing files, the other bringing
  back all the directory holds (the Result's ``files``), answered as calls are. The whole
  directory at one path, not one path per file: a name may hold ``/``, is judged by the one
  rule a task's names are (never by URL decoding), and an upload of many files is one trip
  into the session, between its calls (which run one at a time).
- a task that asks to ``stream`` is answered with Server-Sent Events (``text/event-stream``),
  one event per output chunk as it comes (``event: stdout`` or ``stderr``, ``data: {"text"}``)
  and then one ``result`` event whose data is the Result's JSON shape; a task rejected before
  it ran gets the status a rejection gets (the response has not begun), never an event.
- errors that are not a task's outcome are RFC 9457 problem documents
  (``application/problem+json``: ``title``, ``status``, ``detail``, and ``fields`` or
  ``reason`` where they say more).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from http import HTTPStatus
from typing import Any

from sandbox import jsonview, registry
from sandbox.config import Limits
from sandbox.errors import ApiError, RequestError
from sandbox.request import OPTION_NAMES, Options, Request, request
from sandbox.result import OutputChunk, Result, Status

TASK_FIELDS = frozenset({"runtime", "code", "data"}) | OPTION_NAMES
RETRY_AFTER_S = 1  # what a 429 asks the caller to wait: a queue slot frees within a task
# a broker's rejection reasons (``broker.core``), by the HTTP status that answers them;
# any other reason (and "" for a request refused before it was sent) is 422
BUSY_REASONS = frozenset({"queue_full", "client_cap", "session_cap"})
OPEN_FIELDS = frozenset({"runtime", "session_id", "memory_mb", "idle_timeout_s", "max_lifetime_s"})
CALL_FIELDS = frozenset({"code", "data", "timeout_s", "stdout_bytes", "result_bytes", "imports",
                         "files", "return_files"})
UPLOAD_FIELDS = frozenset({"files", "timeout_s"})
SESSION_ID = re.compile(r"[A-Za-z0-9._~-]{1,60}")  # within its principal's: "<principal>:<id>"
UNAVAILABLE_REASONS = frozenset({"draining", "shutdown", "no_runner", "queue_timeout"})
PROBLEM_TYPE = "application/problem+json"


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: its status, its JSON body, its extra headers."""

    status: int
    body: dict[str, Any]
    headers: tuple[tuple[str, str], ...] = ()
    media_type: str = "application/json"


def problem(status: int, detail: str, **more: Any) -> Answer:
    """A problem document (RFC 9457) for an error that is not a task's outcome."""
    headers: tuple[tuple[str, str], ...] = ()
    if status == 401:
        headers = (("WWW-Authenticate", 'Bearer realm="sandbox"'),)
    elif status == 429:
        headers = (("Retry-After", str(RETRY_AFTER_S)),)
    body = {"title": HTTPStatus(status).phrase, "status": status, "detail": detail, **more}
    return Answer(status, body, headers, PROBLEM_TYPE)


def error_answer(exc: ApiError) -> Answer:
    return problem(exc.status, str(exc), **({"fields": list(exc.fields)} if exc.fields else {}))


def parse_json(body: bytes) -> Any:
    """A body's JSON: ApiError 400 when it is not UTF-8 JSON. JSON's own numbers only:
    NaN and Infinity are not JSON (the tagged view says them: ``{"$float": "NaN"}``)."""
    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON (send {{\"$float\": \"{name}\"}})")

    try:
        return json.loads(body.decode("utf-8"), parse_constant=refuse)
    except UnicodeDecodeError as exc:
        raise ApiError(400, f"the body is not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    except ValueError as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}") from exc
    except RecursionError as exc:  # a body of "[[[[..." is cheap to send
        raise ApiError(400, "the body is JSON nested too deeply to read") from exc


def task_request(body: bytes, *, defaults: Limits, principal: str) -> Request:
    """The checked request a task's body asks for (``sandbox.request.request``: the one
    check), its worker reuse taken within ``principal``. ApiError 400 or 422 saying why."""
    doc = parse_json(body)
    if not isinstance(doc, dict):
        raise ApiError(422, f"a task must be a JSON object, not {_json_type(doc)}")
    unknown = sorted(set(doc) - TASK_FIELDS)
    if unknown:
        raise ApiError(422, f"unknown field(s): {', '.join(unknown)} (a task takes "
                            f"{', '.join(sorted(TASK_FIELDS))})", tuple(unknown))
    missing = [name for name in ("runtime", "code") if name not in doc]
    if missing:
        raise ApiError(422, f"missing field(s): {', '.join(missing)}", tuple(missing))
    data = _data(doc, "a task's")
    given = {k: v for k, v in doc.items() if k in OPTION_NAMES}
    if isinstance(given.get("stdin"), dict):  # bytes, in the tagged view: {"$bytes": ...}
        try:
            given["stdin"] = jsonview.from_jsonable(given["stdin"])
        except ValueError as exc:
            raise ApiError(422, f"stdin: {exc}", ("stdin",)) from exc
    _tagged_files(given)
    if isinstance(given.get("imports"), list):
        given["imports"] = tuple(given["imports"])  # a bare string is left for the check
    options = scoped(Options(**given), doc["runtime"], principal)
    try:
        return request(doc["runtime"], doc["code"], data, options, defaults=defaults)
    except RequestError as exc:
        raise ApiError(422, str(exc)) from exc


def _tagged_files(given: dict[str, Any]) -> None:
    """``files`` in the tagged JSON view, each content text or ``{"$bytes": ...}``, made
    str or bytes (in place); what is not a JSON object is left for the one check."""
    if isinstance(given.get("files"), dict):
        try:
            given["files"] = {name: jsonview.from_jsonable(content)
                              for name, content in given["files"].items()}
        except ValueError as exc:
            raise ApiError(422, f"files: {exc}", ("files",)) from exc


@dataclass(frozen=True)
class SessionOpen:
    """What a session's opening asks for; ``id`` None: a new id, made by the API."""

    runtime: str
    id: str | None
    memory_mb: int | None
    idle_timeout_s: float | None
    max_lifetime_s: float | None


def _object(body: bytes, fields: frozenset[str], what: str) -> dict[str, Any]:
    doc = parse_json(body)
    if not isinstance(doc, dict):
        raise ApiError(422, f"{what} must be a JSON object, not {_json_type(doc)}")
    unknown = sorted(set(doc) - fields)
    if unknown:
        raise ApiError(422, f"unknown field(s): {', '.join(unknown)} ({what} takes "
                            f"{', '.join(sorted(fields))})", tuple(unknown))
    return doc


def session_id(value: object) -> str:
    """A session id as a caller names it: ApiError 422 unless it is 1 to 60 of
    ``A-Z a-z 0-9 . _ ~ -``."""
    if not isinstance(value, str) or not SESSION_ID.fullmatch(value):
        raise ApiError(422, "session_id must be 1 to 60 of A-Z a-z 0-9 . _ ~ -",
                       ("session_id",))
    return value


def session_open(body: bytes) -> SessionOpen:
    """A session's opening body, checked (ApiError 400 or 422 saying why)."""
    doc = _object(body, OPEN_FIELDS, "a session")
    runtime = registry.canonical(doc.get("runtime"))
    if runtime is None:
        raise ApiError(422, f"unknown runtime {doc.get('runtime')!r} (known: {registry.known()})",
                       ("runtime",))
    sid = None if doc.get("session_id") is None else session_id(doc["session_id"])
    memory = doc.get("memory_mb")
    if memory is not None and (not isinstance(memory, int) or isinstance(memory, bool)):
        raise ApiError(422, "memory_mb must be an integer", ("memory_mb",))
    seconds = {}
    for name in ("idle_timeout_s", "max_lifetime_s"):
        value = doc.get(name)
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)
                                  or not 0 < value <= 30 * 86400):
            raise ApiError(422, f"{name} must be a number of seconds above 0, at most 30 days",
                           (name,))
        seconds[name] = None if value is None else float(value)
    return SessionOpen(runtime, sid, memory, seconds["idle_timeout_s"], seconds["max_lifetime_s"])


def _data(doc: dict[str, Any], whose: str) -> Any:
    """A body's ``data`` from the tagged JSON view (ApiError 422 naming ``data``)."""
    try:
        return jsonview.from_jsonable(doc.get("data"))
    except ValueError as exc:
        raise ApiError(422, f"data: {exc}", ("data",)) from exc
    except RecursionError as exc:
        raise ApiError(422, f"data: nested too deeply ({whose} data may nest 256 deep)",
                       ("data",)) from exc


def session_call(body: bytes) -> tuple[str, Any, Options]:
    """A session call's body: its code, data and options (ApiError 400 or 422)."""
    doc = _object(body, CALL_FIELDS, "a session's call")
    if not isinstance(doc.get("code"), str):
        raise ApiError(422, "code must be a string", ("code",))
    data = _data(doc, "a call's")
    given = {k: v for k, v in doc.items() if k in OPTION_NAMES}
    _tagged_files(given)
    if isinstance(given.get("imports"), list):
        given["imports"] = tuple(given["imports"])
    return doc["code"], data, Options(**given)


def session_upload(body: bytes) -> Options:
    """``PUT /v1/sessions/{id}/files``'s body, ``{"files": {name: content}}``: the options of
    a call that runs no code and writes them (ApiError 400 or 422)."""
    doc = _object(body, UPLOAD_FIELDS, "an upload")
    if not isinstance(doc.get("files"), dict):
        raise ApiError(422, "files must be an object of names to contents", ("files",))
    given = {"files": doc["files"], **({"timeout_s": doc["timeout_s"]} if "timeout_s" in doc
                                       else {})}
    _tagged_files(given)
    return Options(**given)


def session_download() -> Options:
    """``GET /v1/sessions/{id}/files``: a call that runs no code and brings back all the
    session's directory holds."""
    return Options(return_files=True)


def session_key(principal: str, sid: str) -> str:
    """The session's name at the broker: taken within its principal."""
    return f"{principal}:{sid}"


def opened_answer(result: Result, sid: str, runtime: str) -> Answer:
    """The answer to a session's opening: 201 with its id, else as a refused task's."""
    if result.status is Status.OK:
        return Answer(201, {"id": sid, "runtime": runtime}, (("Location", f"/v1/sessions/{sid}"),))
    return session_answer(result)


def session_answer(result: Result) -> Answer:
    """A session call's or close's answer: a task's, but 404 for an id that is not open."""
    if result.status is Status.REJECTED and result.reason == "no_session":
        return problem(404, result.message, reason=result.reason)
    if result.status is Status.REJECTED and not result.reason and result.message.startswith(
            "session") and "is not open" in result.message:
        return problem(404, result.message)
    return task_answer(result)


def scoped(options: Options, runtime: object, principal: str) -> Options:
    """``options`` with a worker's reuse key taken within ``principal``: warm workers serve
    one principal only, whatever key a caller names (the tenancy rule of the service)."""
    name = registry.canonical(runtime)
    workers = options.isolation == "worker" or (
        name is not None and registry.RUNTIMES[name].worker_children)
    if not workers or not isinstance(options.reuse_key, (str, type(None))):
        return options  # the check says what is wrong with it
    return replace(options, reuse_key=f"{principal}:{options.reuse_key or 'default'}")


def task_answer(result: Result) -> Answer:
    """The HTTP answer to a task's result (the module's rules)."""
    if result.status is not Status.REJECTED:
        return Answer(200, result.to_dict())
    more = {"reason": result.reason} if result.reason else {}
    if result.reason in BUSY_REASONS:
        return problem(429, result.message, **more)
    if result.reason in UNAVAILABLE_REASONS:
        return problem(503, result.message, **more)
    return problem(422, result.message, **more)


def event(name: str, body: dict[str, Any]) -> bytes:
    """One Server-Sent Event: its name and its data, one line of JSON (JSON escapes every
    newline, so the data never ends the event early)."""
    try:
        data = json.dumps(body, ensure_ascii=False, allow_nan=False).encode()
    except UnicodeEncodeError:  # a lone surrogate in some text: JSON's \u escapes carry it
        data = json.dumps(body, allow_nan=False).encode()
    return b"event: " + name.encode() + b"\ndata: " + data + b"\n\n"


def output_event(chunk: OutputChunk) -> bytes:
    return event(chunk.stream, {"text": chunk.text})


def result_event(result: Result) -> bytes:
    return event("result", result.to_dict())


def runtimes_json(runners: Iterable[tuple[Mapping[str, str], int]]) -> dict[str, Any]:
    """What the daemon serves now, from its registered runners (each: runtime -> version,
    and its slots): per runtime its names, the versions on offer, and runners and slots."""
    served: dict[str, dict[str, Any]] = {}
    for runtimes, slots in runners:
        for name, version in runtimes.items():
            entry = served.setdefault(name, {"versions": set(), "runners": 0, "slots": 0})
            entry["versions"].add(version)
            entry["runners"] += 1
            entry["slots"] += slots
    out = []
    for name in sorted(served):
        facts = registry.RUNTIMES.get(name)
        entry = served[name]
        out.append({"name": name, "aliases": list(facts.aliases) if facts else [],
                    "versions": sorted(entry["versions"]), "runners": entry["runners"],
                    "slots": entry["slots"]})
    return {"runtimes": out}


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"
