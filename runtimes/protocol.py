"""The messages of the jail boundary: one frozen definition each, versioned, validated.

    host -> zygote   init (once), spawn
    zygote -> host   ready (once), spawned (with the child's channel end and a pidfd as
                     SCM_RIGHTS), exited (with the wait status)
    host -> child    task (one frame on the child's task channel)
    child -> host    the result envelope (``runtimes.outcome``)

A message is a MessagePack map ``{"v": VERSION, "t": <type>, ...fields}``. ``decode`` is the
only way in: it returns one of the dataclasses below or raises ``WireError`` (and nothing
else), whatever the bytes; a receiver names the types it accepts, so a zygote never takes a
``ready`` and a host never takes a ``spawn``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import msgpack

from runtimes.framing import MAX_CONTROL_BYTES, WireError

VERSION = 1
MAX_TASK_BYTES = 64 * 1024 * 1024
MAX_SPAWN = 64  # children one spawn message may ask for
POLICIES = ("default", "restricted")
_MAX_NAMES = 4096  # module names in an allow-list
_MAX_NAME_CHARS = 128


@dataclass(frozen=True)
class Imports:
    """Python's import allow-lists, as the child applies them (``*`` for all). ``narrowed``:
    the task asked for these (``imports=``), so a denial names that, not the operator."""

    stdlib: tuple[str, ...] = ()
    external: tuple[str, ...] = ()
    narrowed: bool = False


# -- host -> zygote ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Init:
    TYPE: ClassVar[str] = "init"
    seccomp_program: bytes  # the per-child filter, compiled by the host (``seccomp``)
    pid_slots: tuple[int, ...]  # where a child patches its own pid into the program
    preload: tuple[str, ...] = ()  # operator modules the zygote imports ahead of time


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


Message = Init | Spawn | Ready | Spawned | Exited | Task
_TYPES: dict[str, Any] = {cls.TYPE: cls for cls in (Init, Spawn, Ready, Spawned, Exited, Task)}


def encode(msg: Message) -> bytes:
    body: dict[str, Any] = {"v": VERSION, "t": msg.TYPE}
    for f in fields(msg):
        value = getattr(msg, f.name)
        if isinstance(value, Imports):
            value = {"stdlib": list(value.stdlib), "external": list(value.external),
                     "narrowed": value.narrowed}
        elif isinstance(value, tuple):
            value = list(value)
        body[f.name] = value
    return msgpack.packb(body, use_bin_type=True)


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
    unknown = set(raw) - {f.name for f in fields(cls)} - {"v", "t"}
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
    return Init(program, tuple(slots), _names(raw.get("preload", []), "preload"))


def _ready(raw: dict[str, Any]) -> Ready:
    failed = raw.get("preload_failed", {})
    if not isinstance(failed, dict) or not all(type(k) is str and type(v) is str
                                               for k, v in failed.items()):
        raise WireError("field 'preload_failed' must map module names to reasons")
    return Ready(_int(raw, "pid", 1, 1 << 22), failed)


def _task(raw: dict[str, Any]) -> Task:
    imports = raw.get("imports", {"stdlib": [], "external": []})
    if not isinstance(imports, dict) or set(imports) - {"stdlib", "external", "narrowed"} or (
            type(imports.get("narrowed", False)) is not bool):
        raise WireError("field 'imports' must be a {stdlib, external, narrowed} map")
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
                        imports.get("narrowed", False)),
        timeout_ms=_int(raw, "timeout_ms", 0, 1 << 32) if "timeout_ms" in raw else 0,
    )


_BUILD: dict[type, Any] = {
    Init: _init,
    Spawn: lambda raw: Spawn(_int(raw, "count", 0, MAX_SPAWN)),
    Ready: _ready,
    Spawned: lambda raw: Spawned(_int(raw, "pid", 1, 1 << 22)),
    Exited: lambda raw: Exited(_int(raw, "pid", 1, 1 << 22), _int(raw, "status", 0, 0xFFFF)),
    Task: _task,
}
