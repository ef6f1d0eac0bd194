"""The embedded sandbox: pre-forked jails for each runtime, owned by one context manager."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from collections.abc import Iterable
from typing import Any

from runtimes import codec, wire
from runtimes.wire import Status
from sandbox.cancel import CancelToken
from sandbox.config import RUNTIME_ALIASES, Limits, PoolConfig, canonical_runtime
from sandbox.errors import ClosedError, ConfigError
from sandbox.pool import Pool, TaskOptions
from sandbox.result import Result

_SERVED = ("python", "javascript")
SERVED = _SERVED


def _rejected(message: str) -> bytes:
    return wire.encode_result(Status.REJECTED, message)


POLICIES = ("default", "restricted")


@dataclass(frozen=True)
class Prepared:
    pool: Pool
    limits: Limits
    options: TaskOptions


class Sandbox:
    """Run snippets in local jails.

    >>> with Sandbox() as sb:
    ...     sb.run("python", "return data * 2", data=21).value
    42

    Each runtime gets one jail with a pool of ``config.size`` children forked ahead of demand;
    runtimes named in ``runtimes`` start at once, others on first use. ``run`` is thread-safe.
    """

    def __init__(self, config: PoolConfig | None = None, runtimes: Iterable[str] = ("python",)):
        self.config = config or PoolConfig()
        self._imports = self.config.import_policy()
        self._pools: dict[str, Pool] = {}
        self._lock = threading.Lock()
        self._closed = False
        try:
            for name in runtimes:
                runtime = canonical_runtime(name)
                if runtime is None or runtime not in _SERVED:
                    raise ConfigError(f"unknown runtime {name!r}")
                self._pool(runtime)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(
        self,
        runtime: str,
        code: str,
        data: Any = None,
        *,
        timeout_s: float | None = None,
        memory_mb: int | None = None,
        stdout_bytes: int | None = None,
        result_bytes: int | None = None,
        policy: str | None = None,
        imports: Iterable[str] | None = None,
    ) -> Result:
        """Run ``code`` (a function body; ``data`` is bound to ``data``) and return its Result.

        Python only: ``policy="restricted"`` compiles the snippet with RestrictedPython;
        ``imports`` narrows the modules it may import to these (within the pool's
        ``stdlib_allow`` / ``external_allow``). Bad requests (unknown runtime, invalid limits,
        unencodable data, imports the operator does not allow) come back as status
        ``rejected``; nothing about a request raises.
        """
        try:
            encoded = codec.encode(data)
        except codec.EncodeError as exc:
            return Result.rejected(f"data cannot be sent to the sandbox: {exc}")
        started = time.perf_counter()
        prepared = self.prepare(runtime, code, timeout_s=timeout_s, memory_mb=memory_mb,
                                stdout_bytes=stdout_bytes, result_bytes=result_bytes,
                                policy=policy, imports=imports)
        if isinstance(prepared, bytes):  # rejected: the envelope says why
            envelope, max_bytes = prepared, len(prepared)
        else:
            envelope = prepared.pool.run(code, encoded, prepared.limits, None, prepared.options)
            max_bytes = prepared.limits.envelope_bytes
        return Result.from_wire(envelope, max_bytes=max_bytes,
                                duration_ms=(time.perf_counter() - started) * 1000.0)

    def run_encoded(
        self,
        runtime: str,
        code: str,
        data: bytes,
        *,
        timeout_s: float | None = None,
        memory_mb: int | None = None,
        stdout_bytes: int | None = None,
        result_bytes: int | None = None,
        policy: str | None = None,
        imports: Iterable[str] | None = None,
        cancel: CancelToken | None = None,
    ) -> bytes:
        """Like ``run`` with codec-encoded ``data``, returning the child's result envelope
        untouched (what a runner forwards). Bad requests give a ``rejected`` envelope."""
        prepared = self.prepare(runtime, code, timeout_s=timeout_s, memory_mb=memory_mb,
                                stdout_bytes=stdout_bytes, result_bytes=result_bytes,
                                policy=policy, imports=imports)
        if isinstance(prepared, bytes):
            return prepared
        return prepared.pool.run(code, data, prepared.limits, cancel, prepared.options)

    def prepare(
        self,
        runtime: str,
        code: str,
        *,
        timeout_s: float | None = None,
        memory_mb: int | None = None,
        stdout_bytes: int | None = None,
        result_bytes: int | None = None,
        policy: str | None = None,
        imports: Iterable[str] | None = None,
    ) -> Prepared | bytes:
        """What a request runs with, or a ``rejected`` envelope saying why not."""
        name = canonical_runtime(runtime)
        if name is None or name not in _SERVED:
            known = ", ".join(sorted({r for r in RUNTIME_ALIASES.values() if r in _SERVED}))
            return _rejected(f"unknown runtime {runtime!r} (available: {known})")
        if not isinstance(code, str):
            return _rejected(f"code must be a str, not {type(code).__name__}")
        limits = self.config.default_limits
        if timeout_s is not None or memory_mb is not None or stdout_bytes is not None or (
            result_bytes is not None
        ):
            try:
                limits = limits.replace(
                    timeout_s=timeout_s, memory_mb=memory_mb,
                    stdout_bytes=stdout_bytes, result_bytes=result_bytes,
                )
            except ConfigError as exc:
                return _rejected(f"bad limits: {exc}")
        options = TaskOptions()
        if name == "python":
            if policy not in (None, *POLICIES):
                return _rejected(f"unknown policy {policy!r} (available: {', '.join(POLICIES)})")
            if isinstance(imports, str):
                return _rejected("imports must be a list of module names, not a string")
            try:
                allow = self._imports.narrow(imports)
            except ConfigError as exc:
                return _rejected(str(exc))
            options = TaskOptions(policy or "default", allow.to_wire())
        elif policy not in (None, "default") or imports is not None:
            return _rejected(f"policy and imports apply to python, not {name}")
        return Prepared(self._pool(name), limits, options)

    def idle_children(self) -> int:
        with self._lock:
            pools = list(self._pools.values())
        return sum(p.idle_count() for p in pools)

    def _pool(self, runtime: str) -> Pool:
        with self._lock:
            if self._closed:
                raise ClosedError("the sandbox is closed")
            pool = self._pools.get(runtime)
            if pool is None:
                pool = self._pools[runtime] = Pool(runtime, self.config)
            return pool

    def close(self) -> None:
        """Stop every jail; children in flight are killed. Safe to call twice."""
        with self._lock:
            self._closed = True
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()
