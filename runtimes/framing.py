"""Framing across the jail wall, and the one error type of the jail boundary.

Two channels cross the wall, both AF_UNIX socketpairs made inside the jail:

* the control channel (SOCK_SEQPACKET, one per jail) between the pools and the zygote:
  one message per packet, file descriptors beside it as SCM_RIGHTS (``send_control`` /
  ``recv_control``).
* the task channel (SOCK_STREAM, one per child): frames of a 4-byte big-endian length and a
  body (``send_frame`` / ``recv_frame`` in the child, blocking; ``FrameReader`` on the host,
  which reads whatever has arrived without blocking).

What the bodies mean is ``runtimes.protocol`` (control messages, the task) and
``runtimes.outcome`` (the result envelope). Everything read from the jail is untrusted (a
snippet owns its channel fd and may write anything to it), so every parse on this boundary
raises exactly one error type, ``WireError``.
"""

from __future__ import annotations

import array
import os
import socket
import struct

HEADER = struct.Struct(">I")
MAX_CONTROL_BYTES = 64 * 1024
_MAX_FDS = 64  # a spawn's output files, one per child


class WireError(Exception):
    """A frame or message from across the jail wall that does not parse."""


class OversizedFrame(WireError):
    """A frame whose announced length is over the receiver's limit."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"frame of {size} bytes exceeds the limit of {limit}")
        self.size = size
        self.limit = limit


class ChannelClosed(WireError):
    """The other end closed the channel (before or inside a frame)."""


# -- the task channel, blocking (the child's side) ---------------------------------------------


def send_frame(sock: socket.socket, body: bytes) -> None:
    """One frame: its length, then its body."""
    header = HEADER.pack(len(body))
    if len(body) <= 65536:
        sock.sendall(header + body)  # one syscall on the hot path
    else:
        sock.sendall(header)  # large bodies: two writes beat copying MBs
        sock.sendall(body)


def send_frame_within(sock: socket.socket, body: bytes, timeout_s: float) -> None:
    """``send_frame`` on a non-blocking socket: one send when it fits (the usual case: no
    mode switch, no extra system call), waiting for room otherwise, at most ``timeout_s``
    in all; OSError (TimeoutError) when the peer does not take it in time."""
    import select
    import time

    data = memoryview(HEADER.pack(len(body)) + body) if len(body) <= 65536 else None
    chunks = [data] if data is not None else [memoryview(HEADER.pack(len(body))), memoryview(body)]
    end = None
    for chunk in chunks:
        while chunk:
            try:
                chunk = chunk[sock.send(chunk):]
                continue
            except (BlockingIOError, InterruptedError):
                pass
            if end is None:
                end = time.monotonic() + timeout_s
            left = end - time.monotonic()
            if left <= 0 or not select.select([], [sock], [], left)[1]:
                raise TimeoutError(f"the peer took no more of a {len(body)}-byte frame")


def recv_exact(sock: socket.socket, n: int) -> bytes:
    """Read exactly n bytes; ChannelClosed on EOF before that."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise ChannelClosed(f"channel closed after {got} of {n} bytes")
        got += k
    return bytes(buf)


def recv_frame(sock: socket.socket, max_bytes: int) -> bytes:
    (size,) = HEADER.unpack(recv_exact(sock, HEADER.size))
    if size > max_bytes:
        raise OversizedFrame(size, max_bytes)
    return recv_exact(sock, size)


# -- the task channel, non-blocking (the host's side) ------------------------------------------


class FrameReader:
    """Reads one frame from a non-blocking stream socket as its bytes arrive.

    ``read(sock)`` takes what is there: it returns the whole body once complete (read into
    place with one copy, as a bytearray), None while incomplete, and raises ``ChannelClosed``
    at EOF or ``OversizedFrame`` as soon as the length is over ``max_bytes``.
    """

    __slots__ = ("max_bytes", "_header", "_got", "_body", "_view")

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._header = bytearray(HEADER.size)
        self._got = 0
        self._body: bytearray | None = None
        self._view: memoryview | None = None

    def read(self, sock: socket.socket) -> bytearray | None:
        try:
            if self._view is None:
                n = sock.recv_into(memoryview(self._header)[self._got:])
            else:
                n = sock.recv_into(self._view[self._got:])
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as exc:
            raise ChannelClosed(f"channel failed: {exc}") from exc
        if n == 0:
            raise ChannelClosed("channel closed")
        self._got += n
        if self._view is None:
            if self._got < HEADER.size:
                return None
            (size,) = HEADER.unpack(self._header)
            if size > self.max_bytes:
                raise OversizedFrame(size, self.max_bytes)
            self._body = bytearray(size)
            self._view = memoryview(self._body)
            self._got = 0
            if size:
                return self.read(sock)  # the body often arrived with its header
        assert self._body is not None
        if self._got < len(self._body):
            return None
        body, self._body, self._view, self._got = self._body, None, None, 0
        return body


# -- the control channel (seqpacket, with fds) -----------------------------------------------


def send_control(sock: socket.socket, body: bytes, fds: tuple[int, ...] = ()) -> None:
    if fds:
        sock.sendmsg([body], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    else:
        sock.send(body)


def recv_control(sock: socket.socket) -> tuple[bytes | None, list[int]]:
    """One control packet and the fds that came with it; (None, []) at EOF. A truncated
    packet closes its fds and raises WireError."""
    fds = array.array("i")
    body, ancdata, flags, _ = sock.recvmsg(MAX_CONTROL_BYTES, socket.CMSG_SPACE(_MAX_FDS * fds.itemsize))
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    if not body and not ancdata:
        return None, []
    if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
        close_fds(fds)
        raise WireError("control message truncated")
    return body, list(fds)


def close_fds(fds: list[int] | array.array[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
