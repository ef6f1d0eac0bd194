"""One child, one task: the linear setup pipeline from fork to exit.

Steps, in order (the point where the child gives up its last privileges is marked):

1. forget the zygote: default signal handlers, close every fd but the task channel and the
   output file the host shared (``runtimes.output``, mapped now), stdio on /dev/null (a
   snippet must not write into the jail's log).
1f. in a pool that gives tasks files: its own directory, a tmpfs in a mount namespace of its
   own (``runtimes.files.private_workdir``), then every capability dropped for good.
   --- from here on the child holds no capability, not even in the jail's user namespace ---
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
8. put the task's files in its directory, run the task through the runtime's executor
   (which may call the functions the task's host offers: ``runtimes.calls``), add the
   files it wrote when it asked for them back, and write the encoded result.
9. a task of the default mode was the only one: wait to be stopped and killed, and nothing
   of this process survives into another task. In worker mode (``reusable``) the host may
   send another task of the same tenant: back to step 6, with fresh interpreter state from
   the executor; the limits of step 3 and 4 stay, the task's own are set again. Before the
   first such task the executor takes the pristine state (``arm``); after each, before its
   result is written, the check it returned says whether the worker must retire.
   A session (``session``) is the same loop with the interpreter's state kept: no check, no
   fresh state between calls; at its first call the executor takes over SIGINT
   (``enter_session``), the host's interrupt at a call's timeout, which ends that call only.
"""

from __future__ import annotations

import ctypes
import functools
import mmap
import os
import resource
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from runtimes import attempts, calls, files, framing, outcome, output, protocol, seccomp_filter
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
    files_bytes: int = 0  # the size of each task's own directory (0: no directory)


def main(channel: socket.socket, setup: ChildSetup, output_fd: int = -1) -> None:
    code = 70
    try:
        _forget_zygote(channel.fileno(), output_fd)
        if setup.files_bytes:
            files.private_workdir(setup.files_bytes, MAX_TASK_FILES)
            files.drop_capabilities()
        shared = _map_output(output_fd)
        attempts.watch(shared)
        _bind_lifetime()
        _lower_fixed_limits(setup.files_bytes)
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
        in_session = False  # a session's process: its state lives from call to call
        while True:
            task = _receive_task(channel)
            if task is None:  # the host closed the channel: shrinking, or shutting down
                code = 0
                break
            _set_task_limits(task, first)
            first = False
            if task.session and not in_session:
                in_session = True
                enter = getattr(setup.executor, "enter_session", None)
                if enter is not None:
                    enter()
            elif task.reusable and check is None and not in_session:
                arm = getattr(setup.executor, "arm", None)
                check = arm() if arm is not None else _nothing_to_check
            # a task that streams: what it prints goes out as output frames as it comes
            output.stream_to(functools.partial(_send_output, channel) if task.stream else None)
            calls.offer(channel, task.calls)  # and the functions of its host it may call
            try:
                result = _run(setup, task, shared)
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
            if in_session:
                continue  # the next call of the session finds the state this one left
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
            if setup.files_bytes:
                files.clear()  # the next task of this worker starts from an empty directory
            attempts.watch(None)  # what the executor prepares is not a snippet's attempt
            setup.executor.prepare_next()
            attempts.watch(shared)
    except BaseException:  # nothing may escape a forked child: the zygote's loop is above
        code = 70
    finally:
        os._exit(code)


def _run(setup: ChildSetup, task: protocol.Task, shared: mmap.mmap | None) -> bytes:
    """Step 8: the task's files in, the task, the files it wrote out (on request)."""
    if task.files:
        try:
            files.put(task.files, replace=task.session)
        except OSError as exc:
            return outcome.encode(Status.ERROR, f"the task's files could not be written: {exc}",
                                  error=outcome.ErrorDetail("FilesError", str(exc), ""))
    result: bytes = setup.executor.run(task, shared)
    if task.return_files and setup.files_bytes:
        found, skipped = files.collect(max(0, task.result_bytes - len(result)), MAX_TASK_FILES)
        result = outcome.with_files(result, found, skipped)
    return result


def _send_output(channel: socket.socket, stream: int, data: bytes) -> None:
    """One output frame. Blocking: a host that reads slower than the snippet prints holds
    the snippet back (its timeout still runs), and the frames are as many as the cap allows."""
    framing.send_frame(channel, protocol.encode_output(stream, data))


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

MAX_TASK_FILES = 64  # files a task may pass in, and get back (the broker's protocol says the same)

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
    if not task.reusable and not task.session:
        # SIGXCPU at the soft limit, SIGKILL one second later if it is ignored.
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
        return
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = int(usage.ru_utime + usage.ru_stime) + 1
    hard = WORKER_CPU_S if first else resource.getrlimit(resource.RLIMIT_CPU)[1]
    resource.setrlimit(resource.RLIMIT_CPU, (min(used + cpu_s, hard), hard))


def _lower_fixed_limits(files_bytes: int = 0) -> None:
    """The limits no task changes, set before the task arrives (off its clock). A file may
    be as large as the task's directory (the tmpfs's own size is the cap of them all)."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (files_bytes, files_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
