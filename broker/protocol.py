"""Every message between clients, the broker and runners: one definition each, versioned.

Transport: ZeroMQ. Clients and runners use DEALER sockets, the broker one ROUTER socket; a
message is a single frame (the ROUTER adds the sender's identity frame) whose body is a
MessagePack map ``{"v": VERSION, "t": <type>, ...fields}``. Results travel as the opaque
envelope bytes written by the child: the broker never decodes them. What the broker needs
of an outcome travels beside the envelope as a field (``Done.status``), so the broker knows
nothing of the jail's formats.

Clients and runners reach the broker on different sockets (and, over tcp, with different
key sets), so a client can never speak as a runner:

    client -> broker   submit, cancel, ping              (the client endpoint)
    broker -> client   result, rejected, pong, output
    runner -> broker   ready, heartbeat, done, bye,      (the runner endpoint)
                       session_ended, chunk, missing
    broker -> runner   task, cancel_task, heartbeat, holding

Every frame is untrusted and is validated on receipt by ``decode``, which returns one of
the dataclasses below or raises ``ProtocolError`` (and nothing else), carrying the message
id when one could be read so the sender can be answered. A frame is bounded before it is
built: element counts per container and in all, string and binary sizes (so a frame that
is cheap to send cannot be expensive to decode).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import msgpack

VERSION = 1
MAX_FRAME_BYTES = 80 * 1024 * 1024  # also set as ZMQ_MAXMSGSIZE on every socket
# room for a result message's own fields around an envelope, so that a ``done`` within the
# cap is still forwarded within the cap
FRAME_OVERHEAD_BYTES = 4096
MAX_ENVELOPE_BYTES = MAX_FRAME_BYTES - FRAME_OVERHEAD_BYTES
MAX_CODE_BYTES = 1024 * 1024
MAX_DATA_BYTES = 16 * 1024 * 1024
MAX_STDIN_BYTES = 4 * 1024 * 1024  # a task's standard input
# One chunk of a streaming task's output (a runner coalesces what arrived in one read into
# one chunk; the broker refuses anything larger); what the broker forwards of one task is
# capped again there (``broker.core``).
MAX_CHUNK_BYTES = 1024 * 1024
STREAMS = ("stdout", "stderr")
MAX_TASK_FILES = 64  # files a task may pass in (what their names may be: runtimes/files.py)
MAX_FILES_BYTES = 16 * 1024 * 1024  # their contents, together
MAX_STREAM_BYTES = 8 * 1024 * 1024  # what the broker forwards of one task's output at most
MAX_STREAM_CHUNKS = 65536  # ... and in how many chunks
MAX_ID_CHARS = 128
MAX_REUSE_KEY_CHARS = 128
CLIENT_SECRET_BYTES = 16  # a Submit's client_secret: random, made once per client object
# what a task names its workers by: "<principal's tag>/<lane>/<reuse key>" (broker.core)
MAX_REUSE_CHARS = 256
# Sessions: what a submit does to its session (``session_op``), and how long an id may be.
# A runner knows a session as "<principal's tag>/<id>" (broker.core), at most MAX_REUSE_CHARS.
SESSION_OPS = ("open", "call", "close")
MAX_SESSION_CHARS = 128
DEFAULT_LANE = "default"

# What a frame may contain, checked while it is decoded, before anything big is built: a
# map or list longer than these, a string far longer than the longest field (the code: one
# a little over its cap is still decoded, to be refused with the field's own message), or
# more container elements in all than any valid message holds is refused.
MAX_MAP_ENTRIES = 64
MAX_LIST_ITEMS = 256
MAX_ELEMENTS = 1024
MAX_STR_BYTES = 2 * MAX_CODE_BYTES

# How a task ended: the one vocabulary of outcomes the broker deals in (the runner reports
# one of these with each result; the broker makes crashed and rejected itself).
OK = "ok"
ERROR = "error"
TIMEOUT = "timeout"
MEMORY_LIMIT = "memory_limit"
VIOLATION = "violation"
OUTPUT_LIMIT = "output_limit"
CRASHED = "crashed"
REJECTED = "rejected"
SESSION_LOST = "session_lost"
STATUSES = (OK, ERROR, TIMEOUT, MEMORY_LIMIT, VIOLATION, OUTPUT_LIMIT, CRASHED, REJECTED,
            SESSION_LOST)


class ProtocolError(Exception):
    """A frame that is not a valid message: malformed, oversized, unknown or of a foreign
    version. ``msg_id`` is the message's id when it could be read, else None."""

    def __init__(self, message: str, msg_id: str | None = None) -> None:
        super().__init__(message)
        self.msg_id = msg_id


