"""The HTTP API's ASGI application (Starlette): routes, keys, bodies; nothing decided here.

Each route reads what it needs (the key, the body: capped and timed), hands it to the pure
mapping (``sandbox.http.mapping``), and sends the ``Answer`` it gets. A task goes to a
``Backend``: the daemon's is our own ``AsyncClient`` on the broker's client socket
(``sandbox.http.server``), the unit tier's a fake. Routes live under ``/v1/``: tasks and
runtimes and sessions (``/v1/sessions``, ``/v1/sessions/{id}/run``, ``DELETE
/v1/sessions/{id}``); a session's files at ``/v1/sessions/{id}/files`` (PUT, GET).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from typing import Any, Protocol, TypeVar

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request as HttpRequest
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from sandbox.config import Limits
from sandbox.errors import ApiError
from sandbox.http import mapping, openapi
from sandbox.http.keys import ApiKeys
from sandbox.request import Options, Request
from sandbox.result import OutputChunk, Result, Status

T = TypeVar("T")
ANONYMOUS = "local"  # the principal of every caller when there are no keys (loopback only)


class Backend(Protocol):
    """What the API needs of the service: run a checked request for a principal, say
    which runtimes the runners serve. ``defaults``: the limits a request starts from."""

    defaults: Limits

    async def run(self, req: Request, principal: str,
                  on_output: Callable[[OutputChunk], None] | None = None) -> Result:
        """``on_output``: called with each chunk of a streaming task's output, in order,
        before it returns the result."""

    async def open_session(self, opening: mapping.SessionOpen, key: str) -> Result: ...

    async def call_session(self, key: str, code: str, data: Any,
                           options: Options) -> Result: ...

    async def close_session(self, key: str) -> Result: ...

    def runtimes(self) -> list[tuple[Mapping[str, str], int]]: ...

    async def aclose(self) -> None: ...


def make_app(backend: Callable[[], Backend], *, keys: ApiKeys | None, body_bytes: int,
             body_timeout_s: float, version: str) -> Starlette:
    """The application; ``backend()`` is made when it starts (in the server's event loop)
    and closed when it stops."""
    state: dict[str, Backend] = {}
    spec = json.dumps(openapi.document(version)).encode()

    def principal_of(request: HttpRequest) -> str:
        if keys is None:
            return ANONYMOUS
        found = keys.principal(request.headers.get("authorization"))
        if found is None:
            what = "a wrong key" if request.headers.get("authorization") else "no key"
            raise ApiError(401, f"{what}: send Authorization: Bearer <key>")
        return found

    async def run_task(request: HttpRequest) -> Response:
        try:
            principal = principal_of(request)
            kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
            if kind != "application/json":
                raise ApiError(415, f"a task is application/json, not {kind or 'unnamed'}")
            body = await read_body(request, body_bytes, body_timeout_s)
            req = mapping.task_request(body, defaults=state["backend"].defaults,
                                       principal=principal)
        except ApiError as exc:
            return send(mapping.error_answer(exc), close=exc.status in (408, 413))
        if req.options.stream:
            return await stream_task(request, state["backend"], req, principal)
        result = await unless_gone(request, state["backend"].run(req, principal))
        if result is None:  # nobody to answer: the response goes nowhere
            return Response(status_code=499)
        return send(mapping.task_answer(result))

    async def json_body(request: HttpRequest, what: str) -> bytes:
        kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if kind != "application/json":
            raise ApiError(415, f"{what} is application/json, not {kind or 'unnamed'}")
        return await read_body(request, body_bytes, body_timeout_s)

    async def open_session(request: HttpRequest) -> Response:
        try:
            principal = principal_of(request)
            opening = mapping.session_open(await json_body(request, "a session"))
        except ApiError as exc:
            return send(mapping.error_answer(exc), close=exc.status in (408, 413))
        sid = opening.id or uuid.uuid4().hex
        result = await unless_gone(request, state["backend"].open_session(
            opening, mapping.session_key(principal, sid)))
        if result is None:
            return Response(status_code=499)
        return send(mapping.opened_answer(result, sid, opening.runtime))


    async def call(request: HttpRequest, key: str, code: str, data: Any,
                   options: Options) -> Response:
        """A session's call (a run, an upload, a download) and its answer; 499 when the
        client left first."""
        result = await unless_gone(request, state["backend"].call_session(key, code, data,
                                                                          options))
        if result is None:
            return Response(status_code=499)
        return send(mapping.session_answer(result))
    async def call_session(request: HttpRequest) -> Response:
        try:
            principal = principal_of(request)
            sid = mapping.session_id(request.path_params["id"])
            code, data, options = mapping.session_call(await json_body(request, "a call"))
        except ApiError as exc:
            return send(mapping.error_answer(exc), close=exc.status in (408, 413))
        return await call(request, mapping.session_key(principal, sid), code, data, options)

    async def session_files(request: HttpRequest) -> Response:
        """PUT: write files into the session's directory; GET: what it holds."""
        try:
            principal = principal_of(request)
            sid = mapping.session_id(request.path_params["id"])
            options = (mapping.session_upload(await json_body(request, "an upload"))
                       if request.method == "PUT" else mapping.session_download())
        except ApiError as exc:
            return send(mapping.error_answer(exc), close=exc.status in (408, 413))
        return await call(request, mapping.session_key(principal, sid), "", None, options)

    async def close_session(request: HttpRequest) -> Response:
        try:
            principal = principal_of(request)
            sid = mapping.session_id(request.path_params["id"])
        except ApiError as exc:
            return send(mapping.error_answer(exc))
        result = await state["backend"].close_session(mapping.session_key(principal, sid))
        return send(mapping.session_answer(result))

    async def list_runtimes(request: HttpRequest) -> Response:
        try:
            principal_of(request)
        except ApiError as exc:
            return send(mapping.error_answer(exc))
        return send(mapping.Answer(200, mapping.runtimes_json(state["backend"].runtimes())))

    async def openapi_json(request: HttpRequest) -> Response:
        return Response(spec, media_type="application/json")

    async def http_error(request: HttpRequest, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        detail = {404: f"no route {request.url.path}",
                  405: f"{request.method} is not allowed on {request.url.path}"}.get(
                      exc.status_code, str(exc.detail))
        answer = mapping.problem(exc.status_code, detail)
        return send(answer, extra=dict(exc.headers or {}))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state["backend"] = backend()
        try:
            yield
        finally:
            await state["backend"].aclose()

    return Starlette(
        routes=[Route("/v1/tasks", run_task, methods=["POST"]),
                Route("/v1/runtimes", list_runtimes, methods=["GET"]),
                Route("/v1/sessions", open_session, methods=["POST"]),
                Route("/v1/sessions/{id}/run", call_session, methods=["POST"]),
                Route("/v1/sessions/{id}", close_session, methods=["DELETE"]),
                Route("/v1/sessions/{id}/files", session_files, methods=["PUT", "GET"]),
                Route("/v1/openapi.json", openapi_json, methods=["GET"])],
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
    )


def send(answer: mapping.Answer, *, close: bool = False, extra: Mapping[str, str] | None = None
         ) -> Response:
    headers = dict(answer.headers)
    headers.update(extra or {})
    if close:  # the rest of the body is not read: the connection cannot carry another request
        headers["Connection"] = "close"
    text = json.dumps(answer.body, ensure_ascii=False, allow_nan=False)
    try:
        body = text.encode()
    except UnicodeEncodeError:  # a lone surrogate in some text: JSON's \u escapes carry it
        body = json.dumps(answer.body, allow_nan=False).encode()
    return Response(body, status_code=answer.status, headers=headers, media_type=answer.media_type)


async def stream_task(request: HttpRequest, backend: Backend, req: Request,
                      principal: str) -> Response:
    """A task that streams, as Server-Sent Events (``sandbox.http.mapping``): its output as
    it comes, then its result. The response begins with the first of them, so that a task
    rejected before it ran is answered with a rejection's status instead. The task is
    cancelled if the client goes away (Starlette cancels the body's generator then)."""
    chunks: asyncio.Queue[OutputChunk] = asyncio.Queue()
    running = asyncio.ensure_future(backend.run(req, principal, chunks.put_nowait))

    async def next_item() -> OutputChunk | Result:
        if not chunks.empty():
            return chunks.get_nowait()
        getter = asyncio.ensure_future(chunks.get())
        try:
            await asyncio.wait({getter, running}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not getter.done():
                getter.cancel()  # Queue.get gives nothing up when cancelled
        if getter.done() and not getter.cancelled():
            return getter.result()
        return running.result()

    first = await unless_gone(request, next_item())
    if first is None:
        running.cancel()
        return Response(status_code=499)
    if isinstance(first, Result) and first.status is Status.REJECTED:
        return send(mapping.task_answer(first))

    async def events() -> AsyncIterator[bytes]:
        item: OutputChunk | Result = first
        try:
            while isinstance(item, OutputChunk):
                yield mapping.output_event(item)
                item = await next_item()
            yield mapping.result_event(item)
        finally:
            if not running.done():
                running.cancel()

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})


async def unless_gone(request: HttpRequest, work: Coroutine[Any, Any, T]) -> T | None:
    """``work``'s result, or None when the client went away first: then ``work`` is
    cancelled, which cancels its task at the broker (``AsyncHandle``), so a caller that gave
    up holds no slot and no place in the queue."""
    running = asyncio.ensure_future(work)

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    gone = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({running, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not running.done():
            running.cancel()
    return running.result() if running.done() and not running.cancelled() else None


async def read_body(request: HttpRequest, cap: int, timeout_s: float) -> bytes:
    """The body, at most ``cap`` bytes (413 past it, said by Content-Length before a byte is
    read when the client gives one), arriving within ``timeout_s`` (408 past it: a client
    that never finishes its body holds nothing for longer)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise ApiError(413, f"the body is {declared} bytes, over the {cap}-byte cap")
    chunks: list[bytes] = []
    size = 0

    async def read() -> None:
        nonlocal size
        async for chunk in request.stream():
            size += len(chunk)
            if size > cap:
                raise ApiError(413, f"the body is over the {cap}-byte cap")
            chunks.append(chunk)

    try:
        await asyncio.wait_for(read(), timeout_s)
    except TimeoutError as exc:
        raise ApiError(408, f"the body did not arrive within {timeout_s:g} s") from exc
    return b"".join(chunks)
