"""A task's request: built and checked once, where it enters the host worker.

``build`` turns what a caller or a broker hands in (runtime name, code, encoded data, limits,
language options) into one ``TaskRequest``, or raises ``RequestError`` saying why it cannot
run (the caller answers ``rejected`` with that message). Everything after it (the pool, the
jail, the child) takes the request as it is and checks nothing again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from broker.protocol import ISOLATIONS, MAX_CODE_BYTES, MAX_DATA_BYTES
from runtimes.protocol import POLICIES, Imports
from sandbox import registry
from sandbox.config import Limits
from sandbox.errors import ConfigError, RequestError
from sandbox.imports import ImportPolicy


MAX_REUSE_KEY_CHARS = 200  # a broker's "<lane>/<key>" included


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
) -> TaskRequest:
    """``isolation``: "process" (the default: a fresh process per task) or "worker" (a warm
    worker serving tasks of ``reuse_key`` only: the caller's lane or tenant)."""
    served = tuple(served)
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
        return TaskRequest(name, code, data, limits, reuse=reuse)
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
    return TaskRequest(name, code, data, limits, policy or "default", allow.imports, reuse)


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