# -- limits a task carries (validated here; the runner applies them) -------------------------


@dataclass(frozen=True)
class TaskLimits:
    timeout_s: float | None = None
    memory_mb: int | None = None
    stdout_bytes: int | None = None
    result_bytes: int | None = None


# -- client -> broker ---------------------------------------------------------------------


@dataclass(frozen=True)
class Submit:
    TYPE: ClassVar[str] = "submit"
    id: str
    runtime: str
    code: str
    data: bytes  # codec-encoded
    limits: TaskLimits = field(default_factory=TaskLimits)
    priority: int = 0  # higher runs first; FIFO within a priority
    lane: str = DEFAULT_LANE
    group: str | None = None  # only runners that carry this label
    version: str = ""  # runtime version prefix, e.g. "3.11"
    wait_for_runner: bool = True  # False: reject at once when no runner could ever run it
    queue_timeout_s: float | None = None  # how long it may wait for a slot (broker default)
    idempotent: bool = False  # may be retried on another runner if its runner vanishes
    max_attempts: int = 1
    policy: str = "default"  # python: "default" or "restricted" (RestrictedPython)
    imports: tuple[str, ...] | None = None  # python: narrow the runner's import allow-lists
    # how long the caller waits for the answer, from when it sent the task: past it nobody
    # waits, and the broker drops the task (queued) or cancels it (running)
    deadline_s: float | None = None
    # "process" (a fresh process) or "worker" (a warm worker of its lane and reuse key only)
    isolation: str = "process"
    reuse_key: str | None = None
    # Sessions: ``session`` names one of the caller's (its principal's) sessions; what the
    # submit does to it is ``session_op``: "open" (open it, or attach to it when open; the
    # task's memory_mb caps the session's whole process), "call" (run the code in it),
    # "close". ``idle_timeout_s`` and ``max_lifetime_s`` apply to "open" (None: the runner's)
    session: str | None = None
    session_op: str = "call"
    idle_timeout_s: float | None = None
    max_lifetime_s: float | None = None
    stdin: bytes | None = None  # the snippet's standard input (python)
    separate_stderr: bool = False  # the result's stdout and stderr apart (merged otherwise)
    stream: bool = False  # ``output`` messages while it runs, before its result
    files: dict[str, bytes] | None = None  # written into the task's directory before it runs
    return_files: bool = False  # what it wrote there comes back in its result
    # a secret the client made once (random, CLIENT_SECRET_BYTES): over ipc, the connections
    # of one process (as the kernel names it) that send the same secret are one principal, so
    # the threads of one client object share its warm workers (README, "Principals")
    client_secret: bytes | None = None


@dataclass(frozen=True)
class Cancel:
    TYPE: ClassVar[str] = "cancel"
    id: str


@dataclass(frozen=True)
class Ping:
    TYPE: ClassVar[str] = "ping"


# -- broker -> client ---------------------------------------------------------------------


@dataclass(frozen=True)
class ResultMsg:
    """A task's one answer after it was dispatched. ``envelope`` is the runner's result,
    passed through untouched; None when the broker made the outcome itself (cancelled,
    runner lost, shut down): then ``status`` and ``message`` are the whole result."""

    TYPE: ClassVar[str] = "result"
    id: str
    status: str
    message: str = ""
    envelope: bytes | None = None
    attempts: int = 1
    queue_ms: float = 0.0  # how long it waited in the broker before it was dispatched


