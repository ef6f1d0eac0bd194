"""How a task ended: the status vocabulary and the result envelope.

The envelope is what a child writes on its task channel as its one result frame, and what
the host writes for outcomes it decides itself (a timeout, a crash, a rejection). It travels
untouched from the child to the client; only the client decodes ``value`` (with
``runtimes.codec``). Decoding an envelope treats it as untrusted: it returns an ``Envelope``
or raises ``WireError``, nothing else.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import msgpack

from runtimes.framing import WireError

VERSION = 1


class Status(str, enum.Enum):
    """How a task ended. Every status carries a human-readable message."""

    OK = "ok"  # the snippet returned a value
    ERROR = "error"  # the snippet raised or threw (or returned something unserializable)
    TIMEOUT = "timeout"  # wall clock or CPU time ran out; the child was killed
    MEMORY_LIMIT = "memory_limit"  # the snippet ran out of its memory budget
    VIOLATION = "violation"  # a forbidden operation (seccomp) killed the child
    OUTPUT_LIMIT = "output_limit"  # the encoded result was larger than allowed
    CRASHED = "crashed"  # the child or its jail died for another reason
    REJECTED = "rejected"  # never ran: bad request, no capacity, unknown runtime
    SESSION_LOST = "session_lost"  # the session's process is gone (or ended): its state with it

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ErrorDetail:
    """The snippet's exception: its type name, message and a traceback in snippet lines."""

    type: str
    message: str
    traceback: str


@dataclass(frozen=True)
class Envelope:
    """A decoded result envelope. ``value`` is codec-encoded and set only when status is ok."""

    status: Status
    message: str
    value: bytes | None = None
    stdout: str = ""
    truncated: bool = False
    error: ErrorDetail | None = None
    duration_ms: float = 0.0  # the snippet's own run time, measured inside the child
    retire: bool = False  # worker mode: the child changed state it cannot reset; reuse it not
    stderr: str = ""  # stderr's own text, when the task asked for the streams apart
    # what the task cost, as the host read it from the kernel (``with_usage``); None: unknown
    cpu_ms: float | None = None
    peak_memory_kb: int | None = None
    # what the task wrote in its directory, when it asked (runtimes.files), and what of it did
    # not come back, with why
    files: dict[str, bytes] | None = None
    files_skipped: dict[str, str] | None = None


def out_of_memory(memory_bytes: int, how: str = "") -> str:
    """The message of a ``memory_limit``: it names the limit, as a timeout's names its own
    (``how``: what noticed it, e.g. "the engine's limit")."""
    noticed = f", {how}" if how else ""
    return (f"the snippet ran out of memory: its limit is {memory_bytes // (1024 * 1024)} MB "
            f"(memory_mb{noticed})")


def encode(
    status: Status,
    message: str,
    *,
    value: bytes | None = None,
    stdout: str = "",
    truncated: bool = False,
    error: ErrorDetail | None = None,
    duration_ms: float = 0.0,
    retire: bool = False,
    stderr: str = "",
) -> bytes:
    """An envelope's bytes: a MessagePack map whose first keys are ``status`` and ``retire``
    (see ``peek``)."""
    envelope: bytes = msgpack.packb(
        {
            "status": status.value,
            "retire": retire,
            "v": VERSION,
            "message": message,
            "value": value,
            "stdout": stdout,
            "truncated": truncated,
            "error": None if error is None else
            {"type": error.type, "message": error.message, "traceback": error.traceback},
            "duration_ms": duration_ms,
            **({"stderr": stderr} if stderr else {}),
        },
        use_bin_type=True,
    )
    return envelope


def with_usage(body: bytes | bytearray, cpu_ms: float | None, peak_memory_kb: int | None) -> bytes:
    """The envelope ``body`` with what its task cost appended, as the host measured it. The
    two keys go last, so that they win over any of the same name a snippet wrote into its
    own envelope."""
    return with_fields(body, {"cpu_ms": cpu_ms, "peak_memory_kb": peak_memory_kb})


def with_files(body: bytes | bytearray, files: dict[str, bytes], skipped: dict[str, str]) -> bytes:
    """The envelope ``body`` with the files its task wrote (``runtimes.files.collect``)."""
    return with_fields(body, {"files": files, "files_skipped": skipped})


def with_fields(body: bytes | bytearray, extra: dict[str, Any]) -> bytes:
    """The envelope ``body`` (a MessagePack map) with ``extra``'s entries appended, without
    decoding it: the map's header is rewritten for the added entries. ``body`` that is not
    a map is returned as it is (its decode fails anyway)."""
    if not body:
        return bytes(body)
    head = body[0]
    if 0x80 <= head <= 0x8F:
        count, start = head & 0x0F, 1
    elif head == 0xDE and len(body) >= 3:
        count, start = int.from_bytes(body[1:3], "big"), 3
    else:
        return bytes(body)
    count += len(extra)
    header = (bytes((0x80 | count,)) if count <= 0x0F
              else b"\xde" + count.to_bytes(2, "big") if count <= 0xFFFF else b"")
    if not header or not 0 < len(extra) <= 0x0F:
        return bytes(body)
    tail: bytes = msgpack.packb(extra, use_bin_type=True)[1:]
    return header + bytes(body[start:]) + tail


