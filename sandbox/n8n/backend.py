"""The one port between the n8n runner and our pools.

``Backend`` is what the runner's loop needs: ``attach(loop, on_outcome, on_call)`` once,
then ``submit(key, job)`` and ``cancel(key)`` (kill the child at once), all in the loop's
thread. Every submitted key gets exactly one ``on_outcome(key, result)``, in the loop's
thread, a cancelled one included (its ``Result`` says it was cancelled), so the runner knows
when a slot is really free. A running job's call of n8n (``Job.calls``) comes as
``on_call(key, call_id, name, params)``; the runner answers it with ``answer(key, call_id,
ok, data)``, n8n's answer as n8n sent it.

``PoolsBackend`` is the pools (``sandbox.host.pools``) on the runner's own loop: the
jails' and children's fds are watched by the same loop as the WebSocket, so one thread
serves n8n and drives every child, and no task ever runs on it. With ``isolation="worker"``
a job runs in a warm worker bound to its workflow (reuse key ``workflow/<id>``): tasks of
one workflow share workers, tasks of two never do; a job that names no workflow gets a
fresh process.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Iterable
from typing import Any, Protocol

from runtimes import outcome
from runtimes.outcome import Status
from sandbox import request
from sandbox.config import PoolConfig
from sandbox.errors import RequestError
from sandbox.host.loop import Loop
from sandbox.n8n import protocol as p
from sandbox.n8n.task import Job
from sandbox.result import Result
from sandbox.host.pools import Pools

OnOutcome = Callable[[str, Result], None]
OnCall = Callable[[str, int, str, list[Any]], None]

#: What each runtime's zygote prepares for Code nodes: the JavaScript Code node API (the
#: runtime's ``n8n`` library module), compiled once there and inherited by every child, so
#: no task compiles it. luxon, jmespath and crypto are read once in the zygote (the
#: executor caches every module's source) and compiled by the tasks that use them: compiled
#: in the zygote too, they made every child's heap larger and each task about 1 ms of CPU
#: dearer (measured, fork and run of a trivial task), to save those that use dates ~6 ms.
ZYGOTE_PRELOAD = {"javascript": ("n8n",)}


class Backend(Protocol):
    def attach(self, loop: Loop, on_outcome: OnOutcome, on_call: OnCall | None = None) -> None: ...

    def submit(self, key: str, job: Job) -> None: ...

    def answer(self, key: str, call_id: int, ok: bool, data: Any) -> None: ...

    def cancel(self, key: str) -> None: ...

    def idle_by_runtime(self) -> dict[str, int]: ...

    def close(self) -> None: ...


class PoolsBackend:
    """Jobs as task requests for the ``Pools`` on the runner's loop."""

    def __init__(self, config: PoolConfig, runtimes: Iterable[str] = ("python", "javascript"),
                 isolation: str = "process") -> None:
        self.config = config
        self.runtimes = tuple(runtimes)
        self.isolation = isolation
        self._imports = config.import_policy()
        self._worker: Pools | None = None
        self._on_outcome: OnOutcome | None = None
        self._on_call: OnCall | None = None
        self._limits: dict[Hashable, int] = {}  # key -> the envelope size its limits allow

    def attach(self, loop: Loop, on_outcome: OnOutcome, on_call: OnCall | None = None) -> None:
        """Start the jails on ``loop`` (run here until they are ready: a JailError says why
        one cannot start)."""
        self._on_outcome, self._on_call = on_outcome, on_call
        self._worker = Pools(self.config, loop, self._deliver, served=self.runtimes,
                             preload=ZYGOTE_PRELOAD,
                             call=self._call if on_call is not None else None)
        try:
            for runtime in self.runtimes:
                self._worker.start(runtime, wait=True)
        except BaseException:
            self._worker.close()
            raise

    def submit(self, key: str, job: Job) -> None:
        assert self._worker is not None, "attach() first"
        limits = job.limits
        reuse_key = reuse_key_of(job) if self.isolation == "worker" else None
        try:
            task = request.build(job.runtime, job.code, job.data, defaults=limits,
                                 import_policy=self._imports, served=self.runtimes,
                                 isolation="worker" if reuse_key else None,
                                 reuse_key=reuse_key,
                                 calls=job.calls if self._on_call is not None else ())
        except RequestError as exc:
            self._limits[key] = limits.envelope_bytes
            self._deliver(key, outcome.encode(Status.REJECTED, str(exc)), Status.REJECTED)
            return
        self._limits[key] = limits.envelope_bytes
        self._worker.submit(key, task)

    def answer(self, key: str, call_id: int, ok: bool, data: Any) -> None:
        """n8n's answer to a job's call (``p.ABSENT``: it sent no data)."""
        if self._worker is not None:
            text = "" if data is p.ABSENT else json.dumps(data, separators=(",", ":"))
            self._worker.answer(key, call_id, ok, text)

    def _call(self, key: Hashable, call_id: int, name: str, args: str) -> None:
        """A job's call, its arguments as n8n takes them (a JSON array)."""
        try:
            params = json.loads(args)
        except ValueError:
            params = None
        if not isinstance(params, list):
            assert self._worker is not None
            self._worker.answer(key, call_id, False, json.dumps(
                f"{name}: its arguments are not a JSON array"))
            return
        if self._on_call is not None:
            self._on_call(str(key), call_id, name, params)

    def cancel(self, key: str) -> None:
        if self._worker is not None:
            self._worker.cancel(key)

    def idle_by_runtime(self) -> dict[str, int]:
        """Idle pre-forked children per runtime (in the loop's thread)."""
        return self._worker.idle_by_runtime() if self._worker is not None else {}

    def close(self) -> None:
        """End every task, release every child, stop every jail."""
        if self._worker is not None:
            self._worker.close()

    def _deliver(self, key: Hashable, envelope: bytes | bytearray, status: Status) -> None:
        max_bytes = self._limits.pop(key, len(envelope))
        if self._on_outcome is not None:
            self._on_outcome(str(key), Result.from_wire(envelope, max_bytes=max_bytes))


def reuse_key_of(job: Job) -> str | None:
    """The reuse key of a job in worker mode: its workflow's, or None (a fresh process) when
    it names none or one too long to be a key whole."""
    key = f"workflow/{job.workflow}"
    return key if job.workflow and len(key) <= request.MAX_REUSE_KEY_CHARS else None