@dataclass(frozen=True)
class Rejected:
    """A task that never ran. ``reason`` says why for a program (``broker.core``'s reason
    names: "queue_full", "client_cap", "no_runner", ...; "" for a frame that did not parse),
    so that an adapter can answer, say, HTTP 429 without reading ``message``'s prose."""

    TYPE: ClassVar[str] = "rejected"
    id: str | None
    message: str
    reason: str = ""


@dataclass(frozen=True)
class Pong:
    TYPE: ClassVar[str] = "pong"


@dataclass(frozen=True)
class Output:
    """What a streaming task printed on one stream, while it runs, in order; zero or more
    before its ``result``. ``data`` is UTF-8 cut anywhere (a character may span two)."""

    TYPE: ClassVar[str] = "output"
    id: str
    stream: str  # one of STREAMS
    data: bytes


# -- runner -> broker ---------------------------------------------------------------------


@dataclass(frozen=True)
class Ready:
    TYPE: ClassVar[str] = "ready"
    runtimes: dict[str, str]  # runtime -> version
    slots: int
    groups: tuple[str, ...] = ()
    name: str = ""


@dataclass(frozen=True)
class RunnerHeartbeat:
    TYPE: ClassVar[str] = "heartbeat"
    idle_children: int = 0
    draining: bool = False  # the runner is leaving: it finishes what it runs, takes nothing new
    # idle pre-forked children per runtime (their sum is idle_children); {} from a runner
    # that does not say
    idle: dict[str, int] = field(default_factory=dict)
    # the ``clock`` of the broker heartbeat this one answers at once (the broker's clock): the
    # broker measures the round trip from it
    echo: float | None = None


@dataclass(frozen=True)
class Done:
    TYPE: ClassVar[str] = "done"
    task_id: str
    envelope: bytes  # the child's result envelope, forwarded untouched
    status: str  # how the task ended, one of STATUSES (what the broker counts)


@dataclass(frozen=True)
class Bye:
    TYPE: ClassVar[str] = "bye"


@dataclass(frozen=True)
class SessionEnded:
    """A session of this runner ended on its own (idle, lifetime, its process gone):
    ``session`` as the broker named it to the runner (``TaskMsg.session``)."""

    TYPE: ClassVar[str] = "session_ended"
    session: str
    reason: str


@dataclass(frozen=True)
class Chunk:
    """A streaming task's output, from its runner, while it runs (forwarded as ``output``)."""

    TYPE: ClassVar[str] = "chunk"
    task_id: str
    stream: str  # one of STREAMS
    data: bytes


@dataclass(frozen=True)
class Missing:
    """The answer to ``holding``: the tasks of that list this runner never received (they
    were lost with a connection it dropped), so the broker may send them again."""

    TYPE: ClassVar[str] = "missing"
    task_ids: tuple[str, ...] = ()


# -- broker -> runner ---------------------------------------------------------------------


@dataclass(frozen=True)
class TaskMsg:
    TYPE: ClassVar[str] = "task"
    task_id: str
    runtime: str
    code: str
    data: bytes
    limits: TaskLimits = field(default_factory=TaskLimits)
    policy: str = "default"
    imports: tuple[str, ...] | None = None
    # worker mode: the workers it may share ("<principal's tag>/<lane>/<reuse key>", made by
    # the broker); None for a fresh process
    reuse: str | None = None
    # a session's open, call or close (``Submit``'s), the session named "<principal's
    # tag>/<id>" by the broker
    session: str | None = None
    session_op: str = "call"
    idle_timeout_s: float | None = None
    max_lifetime_s: float | None = None
    stdin: bytes | None = None
    separate_stderr: bool = False
    stream: bool = False
    files: dict[str, bytes] | None = None
    return_files: bool = False


