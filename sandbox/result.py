"""What a host application gets back from a task."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runtimes import codec, outcome
from runtimes.framing import WireError
from runtimes.outcome import Status
from sandbox.errors import TaskFailed
from sandbox.jsonview import to_jsonable

__all__ = ["ErrorInfo", "Result", "Status"]


@dataclass(frozen=True)
class ErrorInfo:
    """The snippet's exception: its type name, message and a traceback in snippet lines."""

    type: str
    message: str
    traceback: str


@dataclass(frozen=True)
class Result:
    """How a task ended. ``value`` is the decoded return value when ``status`` is ok."""

    status: Status
    message: str
    value: Any = None
    stdout: str = ""
    truncated: bool = False
    error: ErrorInfo | None = None
    duration_ms: float = 0.0  # wall clock seen by the host, from hand-over to result
    exec_ms: float = 0.0  # time the snippet itself ran, measured inside the child
    # why a rejected task never ran, for a program, when the broker said: "queue_full",
    # "client_cap", "no_runner", "queue_timeout", "draining"... (``broker.core``'s names)
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    @classmethod
    def rejected(cls, message: str, reason: str = "") -> Result:
        return cls(Status.REJECTED, message, reason=reason)

    def raise_for_status(self) -> Result:
        """This Result if the task ended ``ok``, else ``TaskFailed`` carrying it."""
        if not self.ok:
            raise TaskFailed(self)
        return self

    def to_dict(self) -> dict[str, Any]:
        """The Result as JSON can carry it (``sandbox exec --json`` prints this): what JSON
        cannot say (bytes, NaN, big ints, datetimes, int keys) in the tagged view of
        ``sandbox.jsonview``, which reads back to the same value."""
        return {
            "status": self.status.value,
            "result": to_jsonable(self.value),
            "stdout": self.stdout,
            "error": (
                {"type": self.error.type, "message": self.error.message,
                 "traceback": self.error.traceback}
                if self.error else None
            ),
            "duration_ms": round(self.duration_ms, 3),
            "message": self.message,
            "truncated": self.truncated,
            "exec_ms": round(self.exec_ms, 3),
        }

    @classmethod
    def from_wire(cls, body: bytes | bytearray, *, max_bytes: int, duration_ms: float = 0.0) -> Result:
        """Decode a result envelope. Never raises: a malformed one becomes ``crashed``."""
        try:
            env = outcome.decode(body, max_bytes=max_bytes)
            value = codec.decode(env.value) if env.value is not None else None
        except (WireError, codec.DecodeError) as exc:
            return cls(Status.CRASHED, f"the sandbox returned a malformed result: {exc}",
                       duration_ms=duration_ms)
        error = env.error
        return cls(
            status=env.status,
            message=env.message,
            value=value,
            stdout=env.stdout,
            truncated=env.truncated,
            error=ErrorInfo(error.type, error.message, error.traceback) if error else None,
            duration_ms=duration_ms,
            exec_ms=env.duration_ms,
        )
