"""What crosses the jail wall: framing, the task and result envelopes, statuses.

Two channels cross it, both AF_UNIX socketpairs created inside the jail:

* the control channel (SOCK_SEQPACKET, one per jail) between the runner and the zygote.
  Runner -> zygote: ``init`` once, then ``spawn``. Zygote -> runner: ``spawned`` (with the
  child's channel end and a pidfd as SCM_RIGHTS) and ``exited`` (with the wait status).
* the task channel (SOCK_STREAM, one per child): the runner writes one task frame, the child
  writes one result frame. A frame is a 4-byte big-endian length and a MessagePack body.

Everything read from the jail is untrusted (a snippet owns its channel fd and may write
anything to it), so every parse here raises exactly one error type, ``WireError``.
"""

from __future__ import annotations

import array
import enum
import os
import socket
import struct
from typing import Any

import msgpack

VERSION = 1
_HEADER = struct.Struct(">I")
MAX_CONTROL_BYTES = 64 * 1024
MAX_TASK_BYTES = 64 * 1024 * 1024


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

    def __str__(self) -> str:
        return self.value


class WireError(Exception):
    """A frame or message that does not parse: truncated, oversized, malformed."""


class OversizedFrame(WireError):
    """A frame whose announced length is over the receiver's limit."""


# -- framing over the task channel (stream) ------------------------------------------------


def send_frame(sock: socket.socket, body: bytes) -> None:
    header = _HEADER.pack(len(body))
    if len(body) <= 65536:
        sock.sendall(header + body)  # one syscall on the hot path
    else:
        sock.sendall(header)  # large bodies: two writes beat copying megabytes
        sock.sendall(body)


def recv_exact(sock: socket.socket, n: int) -> bytes:
    """Read exactly n bytes; WireError on EOF before that."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise WireError(f"channel closed after {got} of {n} bytes")
        got += k
    return bytes(buf)


def recv_frame(sock: socket.socket, max_bytes: int) -> bytes:
    (size,) = _HEADER.unpack(recv_exact(sock, _HEADER.size))
    if size > max_bytes:
        raise OversizedFrame(f"frame of {size} bytes exceeds the limit of {max_bytes}")
    return recv_exact(sock, size)


# -- messages -------------------------------------------------------------------------------


def pack(msg: dict[str, Any]) -> bytes:
    return msgpack.packb(msg, use_bin_type=True)


def unpack(body: bytes, *, max_bytes: int) -> dict[str, Any]:
    """Parse an untrusted message body into a dict carrying our protocol version."""
    if len(body) > max_bytes:
        raise WireError(f"message of {len(body)} bytes exceeds the limit of {max_bytes}")
    try:
        msg = msgpack.unpackb(body, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several types for bad input; we expose one
        raise WireError(f"malformed message: {exc}") from exc
    if not isinstance(msg, dict):
        raise WireError(f"message is a {type(msg).__name__}, not a map")
    if msg.get("v") != VERSION:
        raise WireError(f"protocol version {msg.get('v')!r} is not supported (this side speaks {VERSION})")
    return msg


def field(msg: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    """One typed field of a parsed message, or WireError naming what is wrong."""
    value = msg.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise WireError(f"field {name!r} is missing or not {getattr(kind, '__name__', kind)}")
    return value


# -- control channel (seqpacket, with fds) ---------------------------------------------------


def send_control(sock: socket.socket, msg: dict[str, Any], fds: tuple[int, ...] = ()) -> None:
    body = pack({"v": VERSION, **msg})
    if fds:
        sock.sendmsg([body], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    else:
        sock.send(body)


def recv_control(sock: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    """One control message and the fds that came with it; (None, []) at EOF."""
    fds = array.array("i")
    body, ancdata, flags, _ = sock.recvmsg(MAX_CONTROL_BYTES, socket.CMSG_SPACE(4 * fds.itemsize))
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    if not body and not ancdata:
        return None, []
    if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
        for fd in fds:
            _close(fd)
        raise WireError("control message truncated")
    try:
        return unpack(body, max_bytes=MAX_CONTROL_BYTES), list(fds)
    except WireError:
        for fd in fds:
            _close(fd)
        raise


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


# -- task and result envelopes ---------------------------------------------------------------


def encode_task(
    *,
    code: str,
    data: bytes,
    as_bytes: int,
    memory_bytes: int,
    cpu_s: int,
    stdout_bytes: int,
    result_bytes: int,
    policy: str = "default",
    imports: dict[str, list[str]] | None = None,
) -> bytes:
    """The task frame body the runner sends to one child. ``data`` is codec-encoded;
    ``policy`` and ``imports`` are Python's language layer (mode and allow-lists); a task sent
    without ``imports`` may import nothing, never everything."""
    return pack(
        {
            "v": VERSION,
            "code": code,
            "data": data,
            "as_bytes": as_bytes,
            "memory_bytes": memory_bytes,
            "cpu_s": cpu_s,
            "stdout_bytes": stdout_bytes,
            "result_bytes": result_bytes,
            "policy": policy,
            "imports": imports or {"stdlib": [], "external": []},
        }
    )


def encode_result(
    status: Status,
    message: str,
    *,
    value: bytes | None = None,
    stdout: str = "",
    truncated: bool = False,
    error: dict[str, str] | None = None,
    duration_ms: float = 0.0,
) -> bytes:
    """The result envelope. ``value`` is codec-encoded and only present when status is ok."""
    return pack(
        {
            "v": VERSION,
            "status": status.value,
            "message": message,
            "value": value,
            "stdout": stdout,
            "truncated": truncated,
            "error": error,
            "duration_ms": duration_ms,
        }
    )


def decode_result(body: bytes, *, max_bytes: int) -> dict[str, Any]:
    """Parse and validate a result envelope (untrusted: it was written inside the jail)."""
    msg = unpack(body, max_bytes=max_bytes)
    try:
        msg["status"] = Status(msg.get("status"))
    except ValueError as exc:
        raise WireError(f"unknown status {msg.get('status')!r}") from exc
    field(msg, "message", str)
    field(msg, "stdout", str)
    field(msg, "truncated", bool)
    field(msg, "duration_ms", (int, float))
    value = msg.get("value")
    if value is not None and not isinstance(value, bytes):
        raise WireError("field 'value' is not bytes")
    error = msg.get("error")
    if error is not None:
        if not isinstance(error, dict) or not all(
            isinstance(error.get(k), str) for k in ("type", "message", "traceback")
        ):
            raise WireError("field 'error' is not a {type, message, traceback} map")
    return msg


def peek_status(body: bytes) -> str | None:
    """The status of a result envelope without decoding its value (for metrics); None if
    the envelope does not start the way ``encode_result`` writes it."""
    try:
        unpacker = msgpack.Unpacker(raw=False, max_buffer_size=max(len(body), 1))
        unpacker.feed(body)
        for _ in range(unpacker.read_map_header()):
            key = unpacker.unpack()
            if key == "status":
                status = unpacker.unpack()
                return status if isinstance(status, str) else None
            unpacker.skip()
    except Exception:
        return None
    return None
