"""The messages of the jail boundary: one frozen definition each, versioned, validated.

    host -> zygote   init (once), spawn
    zygote -> host   ready (once), spawned (with the child's channel end and a pidfd as
                     SCM_RIGHTS), exited (with the wait status)
    host -> child    task (one frame on the child's task channel)
    child -> host    worker_ready (once, first, from a child that execs a worker program of
                     its own: the pyodide runtime's Node.js), then for each task: output
                     frames while it runs (only for a task that asks to ``stream``) and
                     calls (only of the functions its task offers: ``Task.calls``), then
                     its result envelope (``runtimes.outcome``)
    host -> child    answer (one per call, before anything else is sent or read)

An output frame is not MessagePack: it is one byte 0, one byte naming the stream
(``runtimes.output.STDOUT`` or ``STDERR``) and the bytes printed, so that the host tells it
from an envelope (a MessagePack map, whose first byte is never 0 or 1) without decoding
either. A call frame is one byte 1 and a MessagePack array ``[id, name, args]``: ``args``
is the JSON text of the arguments' array, as the host's own peer (n8n) takes them.

A message is a MessagePack map ``{"v": VERSION, "t": <type>, ...fields}``. ``decode`` is the
only way in: it returns one of the dataclasses below or raises ``WireError`` (and nothing
else), whatever the bytes; a receiver names the types it accepts, so a zygote never takes a
``ready`` and a host never takes a ``spawn``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import msgpack

from runtimes.files import check_name
from runtimes.framing import MAX_CONTROL_BYTES, WireError

VERSION = 1
MAX_TASK_BYTES = 64 * 1024 * 1024
# A worker's mark that it must not be reused, set in the kernel where no later code of the
# process can take it back: the hard limit of this resource lowered to 0 (an unprivileged
# process can lower a hard limit, never raise it). The host reads it from outside after every
# result of a worker (see runtimes/python/leftovers.py, which sets it).
# (a number, not resource.RLIMIT_MSGQUEUE: pyodide's guest imports this module, and has no
# resource module)
TAINT_RLIMIT = 12  # RLIMIT_MSGQUEUE on Linux
MAX_SPAWN = 64  # children one spawn message may ask for
POLICIES = ("default", "restricted")
_MAX_NAMES = 4096  # module names in an allow-list
_MAX_NAME_CHARS = 128
_MAX_PATH_CHARS = 4096


@dataclass(frozen=True)
class Imports:
    """Python's import allow-lists, as the child applies them (``*`` for all). ``narrowed``:
    the task asked for these (``imports=``), so a denial names that, not the operator.
    ``transitive``: library code's own ``importlib.import_module`` calls are let through
    (n8n's ``N8N_RUNNERS_ALLOW_TRANSITIVE_IMPORTS``); when false they pass the lists too."""

    stdlib: tuple[str, ...] = ()
    external: tuple[str, ...] = ()
    narrowed: bool = False
    transitive: bool = True


# -- host -> zygote ----------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerSpec:
    """How each child of the zygote becomes a worker program of its own (the pyodide
    runtime: Node.js running Pyodide, ``runtimes.pyodide.launch``). Paths are as the jail
    sees them."""

    node: str  # the program to exec
    script: str  # what it runs (worker.mjs)
    heap_mb: int  # V8's old space
    address_space_mb: int  # RLIMIT_AS of the whole worker (V8 reserves much more than it uses)
    cpu_s: int  # RLIMIT_CPU over the worker's whole life
    settings: str  # JSON text handed to the script (the channel's fd is added to it)
    read_paths: tuple[str, ...] = ()  # Node's permission model: the only readable paths
    # ... and writable ones (Pyodide's loadPackage creates its package directory even when
    # it exists; the jail mounts it read-only, so the kernel refuses any real write)
    write_paths: tuple[str, ...] = ()
    debug: bool = False  # the worker's stderr stays the jail's log


@dataclass(frozen=True)
class Init:
    TYPE: ClassVar[str] = "init"
    seccomp_program: bytes  # the per-child filter, compiled by the host (``seccomp``)
    pid_slots: tuple[int, ...]  # where a child patches its own pid into the program
    preload: tuple[str, ...] = ()  # operator modules the zygote imports ahead of time
    worker: WorkerSpec | None = None  # children exec a worker program (see WorkerSpec)
    # each child makes a private writable directory of this many bytes (0: none; see
    # runtimes.files), which the jail started with what that needs (sandbox.jail.launch)
    files_bytes: int = 0


@dataclass(frozen=True)
class Spawn:
    TYPE: ClassVar[str] = "spawn"
    count: int


# -- zygote -> host ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Ready:
    TYPE: ClassVar[str] = "ready"
    pid: int  # the zygote's pid in the jail's namespace
    preload_failed: dict[str, str] = field(default_factory=dict)  # module -> why


@dataclass(frozen=True)
class Spawned:
    TYPE: ClassVar[str] = "spawned"
    pid: int  # the child's pid in the jail's namespace; its channel and pidfd come beside


@dataclass(frozen=True)
class Exited:
    TYPE: ClassVar[str] = "exited"
    pid: int
    status: int  # the raw wait status


# -- child -> host, on the task channel ---------------------------------------------------------


@dataclass(frozen=True)
class WorkerReady:
    """The first frame of a child that runs a worker program: it can take a task now."""

    TYPE: ClassVar[str] = "worker_ready"
    python: str  # the interpreter's version inside the worker
    preload_failed: dict[str, str] = field(default_factory=dict)  # module -> why


# -- host -> child -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """One task for one child. ``data`` is codec-encoded. A task sent without ``imports``
    may import nothing, never everything."""

    TYPE: ClassVar[str] = "task"
    code: str
    data: bytes
    as_bytes: int  # the child's whole address space: its baseline plus memory_bytes
    memory_bytes: int  # the snippet's own budget (the engine's limit, for JavaScript)
    cpu_s: int
    stdout_bytes: int
    result_bytes: int
    policy: str = "default"
    imports: Imports = Imports()
    timeout_ms: int = 0  # the wall-clock timeout the host enforces (0: not said)
    reusable: bool = False  # worker mode: more tasks of the same tenant may follow
    # a session's call: the interpreter's state is kept from call to call (implies reusable),
    # and an interrupt (SIGINT) at the timeout ends the call, not the process
    session: bool = False
    stdin: bytes = b""  # what the snippet reads from its standard input
    separate_stderr: bool = False  # the result carries stdout and stderr apart
    stream: bool = False  # output frames while it runs, before the result
    # written into the task's directory before it runs (runtimes.files), by relative name
    files: dict[str, bytes] = field(default_factory=dict)
    return_files: bool = False  # what it wrote there comes back with its result
    # the functions of its host the task may call while it runs (``Call``), by name
    calls: tuple[str, ...] = ()


@dataclass(frozen=True)
class Answer:
    """The host's answer to a ``Call``: ``ok`` and the value, or not and the error, each as
    JSON text ("" for no value at all: JavaScript's undefined)."""

    TYPE: ClassVar[str] = "answer"
    id: int
    ok: bool
    data: str


# -- child -> host, while a task runs ------------------------------------------------------------

_OUTPUT_MARK = 0


def encode_output(stream: int, data: bytes) -> bytes:
    """An output frame's body: what a streaming task printed on ``stream`` just now."""
    return bytes((_OUTPUT_MARK, stream)) + data


def is_output(body: bytes | bytearray) -> bool:
    return len(body) > 0 and body[0] == _OUTPUT_MARK


def decode_output(body: bytes | bytearray) -> tuple[int, bytes]:
    """(stream, bytes) of an output frame; WireError for anything else."""
    if len(body) < 3 or body[0] != _OUTPUT_MARK or body[1] not in (1, 2):
        raise WireError("malformed output frame")
    return body[1], bytes(body[2:])


_CALL_MARK = 1
MAX_CALL_NAME_CHARS = 128


@dataclass(frozen=True)
class Call:
    """A call of one of the functions the host offers the running task (``Task.calls``);
    the child waits for its ``Answer``."""

    id: int
    name: str
    args: str  # the JSON text of the arguments' array


def encode_call(call: Call) -> bytes:
    body: bytes = msgpack.packb([call.id, call.name, call.args], use_bin_type=True)
    return bytes((_CALL_MARK,)) + body


def is_call(body: bytes | bytearray) -> bool:
    return len(body) > 0 and body[0] == _CALL_MARK


def decode_call(body: bytes | bytearray) -> Call:
    """The call in a call frame; WireError for anything else."""
    if not is_call(body):
        raise WireError("not a call frame")
    try:
        raw = msgpack.unpackb(memoryview(body)[1:], raw=False, max_array_len=3,
                              max_map_len=0, max_bin_len=0, max_str_len=len(body))
    except Exception as exc:  # msgpack raises several types for bad input; we expose one
        raise WireError(f"malformed call: {exc}") from exc
    if (not isinstance(raw, list) or len(raw) != 3 or type(raw[0]) is not int
            or not 0 <= raw[0] < 1 << 32 or type(raw[1]) is not str
            or not 0 < len(raw[1]) <= MAX_CALL_NAME_CHARS or type(raw[2]) is not str):
        raise WireError("a call must be [id, name, args]")
    return Call(raw[0], raw[1], raw[2])


Message = Init | Spawn | Ready | Spawned | Exited | WorkerReady | Task | Answer
_TYPES: dict[str, Any] = {cls.TYPE: cls for cls in (Init, Spawn, Ready, Spawned, Exited,
                                                    WorkerReady, Task, Answer)}


# Each type's field names, worked out once: encode and decode run on every task's path.
_NAMES: dict[type, tuple[str, ...]] = {
    cls: tuple(f.name for f in fields(cls))
    for cls in (Init, Spawn, Ready, Spawned, Exited, WorkerReady, Task, Answer, Imports,
                WorkerSpec)}
_ALLOWED: dict[type, frozenset[str]] = {
    cls: frozenset(names) | {"v", "t"} for cls, names in _NAMES.items()}


def encode(msg: Message) -> bytes:
    encoded: bytes = msgpack.packb(_plain(msg, {"v": VERSION, "t": msg.TYPE}), use_bin_type=True)
    return encoded


_NESTED = (Imports, WorkerSpec)


def _plain(obj: Any, body: dict[str, Any]) -> dict[str, Any]:
    """``obj``'s fields into ``body``, the nested messages as maps. Tuples stay tuples:
    msgpack packs a tuple as the array it packs a list as, so nothing is copied per task."""
    for name in _NAMES[type(obj)]:
        value = getattr(obj, name)
        body[name] = _plain(value, {}) if type(value) in _NESTED else value
    return body


def decode(body: bytes | bytearray, accept: tuple[type, ...], *, max_bytes: int = MAX_CONTROL_BYTES) -> Any:
    """Parse one message of one of the ``accept``ed types; WireError for anything else."""
    if len(body) > max_bytes:
        raise WireError(f"message of {len(body)} bytes exceeds the limit of {max_bytes}")
    try:
        raw = msgpack.unpackb(body, raw=False, strict_map_key=True, max_bin_len=len(body),
                              max_str_len=len(body), max_array_len=_MAX_NAMES, max_map_len=_MAX_NAMES)
    except Exception as exc:  # msgpack raises several types for bad input; we expose one
        raise WireError(f"malformed message: {exc}") from exc
    if not isinstance(raw, dict):
        raise WireError(f"message is a {type(raw).__name__}, not a map")
    version = raw.get("v")
    if type(version) is not int or version != VERSION:
        raise WireError(f"protocol version {version!r} is not supported (this side speaks {VERSION})")
    kind = raw.get("t")
    cls = _TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None or cls not in accept:
        raise WireError(f"unexpected message type {kind!r}")
    unknown = raw.keys() - _ALLOWED[cls]
    if unknown:
        raise WireError(f"{cls.TYPE}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    try:
        return _BUILD[cls](raw)
    except KeyError as exc:
        raise WireError(f"{cls.TYPE}: field {exc.args[0]!r} is missing") from exc


# -- validation, one builder per type ----------------------------------------------------------


def _int(raw: dict[str, Any], name: str, low: int, high: int) -> int:
    value = raw[name]
    if type(value) is not int or not low <= value <= high:
        raise WireError(f"field {name!r} must be an integer in {low}..{high}")
    return value


def _bool(raw: dict[str, Any], name: str) -> bool:
    value = raw[name]
    if type(value) is not bool:
        raise WireError(f"field {name!r} must be a boolean")
    return value


def _str(raw: dict[str, Any], name: str, max_chars: int) -> str:
    value = raw[name]
    if type(value) is not str or len(value) > max_chars:
        raise WireError(f"field {name!r} must be a string of at most {max_chars} characters")
    return value


def _bytes(raw: dict[str, Any], name: str) -> bytes:
    value = raw[name]
    if type(value) is not bytes:
        raise WireError(f"field {name!r} must be bytes")
    return value


def _names(value: Any, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > _MAX_NAMES or not all(
            type(v) is str and 0 < len(v) <= _MAX_NAME_CHARS for v in value):
        raise WireError(f"field {name!r} must be a list of module names")
    return tuple(value)


def _init(raw: dict[str, Any]) -> Init:
    program = _bytes(raw, "seccomp_program")
    if not program or len(program) % 8:
        raise WireError("field 'seccomp_program' is not a whole number of BPF instructions")
    slots = raw["pid_slots"]
    if not isinstance(slots, list) or not all(type(s) is int and 0 <= s < len(program) // 8
                                              for s in slots):
        raise WireError("field 'pid_slots' must be instruction indexes of the program")
    worker = raw.get("worker")
    return Init(program, tuple(slots), _names(raw.get("preload", []), "preload"),
                None if worker is None else _worker_spec(worker),
                _int(raw, "files_bytes", 0, 1 << 40) if "files_bytes" in raw else 0)


def _paths(value: Any, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > 64 or not all(
            type(v) is str and v.startswith("/") and len(v) <= _MAX_PATH_CHARS for v in value):
        raise WireError(f"field {name!r} must be a list of absolute paths")
    return tuple(value)


def _worker_spec(raw: Any) -> WorkerSpec:
    if not isinstance(raw, dict):
        raise WireError("field 'worker' must be a map")
    unknown = raw.keys() - _NAMES[WorkerSpec]
    if unknown:
        raise WireError(f"worker: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    try:
        return WorkerSpec(
            node=_paths([raw["node"]], "worker.node")[0],
            script=_paths([raw["script"]], "worker.script")[0],
            heap_mb=_int(raw, "heap_mb", 16, 1 << 16),
            address_space_mb=_int(raw, "address_space_mb", 64, 1 << 24),
            cpu_s=_int(raw, "cpu_s", 1, 1 << 24),
            settings=_str(raw, "settings", MAX_CONTROL_BYTES),
            read_paths=_paths(raw.get("read_paths", []), "worker.read_paths"),
            write_paths=_paths(raw.get("write_paths", []), "worker.write_paths"),
            debug=_bool(raw, "debug") if "debug" in raw else False,
        )
    except KeyError as exc:
        raise WireError(f"worker: field {exc.args[0]!r} is missing") from exc


def _reasons(raw: dict[str, Any]) -> dict[str, str]:
    failed = raw.get("preload_failed", {})
    if not isinstance(failed, dict) or not all(type(k) is str and type(v) is str
                                               for k, v in failed.items()):
        raise WireError("field 'preload_failed' must map module names to reasons")
    return failed


def _ready(raw: dict[str, Any]) -> Ready:
    return Ready(_int(raw, "pid", 1, 1 << 22), _reasons(raw))


def _worker_ready(raw: dict[str, Any]) -> WorkerReady:
    return WorkerReady(_str(raw, "python", 64), _reasons(raw))


def _task(raw: dict[str, Any]) -> Task:
    imports = raw.get("imports", {"stdlib": [], "external": []})
    if not isinstance(imports, dict) or set(imports) - {"stdlib", "external", "narrowed",
                                                        "transitive"} or (
            type(imports.get("narrowed", False)) is not bool) or (
            type(imports.get("transitive", True)) is not bool):
        raise WireError("field 'imports' must be a {stdlib, external, narrowed, transitive} map")
    policy = _str(raw, "policy", 32) if "policy" in raw else "default"
    if policy not in POLICIES:
        raise WireError(f"unknown policy {policy!r}")
    return Task(
        code=_str(raw, "code", MAX_TASK_BYTES),
        data=_bytes(raw, "data"),
        as_bytes=_int(raw, "as_bytes", 1, 1 << 48),
        memory_bytes=_int(raw, "memory_bytes", 1, 1 << 48),
        cpu_s=_int(raw, "cpu_s", 1, 1 << 20),
        stdout_bytes=_int(raw, "stdout_bytes", 0, 1 << 32),
        result_bytes=_int(raw, "result_bytes", 0, 1 << 32),
        policy=policy,
        imports=Imports(_names(imports.get("stdlib", []), "imports.stdlib"),
                        _names(imports.get("external", []), "imports.external"),
                        imports.get("narrowed", False), imports.get("transitive", True)),
        timeout_ms=_int(raw, "timeout_ms", 0, 1 << 32) if "timeout_ms" in raw else 0,
        reusable=_bool(raw, "reusable") if "reusable" in raw else False,
        session=_bool(raw, "session") if "session" in raw else False,
        stdin=_bytes(raw, "stdin") if "stdin" in raw else b"",
        separate_stderr=_bool(raw, "separate_stderr") if "separate_stderr" in raw else False,
        stream=_bool(raw, "stream") if "stream" in raw else False,
        files=_files(raw.get("files", {})),
        return_files=_bool(raw, "return_files") if "return_files" in raw else False,
        calls=_names(raw.get("calls", []), "calls"),
    )


def _files(value: Any) -> dict[str, bytes]:
    if not isinstance(value, dict) or not all(type(c) is bytes for c in value.values()):
        raise WireError("field 'files' must map file names to bytes")
    for name in value:
        why = check_name(name)
        if why is not None:
            raise WireError(why)
    return value


_BUILD: dict[type, Any] = {
    Init: _init,
    Spawn: lambda raw: Spawn(_int(raw, "count", 0, MAX_SPAWN)),
    Ready: _ready,
    Spawned: lambda raw: Spawned(_int(raw, "pid", 1, 1 << 22)),
    Exited: lambda raw: Exited(_int(raw, "pid", 1, 1 << 22), _int(raw, "status", 0, 0xFFFF)),
    WorkerReady: _worker_ready,
    Task: _task,
    Answer: lambda raw: Answer(_int(raw, "id", 0, (1 << 32) - 1), _bool(raw, "ok"),
                               _str(raw, "data", MAX_TASK_BYTES)),
}
