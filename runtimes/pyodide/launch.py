"""One Pyodide worker: the linear pipeline from the zygote's fork to the exec of Node.js.

Steps, in order (the point where the process gives up its last privileges is marked):

1. forget the zygote: default signals, every fd closed but the task channel (kept across the
   exec), stdio on /dev/null (``child._forget_zygote``).
2. tie its life to the zygote (PDEATHSIG survives the exec; the exec makes the process
   dumpable again, which the worker filter's ban on ptrace and process_vm_* covers).
3. lower the limits no task changes: no file writes, no core dumps, the address space and
   CPU seconds of the worker's whole life (several tasks; each task's wall clock is the
   watchdog's and the host's business). RLIMIT_NPROC stays: Node needs threads.
4. install the worker filter (``seccomp.worker_filter``) with a user-notification listener,
   answered by a helper thread of this process for exactly one call: our own exec of node.
   --- from here on no fork, socket, ptrace or mount; the listener dies with the exec, and
   every later exec fails with ENOSYS ---
5. exec Node.js with ``worker.mjs``; it loads Pyodide, says ready and serves tasks.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import socket
import struct
import sys
import threading
from typing import Any

from runtimes import child, protocol, seccomp_filter

_libc = ctypes.CDLL(None, use_errno=True)
# ioctls of a seccomp listener (linux/seccomp.h): _IOWR('!', 0/1, struct ...)
_NOTIF_RECV = 0xC0502100  # struct seccomp_notif: id u64, pid u32, flags u32, seccomp_data (64)
_NOTIF_SEND = 0xC0182101  # struct seccomp_notif_resp: id u64, val s64, error s32, flags u32
_NOTIF = struct.Struct("=QIIiIQ6Q")
_RESP = struct.Struct("=QqiI")
_FLAG_CONTINUE = 1
_EXEC_CALLS = (59, 322)  # execve, execveat (x86_64)

# Node's own knobs that bound the worker: no native addons, one V8 platform thread, the
# libuv pool at one thread, io_uring not even probed, no code from strings.
NODE_FLAGS = ("--disallow-code-generation-from-strings", "--no-addons", "--v8-pool-size=1",
              "--no-warnings", "--no-deprecation")
NODE_ENV = {"UV_THREADPOOL_SIZE": "1", "UV_USE_IO_URING": "0"}


def node_argv(spec: protocol.WorkerSpec, channel_fd: int) -> list[str]:
    """Node's command line for a worker: its bounds, the permission model, the settings."""
    flags = [*NODE_FLAGS, f"--max-old-space-size={spec.heap_mb}", "--max-semi-space-size=4"]
    if spec.read_paths:
        flags += ["--experimental-permission", "--allow-worker",
                  *(f"--allow-fs-read={path}/*" for path in spec.read_paths),
                  *(f"--allow-fs-write={path}" for path in spec.write_paths)]
    settings = {**json.loads(spec.settings), "channel": channel_fd, "debug": spec.debug}
    return [spec.node, *flags, spec.script, json.dumps(settings)]


def main(channel: socket.socket, setup: Any, spec: protocol.WorkerSpec | None) -> None:
    """Steps 1-5 in the forked child; never returns (exec, or exit 70 on any failure)."""
    code = 70
    try:
        if spec is None:
            raise RuntimeError("the init message described no worker")
        fd = channel.fileno()
        child._forget_zygote(fd, keep_stderr=spec.debug)
        os.set_inheritable(fd, True)
        child._bind_lifetime()
        _lower_limits(spec)
        exec_filtered(setup.seccomp_program, setup.pid_slots, node_argv(spec, fd), NODE_ENV)
    except BaseException:  # nothing may escape a forked child
        code = 70
    finally:
        os._exit(code)


def _lower_limits(spec: protocol.WorkerSpec) -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    address_space = spec.address_space_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    resource.setrlimit(resource.RLIMIT_CPU, (spec.cpu_s, spec.cpu_s + 1))


def exec_filtered(program: bytes, pid_slots: tuple[int, ...] | list[int], argv: list[str],
                  env: dict[str, str]) -> None:
    """Steps 4 and 5: install ``program`` (whose exec rules notify) with a listener, let a
    helper thread answer our own exec, and exec ``argv``. Returns only by raising."""
    listener_ready = threading.Event()
    listener: list[int] = []
    helper = threading.Thread(target=_answer_one_exec, args=(listener_ready, listener, os.getpid()),
                              daemon=True)
    helper.start()
    listener.append(seccomp_filter.install(program, pid_slots, os.getpid(), listener=True))
    listener_ready.set()
    _exec(argv, env)


def _answer_one_exec(ready: threading.Event, listener: list[int], pid: int) -> None:
    """Let the main thread's exec through, once. Runs unfiltered (the filter was installed
    after this thread started, without TSYNC) and dies with the exec."""
    ready.wait()
    fd = listener[0]
    while True:
        buf = ctypes.create_string_buffer(_NOTIF.size)
        if _libc.ioctl(fd, _NOTIF_RECV, buf) != 0:
            if ctypes.get_errno() == 4:  # EINTR
                continue
            return
        fields = _NOTIF.unpack(buf.raw)
        notif_id, notif_pid, nr = fields[0], fields[1], fields[3]
        if notif_pid == pid and nr in _EXEC_CALLS:
            resp = ctypes.create_string_buffer(_RESP.pack(notif_id, 0, 0, _FLAG_CONTINUE), _RESP.size)
            _libc.ioctl(fd, _NOTIF_SEND, resp)
            return
        # not ours (cannot happen: only this process has the filter): refuse it
        resp = ctypes.create_string_buffer(_RESP.pack(notif_id, 0, -1, 0), _RESP.size)
        _libc.ioctl(fd, _NOTIF_SEND, resp)


def _exec(argv: list[str], environment: dict[str, str]) -> None:
    """execve through ctypes, which lets go of the GIL while the call waits for the helper."""
    env = [f"{k}={v}".encode() for k, v in environment.items()]
    c_argv = (ctypes.c_char_p * (len(argv) + 1))(*[a.encode() for a in argv], None)
    c_env = (ctypes.c_char_p * (len(env) + 1))(*env, None)
    _libc.execve(argv[0].encode(), c_argv, c_env)
    raise OSError(ctypes.get_errno(), f"execve {argv[0]}: {os.strerror(ctypes.get_errno())}")


if __name__ == "__main__":  # pragma: no cover - not a program
    sys.exit("runtimes.pyodide.launch is run by the zygote")
