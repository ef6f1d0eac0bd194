"""A runtime's pre-forked pool: one jail, a zygote in it, and idle children ready for tasks.

The caller's thread does the hot path: take an idle child, write the task frame, wait for the
result frame until the wall-clock deadline, SIGKILL the child through its pidfd whatever
happened. A supervisor thread does everything else: it reads the zygote's ``spawned`` and
``exited`` reports, keeps ``size`` children idle or on their way, and restarts the jail (with
backoff) if the zygote or nsjail dies. No fork, import or seccomp compilation happens on a
task's path.
"""

from __future__ import annotations

import collections
import logging
import math
import os
import select
import signal
import socket
import threading
import time
from dataclasses import dataclass, field

import seccomp
from runtimes import wire
from runtimes.wire import Status
from sandbox.cancel import CancelToken
from sandbox.config import Limits, PoolConfig
from sandbox.errors import ClosedError, JailError
from sandbox.jail import Jail

log = logging.getLogger("sandbox.pool")

MiB = 1024 * 1024
# How long to wait for the zygote's exit report of a child that closed its channel.
_EXIT_REPORT_S = 2.0
_RESTART_BACKOFF_S = (0.1, 0.5, 1.0, 2.0, 5.0)


@dataclass(eq=False)
class Child:
    pid: int  # in the jail's pid namespace, as the zygote reports it
    channel: socket.socket
    pidfd: int
    jail: Jail
    host_pid: int = 0  # 0 when unknown
    exited: threading.Event = field(default_factory=threading.Event)
    wait_status: int | None = None

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        """Freeze it: nothing of it runs any more, and nothing is torn down yet."""
        self._signal(signal.SIGSTOP)

    def _signal(self, sig: int) -> None:
        try:
            signal.pidfd_send_signal(self.pidfd, sig)
        except (ProcessLookupError, OSError):
            pass

    def release(self) -> None:
        self.kill()
        self.channel.close()
        os.close(self.pidfd)


def outcome_of(wait_status: int | None, *, oom_killed: bool) -> tuple[Status, str]:
    """What a child's death means when it left no result. Pure; the heart of classification."""
    if wait_status is None:
        return Status.CRASHED, "the sandboxed process vanished without a result"
    if os.WIFSIGNALED(wait_status):
        sig = os.WTERMSIG(wait_status)
        if sig == signal.SIGSYS:
            return Status.VIOLATION, "killed for a forbidden operation (seccomp: SIGSYS)"
        if sig == signal.SIGXCPU:
            return Status.TIMEOUT, "killed for exceeding its CPU time limit"
        if sig == signal.SIGKILL and oom_killed:
            return Status.MEMORY_LIMIT, "killed by the kernel for exceeding the memory cap"
        return Status.CRASHED, f"killed by {signal.Signals(sig).name} without a result"
    code = os.WEXITSTATUS(wait_status)
    return Status.CRASHED, f"the sandboxed process exited with code {code} without a result"


@dataclass(frozen=True)
class TaskOptions:
    """How the child runs the code: Python's policy and import allow-lists (wire form)."""

    policy: str = "default"
    imports: dict[str, list[str]] | None = None


