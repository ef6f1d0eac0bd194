"""What a host application gets back from a task."""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import Any

from runtimes import codec, outcome
from runtimes.framing import WireError
from runtimes.outcome import Status
from sandbox.errors import TaskFailed
from sandbox.jsonview import to_jsonable

__all__ = ["ErrorInfo", "OutputChunk", "Result", "Status"]


@dataclass(frozen=True)
class OutputChunk:
    """A piece of a streaming task's output, as it came while the task ran: its stream
    ("stdout" or "stderr") and its text (whole characters: a character cut between two
    pieces on the wire comes whole in the later one)."""

    stream: str
    text: str


class OutputText:
    """A streaming task's output bytes to ``OutputChunk``s: UTF-8 decoded per stream and
    incrementally, so that a character cut in two between pieces comes whole (bad bytes are
    replaced, as the result's text is decoded leniently too). One per task."""

    def __init__(self) -> None:
        self._decoders: dict[str, codecs.IncrementalDecoder] = {}

    def feed(self, stream: str, data: bytes) -> OutputChunk | None:
        decoder = self._decoders.get(stream)
        if decoder is None:
            decoder = self._decoders[stream] = codecs.getincrementaldecoder("utf-8")("replace")
        text = decoder.decode(data)
        return OutputChunk(stream, text) if text else None


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
    # the task's standard error, when it asked for it apart (``separate_stderr``: ``stdout``
    # then holds standard output only; otherwise both are merged in ``stdout``, in order)
    stderr: str = ""
    # what the task cost, read by the host from the kernel's accounting of its process (see
    # sandbox/host/usage.py): CPU time (user + system) and the peak resident set; None when
    # it could not be read (the process was gone) or the task never ran
    cpu_ms: float | None = None
    peak_memory_kb: int | None = None
    # what the task wrote in its own directory, by relative name, when it asked
    # (``return_files``); and what of it did not come back, with why (a symbolic link, a
    # device, over the result's size cap...); None when it did not ask
    files: dict[str, bytes] | None = None
    files_skipped: dict[str, str] | None = None

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
            "stderr": self.stderr,
            "cpu_ms": None if self.cpu_ms is None else round(self.cpu_ms, 3),
            "peak_memory_kb": self.peak_memory_kb,
            "files": None if self.files is None else to_jsonable(self.files),
            "files_skipped": self.files_skipped,
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
            stderr=env.stderr,
            cpu_ms=env.cpu_ms,
            peak_memory_kb=env.peak_memory_kb,
            files=env.files,
            files_skipped=env.files_skipped,
        )