@dataclass(frozen=True)
class CancelTask:
    TYPE: ClassVar[str] = "cancel_task"
    task_id: str


@dataclass(frozen=True)
class BrokerHeartbeat:
    TYPE: ClassVar[str] = "broker_heartbeat"
    # the answer to a runner's first draining heartbeat: every task sent to it came before
    draining: bool = False
    # the broker's clock when it sent this (seconds): a runner answers at once with it
    clock: float | None = None


# the most task ids one ``holding`` or ``missing`` carries (a longer list goes in several)
MAX_IDS_PER_MESSAGE = 200


@dataclass(frozen=True)
class Holding:
    """To a runner that registered again (the same identity, a new connection): the tasks
    the broker holds for it. It answers with the ones it never received (``missing``)."""

    TYPE: ClassVar[str] = "holding"
    task_ids: tuple[str, ...] = ()
    more: bool = False  # more of the list follows; the last part says False


Message = (
    Submit | Cancel | Ping | ResultMsg | Rejected | Pong | Output | Ready | RunnerHeartbeat
    | Done | Bye | SessionEnded | Chunk | Missing | TaskMsg | CancelTask | BrokerHeartbeat
    | Holding
)
_TYPES: dict[str, Any] = {
    cls.TYPE: cls
    for cls in (Submit, Cancel, Ping, ResultMsg, Rejected, Pong, Output, Ready, RunnerHeartbeat,
                Done, Bye, SessionEnded, Chunk, Missing, TaskMsg, CancelTask, BrokerHeartbeat,
                Holding)
}
BROKER_TO_RUNNER = (TaskMsg, CancelTask, BrokerHeartbeat, Holding)


def _names(cls: Any) -> frozenset[str]:
    """A message type's field names, worked out once (every frame in and out asks)."""
    names = _NAMES.get(cls)
    if names is None:
        names = _NAMES[cls] = frozenset(f.name for f in fields(cls))
    return names


_NAMES: dict[Any, frozenset[str]] = {}
_OPTIONAL: dict[Any, frozenset[str]] = {}


def _optional(cls: Any) -> frozenset[str]:
    """A message type's fields whose default is None: left out of a frame when None, so a
    field added that way is additive (a peer of the version before, which refuses fields it
    does not know, reads the frame as before while the field is unused)."""
    names = _OPTIONAL.get(cls)
    if names is None:
        names = _OPTIONAL[cls] = frozenset(f.name for f in fields(cls) if f.default is None)
    return names


def _encoding(cls: Any) -> tuple[tuple[str, bool], ...]:
    """Each field of a message type and whether it is ``_optional``, worked out once."""
    pairs = _ENCODING.get(cls)
    if pairs is None:
        optional = _optional(cls)
        pairs = _ENCODING[cls] = tuple((name, name in optional) for name in _names(cls))
    return pairs


_ENCODING: dict[Any, tuple[tuple[str, bool], ...]] = {}
_LIMIT_NAMES = ("timeout_s", "memory_mb", "stdout_bytes", "result_bytes")


def encode(msg: Message) -> bytes:
    """The frame of a message. ProtocolError (only) when it holds text that is not valid
    Unicode (a lone surrogate), which no frame can carry."""
    body: dict[str, Any] = {"v": VERSION, "t": msg.TYPE}
    # a tuple goes as it is: msgpack packs a tuple as it packs a list (the same bytes)
    for name, optional in _encoding(type(msg)):
        value = getattr(msg, name)
        if value is None and optional:
            continue
        if isinstance(value, TaskLimits):
            value = {k: v for k in _LIMIT_NAMES if (v := getattr(value, k)) is not None}
        body[name] = value
    try:
        frame: bytes = msgpack.packb(body, use_bin_type=True)
        return frame
    except UnicodeEncodeError as exc:
        raise ProtocolError(f"{msg.TYPE}: text that is not valid Unicode ({exc.reason})") from exc


