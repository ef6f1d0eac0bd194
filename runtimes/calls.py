"""Calls of the functions a task's host offers it, made from inside the child.

A task names the functions it may call (``Task.calls``: the n8n runner offers n8n's helper
functions, ``helpers.httpRequest`` and the like, which n8n itself runs). A call is one frame
on the task channel (``runtimes.protocol.encode_call``); the child then waits for the host's
``Answer`` on the same channel, so calls are one at a time, in the order made. The wait is
on the task's clock: the host ends the task at its timeout whether or not an answer came.

The host checks every call again (its name among the task's, one at a time, its size): what
is refused here is refused there, so a snippet that writes frames itself gains nothing.
"""

from __future__ import annotations

import socket

from runtimes import framing, protocol


class Refused(Exception):
    """The call was not made: the task does not offer it, or the channel failed."""


_NONE: frozenset[str] = frozenset()
_channel: socket.socket | None = None
_offered: frozenset[str] = _NONE
_next_id = 0


def offer(channel: socket.socket | None, names: tuple[str, ...]) -> None:
    """The running task's channel and the names it may call (none: no calls). A task that
    may call nothing leaves this module as it found it: a Python worker retires when a
    module's namespace changed (runtimes/python/leftovers.py), and every task sets this."""
    global _channel, _offered
    if names:
        _channel, _offered = channel, frozenset(names)
    elif _channel is not None or _offered is not _NONE:
        _channel, _offered = None, _NONE


def call(name: str, args: str) -> tuple[bool, str]:
    """Call ``name`` with the JSON text of its arguments' array; (ok, JSON text of the value
    or of the error; "" for no value)."""
    global _next_id
    if _channel is None or name not in _offered:
        offered = ", ".join(sorted(_offered)) or "none"
        raise Refused(f"{name} is not offered to this task (offered: {offered})")
    _next_id += 1
    try:
        framing.send_frame(_channel, protocol.encode_call(protocol.Call(_next_id, name, args)))
        body = framing.recv_frame(_channel, protocol.MAX_TASK_BYTES)
        answer: protocol.Answer = protocol.decode(body, (protocol.Answer,),
                                                  max_bytes=protocol.MAX_TASK_BYTES)
    except (OSError, framing.WireError) as exc:
        raise Refused(f"{name} got no answer: {exc}") from exc
    if answer.id != _next_id:
        raise Refused(f"{name} got the answer of another call ({answer.id})")
    return answer.ok, answer.data
