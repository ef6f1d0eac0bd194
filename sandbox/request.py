"""A task's request, in the two shapes it takes on its way.

``Request`` is what a caller asks for. ``request()`` builds and checks it ONCE, where a
request enters this package (the CLI, the clients); it then travels as it is: the client
turns it into the broker's ``Submit`` without checking it again. Each aspect has one judge:
the registry says which runtime a name means and what it allows, the codec whether the data
can travel, ``Limits`` whether a limit is in range, the broker's protocol whether the message
is well formed. ``Options`` holds the caller's choices, every limit with its unit in its name
(None: the runner's default).

``TaskRequest`` is what the pools run. ``build`` makes it where a task enters them: the
runner (a trust boundary: what arrives from a broker is checked again, against the runner's
own defaults and import policy) and the local API (its one entry). Everything after it
(the pool, the jail, the child) takes it as it is and checks nothing again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, TypedDict

from broker import protocol as p
from broker.protocol import (ISOLATIONS, MAX_CODE_BYTES, MAX_DATA_BYTES, MAX_FILES_BYTES,
                             MAX_STDIN_BYTES, MAX_TASK_FILES)
from runtimes import codec
from runtimes.files import check_name
from runtimes.protocol import MAX_CALL_NAME_CHARS, POLICIES, Imports
from sandbox import registry
from sandbox.config import Limits
from sandbox.errors import ConfigError, RequestError
from sandbox.imports import ImportPolicy

MAX_REUSE_KEY_CHARS = 256  # a broker's "<principal's tag>/<lane>/<key>" included


class RunOptions(TypedDict, total=False):
    """The keyword options of ``Client.run``/``submit`` and ``AsyncClient``'s (the names and
    types of ``Options``: a test holds the two to one list)."""

    timeout_s: float | None
    memory_mb: int | None
    stdout_bytes: int | None
    result_bytes: int | None
    policy: str | None
    imports: Iterable[str] | None
    isolation: str | None
    reuse_key: str | None
    priority: int
    lane: str
    group: str | None
    version: str
    wait_for_runner: bool
    queue_timeout_s: float | None
    idempotent: bool
    max_attempts: int
    stdin: str | bytes | None
    separate_stderr: bool
    stream: bool
    files: Mapping[str, str | bytes] | None
    return_files: bool


@dataclass(frozen=True)
class Options:
    """How a caller wants a task run. Limits: None takes the runner's default."""

    timeout_s: float | None = None  # wall clock, killed from outside past it
    memory_mb: int | None = None  # the snippet's address-space budget
    stdout_bytes: int | None = None  # captured output; the rest is cut
    result_bytes: int | None = None  # the encoded result; larger ends as output_limit
    policy: str | None = None  # python: "default" or "restricted"
    imports: tuple[str, ...] | None = None  # python, pyodide: narrow the import allow-lists
    isolation: str | None = None  # "process" (default) or "worker"
    reuse_key: str | None = None  # worker mode: the workers this task may share
    priority: int = 0  # higher runs first; FIFO within a priority
    lane: str = p.DEFAULT_LANE  # the broker's fairness and caps unit
    group: str | None = None  # only runners carrying this label
    version: str = ""  # a runtime version prefix, e.g. "3.11"
    wait_for_runner: bool = True  # False: rejected at once when no runner could ever run it
    queue_timeout_s: float | None = None  # how long it may wait for a slot (the client's)
    idempotent: bool = False  # may run again on another runner if its runner vanishes
    max_attempts: int = 1
    stdin: str | bytes | None = None  # python: the snippet's standard input (text as UTF-8)
    separate_stderr: bool = False  # the result's stdout holds stdout only, stderr apart
    stream: bool = False  # output arrives in chunks while the task runs (see the clients)
    # python, in a pool with files_mb: written into the task's own directory before it runs,
    # by relative name (text as UTF-8); return_files: what it wrote there comes back
    files: Mapping[str, str | bytes] | None = None
    return_files: bool = False

    @classmethod
    def of(cls, **given: Any) -> Options:
        """Options from keyword arguments; TypeError for a name that is not an option (a
        mistake in the caller's code, not in its request)."""
        unknown = set(given) - OPTION_NAMES
        if unknown:
            raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}")
        imports = given.get("imports")
        if imports is not None and not isinstance(imports, str):
            # any iterable of names becomes a tuple; a bare string is left for the check
            given["imports"] = tuple(imports)
        return cls(**given)

    @property
    def limits(self) -> dict[str, Any]:
        return {"timeout_s": self.timeout_s, "memory_mb": self.memory_mb,
                "stdout_bytes": self.stdout_bytes, "result_bytes": self.result_bytes}


