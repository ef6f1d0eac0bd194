"""One child, one task: the linear setup pipeline from fork to exit.

Steps, in order (the point where the child gives up its last privileges is marked):

1. forget the zygote: default signal handlers, close every fd but the task channel and the
   output file the host shared (``runtimes.output``, mapped now), stdio on /dev/null (a
   snippet must not write into the jail's log).
2. tie its life to the zygote (PDEATHSIG) and make itself non-dumpable, so no sibling can
   read its memory through ptrace-like interfaces.
3. lower the limits no task changes: no file writes, no core dumps, no new processes.
4. install the per-child seccomp filter (no fork/exec/sockets, signals only to itself).
   --- from here on the child can no longer create processes, sockets or exec anything ---
5. rehearse: decode a canned task frame and run a canned task, so that the copy-on-write
   faults of every page the task's path touches (our own code and data included, not only
   the executor's) and any lazy set-up land before the task exists.
6. wait for a task frame. Everything above happens ahead of demand, in the pool.
7. lower address space and CPU seconds to the task's budget.
8. run the task through the runtime's executor and write the encoded result.
9. a task of the default mode was the only one: wait to be stopped and killed, and nothing
   of this process survives into another task. In worker mode (``reusable``) the host may
   send another task of the same tenant: back to step 6, with fresh interpreter state from
   the executor; the limits of step 3 and 4 stay, the task's own are set again. Before the
   first such task the executor takes the pristine state (``arm``); after each, before its
   result is written, the check it returned says whether the worker must retire.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import resource
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from runtimes import attempts, framing, outcome, output, protocol, seccomp_filter
from runtimes.outcome import Status

_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_libc = ctypes.CDLL(None, use_errno=True)


@dataclass(frozen=True)
class ChildSetup:
    """What the zygote hands every child: its runtime's executor and the seccomp program."""

    executor: ModuleType
    seccomp_program: bytes
    pid_slots: tuple[int, ...]


def main(channel: socket.socket, setup: ChildSetup, output_fd: int = -1) -> None:
    code = 70
    try:
        _forget_zygote(channel.fileno(), output_fd)
        shared = _map_output(output_fd)
        attempts.watch(shared)
        _bind_lifetime()
        _lower_fixed_limits()
        seccomp_filter.install(setup.seccomp_program, setup.pid_slots, os.getpid())
        # A rehearsal while idle: its copy-on-write page faults and lazy initialisation
        # happen now rather than on the task's clock (measured: a first decode of a task
        # frame alone cost a child ~0.15 ms of faults on its task's path).
        protocol.decode(_CANNED_TASK, (protocol.Task,), max_bytes=protocol.MAX_TASK_BYTES)
        resource.getrlimit(resource.RLIMIT_AS)
        setup.executor.rehearse()
        first = True
        # Worker mode: the check the executor hands over when this process becomes a worker,
        # kept in this frame's locals from before the first task's data is read, so that no
        # rebinding of a module name by a snippet changes which check runs (see
        # runtimes/python/leftovers.py). With_retire is taken now for the same reason.
        check: Callable[[], bool] | None = None
        with_retire = outcome.with_retire
        while True:
            task = _receive_task(channel)
            if task is None:  # the host closed the channel: shrinking, or shutting down
                code = 0
                break
            _set_task_limits(task, first)
            first = False
            if task.reusable and check is None:
                arm = getattr(setup.executor, "arm", None)
                check = arm() if arm is not None else _nothing_to_check
            try:
                result = setup.executor.run(task, shared)
            except MemoryError:  # encoding the result itself did not fit: still one answer
                result = outcome.encode(Status.MEMORY_LIMIT, "the result did not fit in the "
                                                             "snippet's memory limit")
            # after the task, before its result leaves (and so before the host can send the
            # next task): a worker whose state differs from the pristine one asks to retire
            if check is not None and check():
                result = with_retire(result)
            framing.send_frame(channel, result)
            # Niced until the host hands over a task again (it lifts us back to 0 then).
            try:
                os.setpriority(os.PRIO_PROCESS, 0, 19)
            except OSError:
                pass
            if not task.reusable:
                # Done: stop (nothing of this process runs any more, and the host need not
                # signal it on the result's way back), then wait to be killed by the host when
                # it suits the caller (see the pool's recycling): exiting now would tear down
                # the address space while the result is on its way. If the host closes the
                # channel instead, exit.
                os.kill(os.getpid(), signal.SIGSTOP)
                try:
                    channel.recv(1)
                except OSError:
                    pass
                code = 0
                break
            setup.executor.prepare_next()
    except BaseException:  # nothing may escape a forked child: the zygote's loop is above
        code = 70
    finally:
        os._exit(code)


