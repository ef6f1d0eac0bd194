"""The exception tree. Every error this package raises derives from ``SandboxError``.

    SandboxError
    ├── ConfigError      a limit or setting is out of range or of the wrong type
    ├── RequestError     a task request that cannot run (answered with status rejected)
    ├── JailError        a jail could not be set up or started (nsjail, cgroups, mounts)
    ├── ClosedError      the sandbox was used after close()
    ├── SessionError     a session could not be opened (its message says why)
    ├── TaskFailed       ``Result.raise_for_status()`` of a task that did not end ok
    ├── ConnectError     a broker could not be reached, or the server refused our key
    │   └── N8nConnectError  n8n's task broker refused the grant or the upgrade, or is unreachable
    ├── N8nProtocolError a frame from n8n's task broker that does not parse or validate
    └── ApiError         an HTTP API request refused before it became a task (its status)

Outcomes of a snippet are never exceptions: ``run()`` returns a ``Result`` whose status says
how it ended (including ``rejected`` for a request that could not run).
"""

from __future__ import annotations

from typing import Any


class SandboxError(Exception):
    """Root of every error raised by this package."""


class ConfigError(SandboxError, ValueError):
    """A limit or setting is out of range or of the wrong type."""


class RequestError(SandboxError, ValueError):
    """A task request that cannot run: an unknown runtime, bad limits, code that is not
    text... Never raised to a caller of ``run``: it becomes a ``rejected`` result."""


class JailError(SandboxError):
    """A jail could not be set up or started."""


class ClosedError(SandboxError):
    """The sandbox was used after it was closed."""


class SessionError(SandboxError):
    """A session could not be opened: the cap on open sessions, no idle child in time, a
    runtime without sessions, a closed sandbox. (A call of a session never raises: its
    Result says how it ended, ``session_lost`` when the session is gone.)"""


class TaskFailed(SandboxError):
    """A task did not end ``ok`` (raised only by ``Result.raise_for_status()``); ``result``
    is its Result."""

    def __init__(self, result: Any) -> None:
        super().__init__(f"{result.status.value}: {result.message}")
        self.result = result


class ConnectError(SandboxError):
    """A broker could not be reached in time, or its server refused our CURVE key."""


class N8nConnectError(ConnectError):
    """n8n's task broker refused the grant or the WebSocket upgrade (``status``: the HTTP
    status, 0 when there was none), or could not be reached."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class N8nProtocolError(SandboxError):
    """A frame from n8n's task broker that is not valid JSON, or not a message n8n 2.41
    sends, or lacks a field of the right type (see ``sandbox/n8n/protocol.py``)."""


class ApiError(SandboxError):
    """An HTTP API request refused before it became a task: malformed JSON, unknown fields,
    a body too large or too slow, a wrong content type, a missing key. ``status`` is the
    HTTP status it is answered with; ``fields`` names the fields at fault, if any."""

    def __init__(self, status: int, message: str, fields: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.fields = fields