OPTION_NAMES = frozenset(f.name for f in fields(Options))


@dataclass(frozen=True)
class Request:
    """A checked request, as a caller made it: what a client sends (``to_submit``)."""

    runtime: str  # canonical (``registry``)
    code: str
    data: bytes  # codec-encoded
    options: Options
    limits: Limits  # the options' limits over the caller's defaults: its deadline's measure
    # the broker's message, checked by the protocol's rules; each send gives it its id and
    # deadline (``to_submit``), nothing is built or checked again
    message: p.Submit


def request(runtime: object, code: object, data: Any, options: Options, *,
            defaults: Limits) -> Request:
    """The one check of a request where it enters: RequestError saying why it cannot run
    (the caller answers ``rejected`` with that message, or the CLI exits with it)."""
    name = registry.canonical(runtime)
    if name is None:
        raise RequestError(f"unknown runtime {runtime!r} (known: {registry.known()})")
    if not isinstance(code, str):
        raise RequestError(f"code must be a str, not {type(code).__name__}")
    try:
        limits = defaults.replace(**options.limits)
    except ConfigError as exc:
        raise RequestError(f"bad limits: {exc}") from exc
    try:
        encoded = codec.encode(data, max_bytes=MAX_DATA_BYTES, path="data")
    except codec.EncodeError as exc:
        raise RequestError(f"data cannot be sent to the sandbox: {exc}") from exc
    stdin = options.stdin
    if isinstance(stdin, str):
        try:
            stdin = stdin.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise RequestError(f"stdin is not valid Unicode text ({exc.reason})") from exc
    elif stdin is not None and not isinstance(stdin, bytes):
        raise RequestError(f"stdin must be str or bytes, not {type(stdin).__name__}")
    _io(name, stdin, options.separate_stderr, options.stream)
    files = _files(name, options.files, options.return_files, options.isolation)
    if registry.RUNTIMES[name].worker_children:
        # its tasks always run in workers (pyodide): so named, the broker keys them by lane
        # too, and a worker never serves two lanes
        options = replace(options, isolation="worker")
    o = options
    message = p.Submit(
        id="unsent", runtime=name, code=code, data=encoded,
        limits=p.TaskLimits(o.timeout_s, o.memory_mb, o.stdout_bytes, o.result_bytes),
        priority=o.priority, lane=o.lane, group=o.group, version=o.version,
        wait_for_runner=o.wait_for_runner,
        queue_timeout_s=o.queue_timeout_s,
        idempotent=o.idempotent, max_attempts=o.max_attempts, policy=o.policy or "default",
        imports=o.imports, deadline_s=None, isolation=o.isolation or "process",
        reuse_key=o.reuse_key, stdin=stdin or None, separate_stderr=o.separate_stderr,
        stream=o.stream, files=files or None, return_files=o.return_files,
    )
    try:
        p.validate(message)  # the message's shape: the protocol's rules
    except p.ProtocolError as exc:
        raise RequestError(str(exc)) from exc
    return Request(name, code, encoded, options, limits, message)


def to_submit(req: Request, task_id: str, deadline_s: float, *,
              queue_timeout_s: float | None = None,
              client_secret: bytes | None = None) -> p.Submit:
    """The broker's message for a checked request (``deadline_s``: how long its caller waits;
    ``queue_timeout_s``: the queue wait when the request names none; ``client_secret``: the
    sending client's, see ``broker.protocol.Submit``)."""
    wait = req.message.queue_timeout_s
    return replace(req.message, id=task_id, deadline_s=deadline_s,
                   queue_timeout_s=queue_timeout_s if wait is None else wait,
                   client_secret=client_secret)