class _Budget:
    """Counts the elements of every container msgpack builds, and stops it past the total."""

    __slots__ = ("left",)

    def __init__(self) -> None:
        self.left = MAX_ELEMENTS

    def __call__(self, container: Any) -> Any:
        self.left -= len(container)
        if self.left < 0:
            raise ValueError(f"more than {MAX_ELEMENTS} elements in all")
        return container


def _unpack(frame: bytes | memoryview) -> Any:
    budget = _Budget()
    try:
        return msgpack.unpackb(
            frame, raw=False, strict_map_key=True, max_str_len=MAX_STR_BYTES,
            max_bin_len=MAX_FRAME_BYTES, max_array_len=MAX_LIST_ITEMS,
            max_map_len=MAX_MAP_ENTRIES, max_ext_len=0, list_hook=budget, object_hook=budget,
        )
    except msgpack.StackError as exc:
        raise ProtocolError("not a MessagePack message: nested deeper than the decoder allows"
                            ) from exc
    except msgpack.ExtraData as exc:
        raise ProtocolError("not a MessagePack message: extra bytes after the message") from exc
    except ValueError as exc:  # a bound, or a format error ("incomplete input", bad UTF-8)
        text = str(exc)
        if "exceeds max_" in text or "elements in all" in text:
            raise ProtocolError(f"message refused before decoding: {text}") from exc
        raise ProtocolError(f"not a MessagePack message: {text or type(exc).__name__}") from exc
    except Exception as exc:  # msgpack raises many types for bad input; they become one
        raise ProtocolError(f"not a MessagePack message: {exc or type(exc).__name__}") from exc


def decode(frame: bytes | memoryview) -> Message:
    """Parse and validate one frame; raise ProtocolError (only) when it is not a message."""
    if len(frame) > MAX_FRAME_BYTES:
        raise ProtocolError(f"message of {len(frame)} bytes exceeds {MAX_FRAME_BYTES} bytes")
    body = _unpack(frame)
    if not isinstance(body, dict):
        raise ProtocolError("a message must be a MessagePack map")
    msg_id = body.get("id") if isinstance(body.get("id"), str) else None
    if msg_id is not None and not 0 < len(msg_id) <= MAX_ID_CHARS:
        msg_id = None
    version = body.get("v")
    if type(version) is not int or version != VERSION:  # not 1.0, not True
        raise ProtocolError(
            f"protocol version {version!r} is not supported (this side speaks {VERSION})", msg_id
        )
    kind = body.get("t")
    cls: Any = _TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ProtocolError(f"unknown message type {body.get('t')!r}", msg_id)
    try:
        return _build(cls, body)
    except ProtocolError as exc:
        exc.msg_id = msg_id
        raise
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"malformed {cls.TYPE} message: {exc}", msg_id) from exc


def validate(msg: Message) -> None:
    """Check a message built in this process as ``decode`` checks one received, without
    encoding it: raise ProtocolError when the other side would refuse it. (The size caps of
    code and data keep a valid message far below MAX_FRAME_BYTES.)"""
    try:
        _CHECKS.get(type(msg), lambda m: None)(msg)
    except ProtocolError as exc:
        exc.msg_id = getattr(msg, "id", None) if isinstance(getattr(msg, "id", None), str) else None
        raise


