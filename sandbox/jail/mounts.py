"""What a jail sees: the read-only mounts of its root, and the staging directory they come from.

``interpreter`` finds the Python the jail runs (and refuses one others cannot read);
``mounts_for`` is pure: a runtime's mounts from the interpreter, the packages and the trimmed
standard library (``stdlib_view_for``); the staging directory holds what the jail sees of our
own code (``runtimes``, a user database) and is reclaimed when its process is gone.
"""

from __future__ import annotations

import atexit
import functools
import glob
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import runtimes
from sandbox import registry
from sandbox.config import PoolConfig
from sandbox.errors import ConfigError, JailError
from sandbox.jail import stdlib_view
from sandbox.jail.npm import JAIL_NPM
from sandbox.jail.packages import JAIL_PACKAGES, check_reachable

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
    operator's third-party environment (``sandbox.jail.packages``), for Python; for JavaScript,
    its npm packages (``sandbox.jail.npm``). ``stdlib_allow``:
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
    if runtime in ("python", "javascript") and os.path.isdir(ZONEINFO):
        # public data: Python's zoneinfo and dateutil read it, and so does the JavaScript
        # runtime for dates in a time zone (luxon, Intl)
        mounts.append(Mount(ZONEINFO, ZONEINFO))
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
    if runtime == "javascript" and packages_dir:
        # npm packages for require() (sandbox/jail/npm.py): source text, read-only
        try:
            check_reachable(packages_dir, as_root=os.geteuid() == 0)
        except ConfigError as exc:
            raise JailError(str(exc)) from exc
        mounts.append(Mount(os.path.realpath(packages_dir), JAIL_NPM))
    inside = os.path.realpath(packages_dir) + os.sep if packages_dir else None
    mounts += [Mount(os.path.realpath(lib), lib) for lib in _linked_libraries(tuple(elves))
               if not (inside and os.path.realpath(lib).startswith(inside))]
    return tuple(mounts)


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