class TaskRun:
    """One task in flight on a child: reads its result frame as it arrives, without blocking,
    and turns whatever happens (result, deadline, cancellation, death) into one envelope.

    Driven by the caller's loop: ``on_readable`` when ``fileno()`` polls readable,
    ``on_time(now)`` at ``wake_at()``; ``envelope`` is set once the task is over, and the
    child is handed back to its pool exactly then.
    """

    def __init__(self, pool: Pool, child: Child, limits: Limits) -> None:
        self._pool = pool
        self._child = child
        # kept: once the task is over its pool may close the channel at any moment, and a
        # caller still has to unregister this number from its poller
        self._fd = child.channel.fileno()
        self._limits = limits
        self.deadline = time.monotonic() + limits.timeout_s
        self._max_frame = limits.envelope_bytes
        self._header = bytearray(4)
        self._got = 0
        self._body: bytearray | None = None
        self._view: memoryview | None = None
        self._dying_since: float | None = None  # channel lost: waiting for the exit report
        self.envelope: bytes | None = None

    def fileno(self) -> int:
        return self._fd

    def wake_at(self) -> float:
        if self._dying_since is not None:  # the exit report comes from another thread
            return min(time.monotonic() + 0.002, self._dying_since + _EXIT_REPORT_S)
        return self.deadline

    def on_readable(self) -> None:
        if self.envelope is not None or self._dying_since is not None:
            return
        channel = self._child.channel
        try:  # the 4-byte length first, then the body straight into place
            if self._view is None:
                n = channel.recv_into(memoryview(self._header)[self._got:])
            else:
                n = channel.recv_into(self._view[self._got:])
        except BlockingIOError:
            return
        except OSError:
            n = 0
        if n == 0:
            self.lost()
            return
        self._got += n
        if self._view is None:
            if self._got < 4:
                return
            size = int.from_bytes(self._header, "big")
            if size > self._max_frame:
                self._done(wire.encode_result(
                    Status.OUTPUT_LIMIT,
                    f"result of {size} bytes exceeds the limit of {self._max_frame} bytes"))
                return
            self._body = bytearray(size)
            self._view = memoryview(self._body)
            self._got = 0
        assert self._body is not None
        if self._got == len(self._body):
            # one copy from the socket into place; the envelope is handed on as it is
            self._done(self._body)  # type: ignore[arg-type]

    def on_time(self, now: float) -> None:
        if self.envelope is not None:
            return
        if self._dying_since is not None:
            if self._child.exited.is_set() or now - self._dying_since >= _EXIT_REPORT_S:
                oom = self._child.jail.oom_killed_since_last_asked()
                self._done(wire.encode_result(*outcome_of(self._child.wait_status,
                                                          oom_killed=oom)))
        elif now >= self.deadline:
            self._child.kill()
            self._done(wire.encode_result(
                Status.TIMEOUT, f"exceeded the wall-clock timeout of {self._limits.timeout_s:g} s"))

    def cancel(self) -> None:
        if self.envelope is None:
            self._child.kill()
            self._done(wire.encode_result(Status.CRASHED, "cancelled while running"))

    def lost(self) -> None:
        """The channel closed without a result: kill, then classify from the exit report."""
        if self._dying_since is None:
            self._child.kill()
            self._dying_since = time.monotonic()
            self.on_time(self._dying_since)

    def _done(self, envelope: bytes) -> None:
        self.envelope = envelope
        self._pool._finish(self._child)