def decode(body: bytes | bytearray, *, max_bytes: int) -> Envelope:
    """Parse and validate an envelope (untrusted: it was written inside the jail)."""
    if len(body) > max_bytes:
        raise WireError(f"result envelope of {len(body)} bytes exceeds the limit of {max_bytes}")
    try:
        msg = msgpack.unpackb(body, raw=False, strict_map_key=True, max_bin_len=len(body),
                              max_str_len=len(body), max_array_len=16, max_map_len=1024)
    except Exception as exc:  # msgpack raises several types for bad input; we expose one
        raise WireError(f"malformed result envelope: {exc}") from exc
    if not isinstance(msg, dict):
        raise WireError(f"result envelope is a {type(msg).__name__}, not a map")
    if msg.get("v") != VERSION:
        raise WireError(f"result envelope version {msg.get('v')!r} is not supported "
                        f"(this side speaks {VERSION})")
    try:
        status = Status(msg.get("status"))
    except ValueError as exc:
        raise WireError(f"unknown status {msg.get('status')!r}") from exc
    value = msg.get("value")
    if value is not None and not isinstance(value, bytes):
        raise WireError("field 'value' is not bytes")
    return Envelope(
        status=status,
        message=_field(msg, "message", str),
        value=value,
        stdout=_field(msg, "stdout", str),
        truncated=_field(msg, "truncated", bool),
        error=_error(msg.get("error")),
        duration_ms=float(_field(msg, "duration_ms", (int, float))),
        retire=_field(msg, "retire", bool) if "retire" in msg else False,
        stderr=_field(msg, "stderr", str) if "stderr" in msg else "",
        cpu_ms=_optional(msg, "cpu_ms", (int, float)),
        peak_memory_kb=_optional(msg, "peak_memory_kb", int),
        files=_map_of(msg, "files", bytes),
        files_skipped=_map_of(msg, "files_skipped", str),
    )


def _map_of(msg: dict[str, Any], name: str, kind: type) -> Any:
    value = msg.get(name)
    if value is None:
        return None
    if not isinstance(value, dict) or not all(type(k) is str and type(v) is kind
                                              for k, v in value.items()):
        raise WireError(f"field {name!r} is not a map of names to {kind.__name__}")
    return value


def _optional(msg: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = msg.get(name)
    if value is None:
        return None
    if type(value) not in (kind if isinstance(kind, tuple) else (kind,)) or float(value) < 0:
        raise WireError(f"field {name!r} is not a non-negative {getattr(kind, '__name__', kind)}")
    return float(value) if name == "cpu_ms" else value


def peek(body: bytes | bytearray) -> tuple[Status, bool] | None:
    """The status of an envelope, and whether its child asks to retire, without decoding the
    rest; None if it does not start the way ``encode`` writes it. Cheap: a runner reads it
    off every result it forwards."""
    try:
        unpacker = msgpack.Unpacker(raw=False, max_buffer_size=max(len(body), 1))
        unpacker.feed(body)
        if unpacker.read_map_header() < 2 or unpacker.unpack() != "status":
            return None
        status = Status(unpacker.unpack())
        if unpacker.unpack() != "retire":
            return None
        retire = unpacker.unpack()
        return (status, retire) if isinstance(retire, bool) else None
    except Exception:
        return None


def with_retire(body: bytes | bytearray) -> bytes:
    """The envelope ``body`` (as ``encode`` wrote it) with its ``retire`` flag set: a worker
    that learns only after encoding a result that it must not be reused (the pyodide
    runtime's restore) sets it without encoding the result again."""
    if peek(body) is None:
        raise WireError("not an envelope as encode writes it")
    unpacker = msgpack.Unpacker(raw=False, max_buffer_size=max(len(body), 1))
    unpacker.feed(body)
    unpacker.read_map_header()
    unpacker.skip()  # "status"
    unpacker.skip()  # its value
    unpacker.skip()  # "retire"
    at = unpacker.tell()  # the flag: one byte, 0xc2 (false) or 0xc3 (true)
    out = bytearray(body)
    out[at] = 0xC3
    return bytes(out)


def _field(msg: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = msg.get(name)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise WireError(f"field {name!r} is missing or not {getattr(kind, '__name__', kind)}")
    return value


def _error(raw: Any) -> ErrorDetail | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not all(isinstance(raw.get(k), str)
                                            for k in ("type", "message", "traceback")):
        raise WireError("field 'error' is not a {type, message, traceback} map")
    return ErrorDetail(raw["type"], raw["message"], raw["traceback"])