@dataclass(frozen=True)
class TaskRequest:
    runtime: str  # canonical (``registry``)
    code: str  # valid UTF-8 text, at most MAX_CODE_BYTES
    data: bytes  # codec-encoded
    limits: Limits
    policy: str = "default"
    imports: Imports = Imports()  # what the child lets the snippet import (Python)
    # worker mode: the workers this task may share, None for a fresh process. A worker serves
    # one tenant and one memory budget (its address-space limit is set once, by its first task).
    reuse: tuple[str, int] | None = None
    session: str | None = None  # a call of this open session (its state kept across calls)
    stdin: bytes = b""  # the snippet's standard input
    separate_stderr: bool = False  # stdout and stderr apart in the result
    stream: bool = False  # output in chunks while it runs (the front's ``output`` callback)
    files: dict[str, bytes] = field(default_factory=dict)  # into its directory, by name
    return_files: bool = False  # what it wrote there comes back with its result
    # the functions of the front that submits it the task may call while it runs (the
    # ``call`` of ``sandbox.host.pools.Pools``; the n8n runner: n8n's helpers), by name
    calls: tuple[str, ...] = ()


MAX_CALL_NAMES = 64


def build(
    runtime: object,
    code: object,
    data: object,
    *,
    defaults: Limits,
    import_policy: ImportPolicy,
    served: Iterable[str] = tuple(registry.RUNTIMES),
    timeout_s: float | None = None,
    memory_mb: int | None = None,
    stdout_bytes: int | None = None,
    result_bytes: int | None = None,
    policy: str | None = None,
    imports: Iterable[str] | None = None,
    isolation: str | None = None,
    reuse_key: str | None = None,
    stdin: bytes | None = None,
    separate_stderr: bool = False,
    stream: bool = False,
    files: Mapping[str, str | bytes] | None = None,
    return_files: bool = False,
    files_bytes: int = 0,
    calls: Iterable[str] = (),
) -> TaskRequest:
    """``isolation``: "process" (the default: a fresh process per task) or "worker" (a warm
    worker serving tasks of ``reuse_key`` only: the caller's lane or tenant)."""
    served = tuple(served)
    io = _io(runtime, stdin, separate_stderr, stream)
    if calls:
        io["calls"] = _calls(calls)
    if (files or return_files) and registry.canonical(runtime) in served:
        checked = _files(registry.canonical(runtime), files, return_files, isolation)
        if not files_bytes:
            raise RequestError("files need a directory per task, which this runner's pools "
                               "do not give (the operator's files_mb is 0)")
        size = sum(len(c) for c in checked.values())
        if size > files_bytes:
            raise RequestError(f"files hold {size} bytes, over the task's directory of "
                               f"{files_bytes} bytes (files_mb)")
        io.update(files=checked, return_files=bool(return_files))
    name = registry.canonical(runtime)
    if name is None or name not in served:
        raise RequestError(f"unknown runtime {runtime!r} (available: "
                           f"{', '.join(sorted(a for a, r in registry.ALIASES.items() if r in served))})")
    if not isinstance(code, str):
        raise RequestError(f"code must be a str, not {type(code).__name__}")
    try:
        size = len(code.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise RequestError(f"code is not valid Unicode text ({exc.reason} at position {exc.start})") from exc
    if size > MAX_CODE_BYTES:
        raise RequestError(f"code is {size} bytes, over the {MAX_CODE_BYTES}-byte limit")
    if not isinstance(data, bytes):
        raise RequestError(f"data must be codec-encoded bytes, not {type(data).__name__}")
    if len(data) > MAX_DATA_BYTES:
        raise RequestError(f"data is {len(data)} bytes encoded, over the {MAX_DATA_BYTES}-byte limit")
    limits = defaults
    if not all(v is None for v in (timeout_s, memory_mb, stdout_bytes, result_bytes)):
        try:
            limits = defaults.replace(timeout_s=timeout_s, memory_mb=memory_mb,
                                      stdout_bytes=stdout_bytes, result_bytes=result_bytes)
        except ConfigError as exc:
            raise RequestError(f"bad limits: {exc}") from exc
    facts = registry.RUNTIMES[name]
    reuse = _reuse(isolation, reuse_key, limits, facts)
    if not facts.language_layer:
        if policy not in (None, "default") or imports is not None:
            raise RequestError(f"policy and imports apply to python, not {name}")
        return TaskRequest(name, code, data, limits, reuse=reuse, **io)
    if policy not in (None, *POLICIES):
        raise RequestError(f"unknown policy {policy!r} (available: {', '.join(POLICIES)})")
    if policy not in (None, *facts.policies):
        raise RequestError(f"policy {policy!r} is not available for {name} "
                           f"(available: {', '.join(facts.policies)})")
    if isinstance(imports, str):
        raise RequestError("imports must be a list of module names, not a string")
    try:
        allow = import_policy.narrow(imports)
    except ConfigError as exc:
        raise RequestError(str(exc)) from exc
    return TaskRequest(name, code, data, limits, policy or "default", allow.imports, reuse, **io)


def _calls(calls: Iterable[str]) -> tuple[str, ...]:
    names = tuple(calls)
    if len(names) > MAX_CALL_NAMES or not all(
            isinstance(n, str) and 0 < len(n) <= MAX_CALL_NAME_CHARS for n in names):
        raise RequestError(f"calls must be at most {MAX_CALL_NAMES} names of at most "
                           f"{MAX_CALL_NAME_CHARS} characters")
    return names


def _files(runtime: str | None, files: object, return_files: object,
           isolation: object) -> dict[str, bytes]:
    """The files a task passes in, checked (names by ``runtimes.files.check_name``, the
    same rule the child applies), contents as bytes."""
    if not isinstance(return_files, bool):
        raise RequestError("return_files must be a boolean")
    if files is None and not return_files:
        return {}
    facts = registry.RUNTIMES.get(runtime or "")
    if facts is not None and not facts.files:
        raise RequestError(f"files apply to python, not {facts.name}")
    if isolation == "worker" or (facts is not None and facts.worker_children):
        raise RequestError('files apply to tasks of isolation "process" (a fresh directory '
                           "per task)")
    if files is None:
        return {}
    if not isinstance(files, Mapping):
        raise RequestError(f"files must map names to str or bytes, not {type(files).__name__}")
    if len(files) > MAX_TASK_FILES:
        raise RequestError(f"{len(files)} files, over the limit of {MAX_TASK_FILES}")
    out: dict[str, bytes] = {}
    for name, content in files.items():
        why = check_name(name)
        if why is not None:
            raise RequestError(why)
        if isinstance(content, str):
            try:
                content = content.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise RequestError(f"file {name!r} is not valid Unicode text") from exc
        if not isinstance(content, bytes):
            raise RequestError(f"file {name!r} must be str or bytes, not {type(content).__name__}")
        out[name] = content
    size = sum(len(c) for c in out.values())
    if size > MAX_FILES_BYTES:
        raise RequestError(f"files hold {size} bytes, over the {MAX_FILES_BYTES}-byte limit")
    return out


def _io(runtime: object, stdin: bytes | None, separate_stderr: bool,
        stream: bool) -> dict[str, Any]:
    """The task's input and output options, checked against what its runtime can do (the
    runtime's name is checked before they are used)."""
    facts = registry.RUNTIMES.get(registry.canonical(runtime) or "")
    if facts is None:
        return {}
    if stdin is not None and not isinstance(stdin, bytes):
        raise RequestError(f"stdin must be bytes, not {type(stdin).__name__}")
    if stdin and len(stdin) > MAX_STDIN_BYTES:
        raise RequestError(f"stdin is {len(stdin)} bytes, over the {MAX_STDIN_BYTES}-byte limit")
    if stdin and not facts.stdin:
        raise RequestError(f"stdin applies to python, not {facts.name}")
    if (separate_stderr or stream) and not facts.streams:
        raise RequestError(f"separate_stderr and stream are not available for {facts.name}")
    return {"stdin": stdin or b"", "separate_stderr": bool(separate_stderr),
            "stream": bool(stream)}


def _reuse(isolation: str | None, reuse_key: str | None, limits: Limits,
           facts: registry.Runtime) -> tuple[str, int] | None:
    if isolation not in (None, *ISOLATIONS):
        raise RequestError(f"unknown isolation {isolation!r} (available: {', '.join(ISOLATIONS)})")
    if reuse_key is not None and (not isinstance(reuse_key, str)
                                  or not 0 < len(reuse_key) <= MAX_REUSE_KEY_CHARS):
        raise RequestError(f"reuse_key must be a string of 1 to {MAX_REUSE_KEY_CHARS} characters")
    if facts.worker_children:
        # every task runs in a worker, of its caller's key only; no memory budget in the key:
        # such a worker applies each task's own budget (its WebAssembly memory's growth)
        if isolation == "process":
            raise RequestError(f'isolation="process" is not available for {facts.name}: its '
                               "workers serve several tasks each (see the README)")
        return (reuse_key or "default", 0)
    if isolation != "worker":
        if reuse_key is not None:
            raise RequestError('reuse_key applies to isolation="worker"')
        return None
    return (reuse_key or "default", limits.memory_mb)
