"""Code node jobs run as ``sandbox n8n-runner`` runs them, without n8n: through the runner's
own port to the pools (``PoolsBackend``: the Code node API compiled in the zygote, the job's
limits, its calls of n8n offered when ``on_call`` is given), on a loop driven here.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable
from typing import Any

from sandbox.config import PoolConfig
from sandbox.host.loop import Loop
from sandbox.n8n.backend import PoolsBackend
from sandbox.n8n.task import Job
from sandbox.result import Result

#: (key, call id, name, params) of a job's call; answer it with ``Jobs.answer``
OnCall = Callable[[str, int, str, list[Any]], None]


class Jobs:
    def __init__(self, config: PoolConfig, runtimes: Iterable[str] = ("javascript",), *,
                 isolation: str = "process", on_call: OnCall | None = None) -> None:
        self.loop = Loop()
        self.backend = PoolsBackend(config, runtimes, isolation)
        self._results: dict[str, Result] = {}
        self._keys = itertools.count()
        try:
            self.backend.attach(self.loop, self._results.__setitem__, on_call)
        except BaseException:
            self.loop.close()
            raise

    def run(self, job: Job) -> Result:
        """The job's one outcome (an AssertionError if none came well after its timeout)."""
        key = f"job-{next(self._keys)}"
        self.backend.submit(key, job)
        end = time.monotonic() + job.limits.timeout_s + 30
        while key not in self._results and time.monotonic() < end:
            self.loop.run_once(max(0.0, min(0.5, end - time.monotonic())))
        assert key in self._results, f"no outcome for {key} within its timeout and 30 s"
        return self._results.pop(key)

    def answer(self, key: str, call_id: int, ok: bool, data: Any) -> None:
        self.backend.answer(key, call_id, ok, data)

    def close(self) -> None:
        self.backend.close()
        self.loop.close()

    def __enter__(self) -> Jobs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