class Pool:
    def __init__(self, runtime: str, config: PoolConfig) -> None:
        self.runtime = runtime
        self.config = config
        self._filter = seccomp.child_filter()
        self._policy = seccomp.jail_policy()
        self._lock = threading.Condition()
        self._idle: collections.deque[Child] = collections.deque()
        self._children: dict[int, Child] = {}
        self._pending = 0
        self._waiters = 0  # tasks waiting in _acquire for an idle child
        # finished children, stopped, waiting to be killed and replaced: (when, child)
        self._recycle: collections.deque[tuple[float, Child]] = collections.deque()
        self._recycle_cv = threading.Condition(self._lock)  # type: ignore[arg-type]
        self._closed = False
        self._baseline_bytes = 0  # a fresh child's address space, measured once per jail
        self._boost = os.geteuid() == 0  # see jail.BACKGROUND_NICE
        self._jail = self._start_jail()
        self._supervisor = threading.Thread(
            target=self._supervise, name=f"pool-{runtime}", daemon=True
        )
        self._supervisor.start()
        self._recycler = threading.Thread(
            target=self._recycle_loop, name=f"pool-{runtime}-recycle", daemon=True
        )
        self._recycler.start()

    # -- hot path ----------------------------------------------------------------------------

    def run(
        self, code: str, data: bytes, limits: Limits, cancel: CancelToken | None = None,
        options: TaskOptions = TaskOptions(),
    ) -> bytes:
        """Run one task on a fresh child; the result envelope, ready for the client.

        Setting ``cancel`` while the task runs kills its child (status crashed, "cancelled")."""
        child = self._acquire()
        if child is None:
            return self.no_child_envelope()
        task = self.begin(child, code, data, limits, options)
        poller = select.poll()
        poller.register(task.fileno(), select.POLLIN)
        if cancel is not None:
            poller.register(cancel.fileno(), select.POLLIN)
        fd = task.fileno()
        while task.envelope is None:
            if cancel is not None and cancel.is_set():
                task.cancel()
                break
            wait_ms = max(0.0, task.wake_at() - time.monotonic()) * 1000
            for ready, _ in poller.poll(wait_ms):
                if ready == fd:
                    task.on_readable()
            task.on_time(time.monotonic())
        assert task.envelope is not None
        return task.envelope

    def try_acquire(self) -> Child | None:
        """An idle child now, or None (and the recycler is told to replace children now)."""
        with self._lock:
            if self._closed:
                raise ClosedError("the sandbox pool is closed")
            if not self._idle:
                self._recycle_cv.notify()
                return None
            return self._take()

    def no_child_envelope(self) -> bytes:
        return wire.encode_result(
            Status.REJECTED,
            f"no idle {self.runtime} sandbox within {self.config.acquire_timeout_s:g} s "
            f"(pool of {self.config.size}, all busy)",
        )

    def begin(self, child: Child, code: str, data: bytes, limits: Limits,
              options: TaskOptions = TaskOptions()) -> TaskRun:
        """Hand ``child`` its task; the TaskRun follows it to its envelope."""
        if child.host_pid and self._boost:
            try:
                # from the background nice level to the caller's: the task outruns refills
                os.setpriority(os.PRIO_PROCESS, child.host_pid, 0)
            except OSError:
                self._boost = False
        task = TaskRun(self, child, limits)
        try:
            wire.send_frame(child.channel, wire.encode_task(
                code=code,
                data=data,
                as_bytes=self._baseline_bytes + limits.memory_mb * MiB,
                memory_bytes=limits.memory_mb * MiB,
                cpu_s=math.ceil(limits.timeout_s) + 1,
                stdout_bytes=limits.stdout_bytes,
                result_bytes=limits.result_bytes,
                policy=options.policy,
                imports=options.imports,
            ))
            child.channel.setblocking(False)  # from here on, read only what has arrived
        except OSError:
            task.lost()
        return task

    def _acquire(self) -> Child | None:
        end = time.monotonic() + self.config.acquire_timeout_s
        with self._lock:
            if not self._idle:
                self._waiters += 1
                self._recycle_cv.notify()  # replace finished children now, not later
                try:
                    while not self._idle:
                        if self._closed:
                            raise ClosedError("the sandbox pool is closed")
                        remaining = end - time.monotonic()
                        if remaining <= 0:
                            return None
                        self._lock.wait(remaining)
                finally:
                    self._waiters -= 1
            return self._take()

    def _take(self) -> Child:
        """Hand out the oldest idle child (lock held); its replacement is now pending."""
        self._pending += 1
        return self._idle.popleft()

    def _finish(self, child: Child) -> None:
        """The task is over and its caller has the result. The child is stopped at once, so
        nothing of it runs afterwards. Killing it (unmapping its address space) and forking
        its replacement are each a burst of CPU which, done now, would compete with the
        result's way back to the caller (through a runner and a broker, say); so unless a
        task is waiting for a child they happen ``recycle_delay_ms`` later, on the recycler
        thread. Either way the zygote's fork never competes with a running task."""
        delay = self.config.recycle_delay_ms / 1000.0
        with self._lock:
            if delay > 0 and not self._waiters and self._idle and not self._closed:
                child.stop()
                self._recycle.append((time.monotonic() + delay, child))
                self._recycle_cv.notify()
                return
        self._replace([child])

    def _replace(self, children: list[Child]) -> None:
        for child in children:
            child.release()
        with self._lock:
            jail = self._jail
        self._request_spawn(jail, len(children))

    def _recycle_loop(self) -> None:
        while True:
            with self._lock:
                while not self._recycle and not self._closed:
                    self._recycle_cv.wait()
                if not self._recycle:  # closed, nothing left
                    return
                now = time.monotonic()
                urgent = self._waiters > 0 or not self._idle or self._closed
                due = [c for when, c in self._recycle if urgent or when <= now]
                if not due:
                    self._recycle_cv.wait(self._recycle[0][0] - now)
                    continue
                for _ in due:
                    self._recycle.popleft()
                closed = self._closed
            if closed:
                for child in due:
                    child.release()
                return
            self._replace(due)

    # -- supervisor --------------------------------------------------------------------------

    def _start_jail(self) -> Jail:
        jail = Jail(self.runtime, self.config, self._policy)
        try:
            try:
                wire.send_control(
                    jail.control,
                    {
                        "op": "init",
                        "seccomp_program": self._filter.program,
                        "pid_slots": list(self._filter.pid_slots),
                        "preload": list(self.config.preload) if self.runtime == "python" else [],
                    },
                )
                ready = select.select([jail.control], [], [], self.config.start_timeout_s)[0]
                msg, _ = wire.recv_control(jail.control) if ready else (None, [])
            except (OSError, wire.WireError):
                msg = None  # the jail died before its zygote said ready: reported below
            if msg is None or msg.get("op") != "ready":
                raise JailError(
                    f"the {self.runtime} jail did not start: "
                    + ("; ".join(jail.stderr_tail[-5:]) or "no ready message from the zygote")
                )
            for name, why in (msg.get("preload_failed") or {}).items():
                log.warning("%s zygote could not preload %s: %s", self.runtime, name, why)
        except BaseException:
            jail.close()
            raise
        with self._lock:
            self._pending = self.config.size
        self._request_spawn(jail, self.config.size)
        return jail

    def _request_spawn(self, jail: Jail, count: int) -> None:
        try:
            wire.send_control(jail.control, {"op": "spawn", "count": count})
        except OSError:
            pass  # the jail is gone; the supervisor restarts it with a full pool

    def _supervise(self) -> None:
        failures = 0
        while True:
            jail = self._jail
            try:
                self._read_reports(jail)
            except Exception:
                log.exception("%s pool: supervisor error", self.runtime)
            with self._lock:
                if self._closed:
                    return
                self._forget_jail(jail)
            jail.close()
            log.warning("%s jail ended; restarting it", self.runtime)
            while True:
                time.sleep(_RESTART_BACKOFF_S[min(failures, len(_RESTART_BACKOFF_S) - 1)])
                with self._lock:
                    if self._closed:
                        return
                try:
                    new = self._start_jail()
                except JailError:
                    failures += 1
                    log.exception("%s jail failed to restart", self.runtime)
                    continue
                with self._lock:
                    self._jail = new
                    closed = self._closed
                if closed:
                    new.close()
                    return
                failures = 0
                break

    def _read_reports(self, jail: Jail) -> None:
        while True:
            try:
                msg, fds = wire.recv_control(jail.control)
            except wire.WireError:
                log.exception("%s zygote sent a malformed report", self.runtime)
                continue
            except OSError:
                return
            if msg is None:
                return
            op = msg.get("op")
            if op == "spawned" and len(fds) == 2:
                pid = wire.field(msg, "pid", int)
                sock = socket.socket(fileno=fds[0])
                host_pid = _host_pid(fds[1])
                child = Child(pid=pid, channel=sock, pidfd=fds[1], jail=jail, host_pid=host_pid)
                if not self._baseline_bytes:
                    self._baseline_bytes = _address_space(host_pid)
                with self._lock:
                    self._pending = max(0, self._pending - 1)
                    closed = self._closed
                    if not closed:
                        self._children[pid] = child
                        self._idle.append(child)
                        self._lock.notify()
                if closed:  # arrived after close() emptied the pool
                    child.release()
            elif op == "exited":
                pid = wire.field(msg, "pid", int)
                with self._lock:
                    child = self._children.pop(pid, None)  # type: ignore[arg-type]
                    if child is not None and child in self._idle:
                        # died while idle (e.g. the jail's memory cap): replace it
                        self._idle.remove(child)
                        child.release()
                        self._pending += 1
                        respawn = True
                    else:
                        respawn = False
                if child is not None:
                    child.wait_status = wire.field(msg, "status", int)
                    child.exited.set()
                if respawn:
                    self._request_spawn(jail, 1)
            else:
                for fd in fds:
                    os.close(fd)

    def _forget_jail(self, jail: Jail) -> None:
        """Called with the lock held when a jail is gone: its children are gone too."""
        for pid, child in list(self._children.items()):
            if child.jail is jail:
                del self._children[pid]
                child.exited.set()
        for child in [c for c in self._idle if c.jail is jail]:
            self._idle.remove(child)
            child.release()

    # -- lifecycle ---------------------------------------------------------------------------

    def idle_count(self) -> int:
        with self._lock:
            return len(self._idle)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            idle, self._idle = list(self._idle), collections.deque()
            jail = self._jail
            self._lock.notify_all()
            self._recycle_cv.notify_all()
        for child in idle:
            child.release()
        self._recycler.join(timeout=5)
        jail.close()
        self._supervisor.join(timeout=5)


def _host_pid(pidfd: int) -> int:
    """The pid, in our namespace, of the process a pidfd refers to (0 if unknown)."""
    try:
        with open(f"/proc/self/fdinfo/{pidfd}") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("Pid:"))
    except (OSError, StopIteration, ValueError):
        return 0


def _address_space(host_pid: int) -> int:
    """A fresh child's virtual memory size: the baseline that ``memory_mb`` is added to."""
    try:
        with open(f"/proc/{host_pid}/status") as f:
            kb = next(int(line.split()[1]) for line in f if line.startswith("VmSize:"))
        return kb * 1024
    except (OSError, StopIteration, ValueError):
        return 64 * MiB  # a generous stand-in: CPython's address space at rest is below it