def _build(cls: Any, body: dict[str, Any]) -> Message:
    known = _names(cls)
    unknown = body.keys() - known - {"v", "t"}
    if unknown:
        raise ProtocolError(f"{cls.TYPE}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    values = {name: body[name] for name in known if name in body}
    msg: Message = cls(**values)
    _CHECKS.get(cls, lambda m: None)(msg)
    return msg


def _is(value: Any, kind: type | tuple[type, ...]) -> bool:
    # a bool is an int, but never where an int is asked for (bool cannot be subclassed)
    return isinstance(value, kind) and (kind is bool or type(value) is not bool)


def _text(value: Any, name: str, max_chars: int, *, empty: bool = False) -> None:
    """A string field: a str of bounded length that a frame can carry (valid Unicode)."""
    # the message is made only when it is needed (here and below): these checks run for
    # every field of every message, and formatting what a passing field never shows cost
    # more than the checks themselves
    if not (_is(value, str) and (empty or len(value) > 0) and len(value) <= max_chars):
        raise ProtocolError(f"'{name}' must be a string of {0 if empty else 1} to {max_chars} "
                            f"characters")
    if value.isascii():  # the usual case, and always valid
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ProtocolError(f"'{name}' is not valid Unicode: {exc.reason} at position "
                            f"{exc.start}") from exc


def _need(cond: bool, what: str) -> None:
    if not cond:
        raise ProtocolError(what)


def _check_id(value: Any, name: str = "id") -> None:
    _text(value, name, MAX_ID_CHARS)


def _check_status(value: Any) -> None:
    if not (_is(value, str) and value in STATUSES):
        raise ProtocolError(f"'status' must be one of {', '.join(STATUSES)}")


def _check_limits(raw: Any) -> TaskLimits:
    if isinstance(raw, TaskLimits):
        return raw
    _need(isinstance(raw, dict), "'limits' must be a map")
    unknown = raw.keys() - _names(TaskLimits)
    _need(not unknown, f"unknown limit(s): {', '.join(sorted(map(str, unknown)))}")
    timeout = raw.get("timeout_s")
    _need(timeout is None or (_is(timeout, (int, float)) and math.isfinite(timeout)),
          "'timeout_s' must be a number")
    for name in ("memory_mb", "stdout_bytes", "result_bytes"):
        _need(raw.get(name) is None or _is(raw.get(name), int), f"'{name}' must be an integer")
    return TaskLimits(**raw)


def _seconds(value: Any, name: str, most: int = 86400) -> None:
    if not (value is None or (_is(value, (int, float)) and math.isfinite(value)
                              and 0 <= value <= most)):
        raise ProtocolError(f"'{name}' must be 0..{most} seconds or nil")


def _check_submit(m: Submit) -> None:
    _check_id(m.id)
    _text(m.runtime, "runtime", 64)
    _need(_is(m.code, str), "'code' must be a string")
    try:
        size = len(m.code.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise ProtocolError(f"'code' is not valid Unicode: {exc.reason} at position "
                            f"{exc.start}") from exc
    if size > MAX_CODE_BYTES:
        raise ProtocolError(f"'code' is over {MAX_CODE_BYTES} bytes")
    _need(_is(m.data, bytes), "'data' must be bytes (codec-encoded)")
    if len(m.data) > MAX_DATA_BYTES:
        raise ProtocolError(f"'data' is over {MAX_DATA_BYTES} bytes")
    object.__setattr__(m, "limits", _check_limits(m.limits))
    _need(_is(m.priority, int) and -1000 <= m.priority <= 1000, "'priority' must be -1000..1000")
    _text(m.lane, "lane", 64)
    if m.group is not None:
        _text(m.group, "group", 64)
    _text(m.version, "version", 32, empty=True)
    _need(_is(m.wait_for_runner, bool), "'wait_for_runner' must be a boolean")
    _seconds(m.queue_timeout_s, "queue_timeout_s")
    _seconds(m.deadline_s, "deadline_s", 7 * 86400)  # a timeout, a queue wait and a grace
    _need(_is(m.idempotent, bool), "'idempotent' must be a boolean")
    _need(_is(m.max_attempts, int) and 1 <= m.max_attempts <= 10, "'max_attempts' must be 1..10")
    if not (m.client_secret is None or (_is(m.client_secret, bytes)
                                        and len(m.client_secret) == CLIENT_SECRET_BYTES)):
        raise ProtocolError(f"'client_secret' must be {CLIENT_SECRET_BYTES} bytes or nil")
    _check_language(m)
    _check_session(m)


def _check_session(m: Submit | TaskMsg) -> None:
    if m.session is None:
        _need(m.session_op == "call" and m.idle_timeout_s is None and m.max_lifetime_s is None,
              "'session_op', 'idle_timeout_s' and 'max_lifetime_s' apply to a session")
        return
    _text(m.session, "session", MAX_SESSION_CHARS if isinstance(m, Submit) else MAX_REUSE_CHARS)
    _need(m.session_op in SESSION_OPS, f"'session_op' must be one of {', '.join(SESSION_OPS)}")
    _need(m.policy == "default", "a session's calls run the default policy (no restricted)")
    _seconds(m.idle_timeout_s, "idle_timeout_s", 7 * 86400)
    _seconds(m.max_lifetime_s, "max_lifetime_s", 30 * 86400)
    if isinstance(m, Submit):
        _need(m.isolation == "process" and m.reuse_key is None,
              "a session's call runs in the session: no isolation or reuse_key")


ISOLATIONS = ("process", "worker")


def _check_io(m: Submit | TaskMsg) -> None:
    _need(m.stdin is None or _is(m.stdin, bytes), "'stdin' must be bytes or nil")
    if m.stdin is not None and len(m.stdin) > MAX_STDIN_BYTES:
        raise ProtocolError(f"'stdin' is over {MAX_STDIN_BYTES} bytes")
    _need(_is(m.separate_stderr, bool), "'separate_stderr' must be a boolean")
    _need(_is(m.stream, bool), "'stream' must be a boolean")
    _need(_is(m.return_files, bool), "'return_files' must be a boolean")
    if m.files is not None:
        _need(isinstance(m.files, dict) and len(m.files) <= MAX_TASK_FILES
              and all(_is(k, str) and 0 < len(k) <= 1024 and _is(v, bytes)
                      for k, v in m.files.items()),
              f"'files' must map at most {MAX_TASK_FILES} names to bytes")
        _need(sum(len(v) for v in m.files.values()) <= MAX_FILES_BYTES,
              f"'files' hold over {MAX_FILES_BYTES} bytes")


def _check_chunk(m: Chunk | Output) -> None:
    if isinstance(m, Chunk):
        _check_id(m.task_id, "task_id")
    else:
        _check_id(m.id)
    _need(_is(m.stream, str) and m.stream in STREAMS, f"'stream' must be one of {', '.join(STREAMS)}")
    _need(_is(m.data, bytes) and 0 < len(m.data) <= MAX_CHUNK_BYTES,
          f"'data' must be 1 to {MAX_CHUNK_BYTES} bytes")


def _check_language(m: Submit | TaskMsg) -> None:
    _check_io(m)
    if isinstance(m, Submit):
        if m.isolation not in ISOLATIONS:
            raise ProtocolError(f"'isolation' must be one of {', '.join(ISOLATIONS)}")
        if m.reuse_key is not None:
            _text(m.reuse_key, "reuse_key", MAX_REUSE_KEY_CHARS)
            _need(m.isolation == "worker", "'reuse_key' applies to isolation \"worker\"")
    elif m.reuse is not None:
        _text(m.reuse, "reuse", MAX_REUSE_CHARS)
    _text(m.policy, "policy", 32)
    imports = m.imports
    _need(imports is None or (isinstance(imports, (list, tuple)) and len(imports) <= 256
                              and all(_is(i, str) and 0 < len(i) <= 128 for i in imports)),
          "'imports' must be nil or a list of module names")
    if imports is not None:
        for name in imports:
            _text(name, "imports", 128)
        object.__setattr__(m, "imports", tuple(imports))


def _check_ready(m: Ready) -> None:
    _need(isinstance(m.runtimes, dict) and 0 < len(m.runtimes) <= 16
          and all(_is(k, str) and _is(v, str) for k, v in m.runtimes.items()),
          "'runtimes' must map runtime names to versions")
    _need(_is(m.slots, int) and 0 < m.slots <= 4096, "'slots' must be 1..4096")
    groups = m.groups
    _need(isinstance(groups, (list, tuple)) and len(groups) <= 64
          and all(_is(g, str) and 0 < len(g) <= 64 for g in groups), "'groups' must be strings")
    object.__setattr__(m, "groups", tuple(groups))
    _text(m.name, "name", 128, empty=True)


def _check_done(m: Done) -> None:
    _check_id(m.task_id, "task_id")
    _need(isinstance(m.envelope, (bytes, bytearray)), "'envelope' must be bytes")
    _check_status(m.status)


def _check_task(m: TaskMsg) -> None:
    _check_id(m.task_id, "task_id")
    _need(_is(m.runtime, str) and _is(m.code, str) and _is(m.data, bytes),
          "'runtime', 'code' and 'data' must be str, str and bytes")
    object.__setattr__(m, "limits", _check_limits(m.limits))
    _check_language(m)
    _check_session(m)


def _check_session_ended(m: SessionEnded) -> None:
    _text(m.session, "session", MAX_REUSE_CHARS)
    _need(_is(m.reason, str), "'reason' must be a string")


def _check_result(m: ResultMsg) -> None:
    _check_id(m.id)
    _check_status(m.status)
    _need(_is(m.message, str), "'message' must be a string")
    _need(m.envelope is None or isinstance(m.envelope, (bytes, bytearray)),
          "'envelope' must be bytes or nil")
    _need(_is(m.attempts, int), "'attempts' must be an integer")
    _need(_is(m.queue_ms, (int, float)), "'queue_ms' must be a number")


def _check_heartbeat(m: RunnerHeartbeat) -> None:
    _need(_is(m.idle_children, int), "'idle_children' must be an int")
    _need(_is(m.draining, bool), "'draining' must be a boolean")
    _need(isinstance(m.idle, dict) and len(m.idle) <= 16
          and all(_is(k, str) and 0 < len(k) <= 64 and _is(v, int) and 0 <= v <= 1 << 20
                  for k, v in m.idle.items()),
          "'idle' must map at most 16 runtime names to counts")
    _clock(m.echo, "echo")


def _clock(value: Any, name: str) -> None:
    if not (value is None or (_is(value, (int, float)) and math.isfinite(value))):
        raise ProtocolError(f"'{name}' must be a number or nil")


def _check_ids(m: Holding | Missing) -> None:
    if isinstance(m, Holding):
        _need(_is(m.more, bool), "'more' must be a boolean")
    ids = m.task_ids
    _need(isinstance(ids, (list, tuple)) and len(ids) <= MAX_IDS_PER_MESSAGE,
          f"'task_ids' must be a list of at most {MAX_IDS_PER_MESSAGE} task ids")
    for task_id in ids:  # a broker's task key: the client's identity and id
        _text(task_id, "task_ids", 2 * MAX_ID_CHARS)
    object.__setattr__(m, "task_ids", tuple(ids))


def _check_broker_heartbeat(m: BrokerHeartbeat) -> None:
    _need(_is(m.draining, bool), "'draining' must be a boolean")
    _clock(m.clock, "clock")


def _check_rejected(m: Rejected) -> None:
    _need(m.id is None or _is(m.id, str), "'id' must be a string or nil")
    _need(_is(m.message, str), "'message' must be a string")
    _text(m.reason, "reason", 32, empty=True)


_CHECKS: dict[type, Any] = {
    Submit: _check_submit,
    Cancel: lambda m: _check_id(m.id),
    Ready: _check_ready,
    RunnerHeartbeat: _check_heartbeat,
    BrokerHeartbeat: _check_broker_heartbeat,
    Holding: _check_ids,
    Missing: _check_ids,
    Done: _check_done,
    TaskMsg: _check_task,
    CancelTask: lambda m: _check_id(m.task_id, "task_id"),
    SessionEnded: _check_session_ended,
    ResultMsg: _check_result,
    Rejected: _check_rejected,
    Chunk: _check_chunk,
    Output: _check_chunk,
}
