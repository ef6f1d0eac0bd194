"""The one port between the n8n runner and our pools.

``Backend`` is what the runner's loop needs: ``submit(key, job)``, ``cancel(key)`` (kill
the child at once), and outcomes it collects when ``fileno()`` turns readable. Every
submitted key gets exactly one outcome, a cancelled one included (its ``Result`` says it
was cancelled), so the runner knows when a slot is really free.

``ThreadBackend`` implements it over today's blocking, thread-safe
``Sandbox.run_encoded(..., cancel=CancelToken)``.

TEMPORARY: one worker thread per running task, confined to this adapter. When the
single-loop host worker (``sandbox/worker.py``) lands, a backend over it submits into that
loop and the runner registers its socket with the same loop instead of running its own;
nothing outside this module changes.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from typing import Protocol

from runtimes.wire import Status
from sandbox.cancel import CancelToken
from sandbox.config import PoolConfig
from sandbox.local import Sandbox
from sandbox.n8n.task import Job
from sandbox.result import Result


class Backend(Protocol):
    def submit(self, key: str, job: Job) -> None: ...

    def cancel(self, key: str) -> None: ...

    def fileno(self) -> int: ...

    def outcomes(self) -> list[tuple[str, Result]]: ...

    def close(self) -> None: ...


class ThreadBackend:
    """Runs each job on a thread of its own through a ``Sandbox``; outcomes are queued and
    signalled on an eventfd the runner's poll loop watches."""

    def __init__(self, config: PoolConfig, runtimes: Iterable[str] = ("python", "javascript")) -> None:
        self._sandbox = Sandbox(config, runtimes=tuple(runtimes))
        self._lock = threading.Lock()
        self._done: list[tuple[str, Result]] = []
        self._running: dict[str, CancelToken] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._event = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._closed = False

    def submit(self, key: str, job: Job) -> None:
        token = CancelToken()
        thread = threading.Thread(target=self._run, args=(key, job, token),
                                  name=f"n8n-task-{key}", daemon=True)
        with self._lock:
            self._running[key] = token
            self._threads[key] = thread
        thread.start()

    def cancel(self, key: str) -> None:
        with self._lock:
            token = self._running.get(key)
        if token is not None:
            token.set()  # the pool kills the child through its pidfd at once

    def fileno(self) -> int:
        return self._event

    def outcomes(self) -> list[tuple[str, Result]]:
        try:
            os.eventfd_read(self._event)
        except BlockingIOError:
            pass
        with self._lock:
            done, self._done = self._done, []
        return done

    def _run(self, key: str, job: Job, token: CancelToken) -> None:
        try:
            limits = job.limits
            envelope = self._sandbox.run_encoded(
                job.runtime, job.code, job.data, timeout_s=limits.timeout_s,
                memory_mb=limits.memory_mb, stdout_bytes=limits.stdout_bytes,
                result_bytes=limits.result_bytes, cancel=token)
            result = Result.from_wire(envelope, max_bytes=limits.envelope_bytes)
        except BaseException as exc:  # the pool closed under us, say: still one outcome
            result = Result(Status.CRASHED, f"the sandbox failed: {exc}")
        finally:
            token.close()
        with self._lock:
            self._running.pop(key, None)
            self._threads.pop(key, None)
            self._done.append((key, result))
        if not self._closed:
            try:
                os.eventfd_write(self._event, 1)
            except OSError:
                pass

    def close(self) -> None:
        """Kill what runs, wait for the threads, stop the jails."""
        with self._lock:
            tokens = list(self._running.values())
            threads = list(self._threads.values())
        for token in tokens:
            token.set()
        for thread in threads:
            thread.join(10)
        self._sandbox.close()
        self._closed = True
        os.close(self._event)