def _nothing_to_check() -> bool:
    """A runtime whose executor starts every task from a fresh engine (javascript)."""
    return False


def _forget_zygote(keep_fd: int, output_fd: int = -1, keep_stderr: bool = False) -> None:
    """Step 1. ``keep_stderr``: stderr stays the jail's log (a pyodide worker in debug)."""
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL)
    try:
        null = os.open("/dev/null", os.O_RDWR)
    except OSError:
        null = -1
    for fd in (0, 1) if keep_stderr else (0, 1, 2):
        if null >= 0 and fd not in (keep_fd, output_fd):
            os.dup2(null, fd)
    keep = sorted({keep_fd, output_fd, null} | ({0, 1, 2} if null >= 0 else set()))
    low = 0
    for fd in keep:
        if fd < 0:
            continue
        if low < fd:
            os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 16)
    if null > 2 and null not in (keep_fd, output_fd):
        os.close(null)


def _bind_lifetime() -> None:
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    _libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)


def _receive_task(channel: socket.socket) -> protocol.Task | None:
    try:
        body = framing.recv_frame(channel, protocol.MAX_TASK_BYTES)
    except framing.ChannelClosed:
        return None  # the host closed the channel: the pool is shrinking or shutting down
    task: protocol.Task = protocol.decode(body, (protocol.Task,), max_bytes=protocol.MAX_TASK_BYTES)
    return task


def _map_output(fd: int) -> mmap.mmap | None:
    """The host's shared output file, mapped once for the child's life (before its limits:
    the host measured the child's address space with it)."""
    if fd < 0:
        return None
    try:
        size = os.fstat(fd).st_size
        return mmap.mmap(fd, size) if size >= output.HEADER.size else None
    finally:
        os.close(fd)


# What the rehearsal decodes: a task frame shaped like a real one (the curated import list is
# about this long), encoded once in the zygote and inherited.
_CANNED_TASK = protocol.encode(protocol.Task(
    code="return 1", data=b"\xc0", as_bytes=1 << 30, memory_bytes=1 << 28, cpu_s=6,
    stdout_bytes=1 << 20, result_bytes=1 << 24,
    imports=protocol.Imports(tuple(f"module{i}" for i in range(48)), ()), timeout_ms=5000))

# A worker's CPU seconds over its whole life (the hard limit, set once; each task's own
# budget is the soft limit, raised under it task by task).
WORKER_CPU_S = 3600


def _set_task_limits(task: protocol.Task, first: bool) -> None:
    as_bytes, cpu_s = task.as_bytes, task.cpu_s
    # soft == hard, so the snippet cannot raise them back (it has no CAP_SYS_RESOURCE in the
    # initial user namespace, which is where the kernel checks). A worker's later tasks have
    # the same budget (the host binds a worker to one), so there is nothing to raise.
    current = resource.getrlimit(resource.RLIMIT_AS)[1]
    if first or 0 <= as_bytes < current or current == resource.RLIM_INFINITY:
        resource.setrlimit(resource.RLIMIT_AS, (as_bytes, as_bytes))
    if not task.reusable:
        # SIGXCPU at the soft limit, SIGKILL one second later if it is ignored.
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
        return
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = int(usage.ru_utime + usage.ru_stime) + 1
    hard = WORKER_CPU_S if first else resource.getrlimit(resource.RLIMIT_CPU)[1]
    resource.setrlimit(resource.RLIMIT_CPU, (min(used + cpu_s, hard), hard))


def _lower_fixed_limits() -> None:
    """The limits no task changes, set before the task arrives (off its clock)."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
