"""Cgroup memory and pids caps for whole jails, on cgroup v1 and v2.

nsjail creates one cgroup per jail (``NSJAIL.<pid>``) under a parent that must exist, and on
v2 the parent must have the memory and pids controllers enabled for its children. This module
works out that parent from the machine's mounts and our own cgroup (pure: ``detect`` and
``plan``), then creates it (``prepare``, the only I/O).

v1: the parent is ``<base>/snippet-sandbox`` in the memory and pids hierarchies, where base
is ``cgroup_root`` (a path within both hierarchies, e.g. ``/sandbox``) if given, else our own
cgroup in each.
v2: the parent is ``<base>/snippet-sandbox`` where base is ``cgroup_root`` if given (its path
under the mount, ``/sys/fs/cgroup/...``, or within the hierarchy), else our own cgroup.
v2's "no internal processes" rule means base can only delegate controllers if it has no
processes of its own; if it has some, they move to ``<base>/host`` first (what
container runtimes and snekbox do too).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sandbox.errors import JailError

PARENT = "snippet-sandbox"


@dataclass(frozen=True)
class Layout:
    version: int  # 1 or 2
    memory_mount: str = ""  # v1
    pids_mount: str = ""  # v1
    memory_path: str = "/"  # v1: our cgroup in the memory hierarchy
    pids_path: str = "/"  # v1: our cgroup in the pids hierarchy
    unified_mount: str = ""  # v2
    unified_path: str = "/"  # v2: our cgroup


def detect(mountinfo: str, self_cgroup: str) -> Layout | None:
    """Which cgroup version serves memory and pids here; None if neither is usable."""
    mounts: dict[str, str] = {}
    unified = ""
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        parts, rparts = left.split(), right.split()
        if len(parts) < 5 or len(rparts) < 3:
            continue
        mountpoint, fstype, superopts = parts[4], rparts[0], rparts[2]
        if fstype == "cgroup2":
            unified = unified or mountpoint
        elif fstype == "cgroup":
            for opt in superopts.split(","):
                if opt in ("memory", "pids"):
                    mounts.setdefault(opt, mountpoint)
    paths: dict[str, str] = {}
    for line in self_cgroup.splitlines():
        hid, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hid == "0" and controllers == "":
            paths["unified"] = path
        for c in controllers.split(","):
            if c in ("memory", "pids"):
                paths[c] = path
    if "memory" in mounts and "pids" in mounts:
        return Layout(
            version=1,
            memory_mount=mounts["memory"],
            pids_mount=mounts["pids"],
            memory_path=paths.get("memory", "/"),
            pids_path=paths.get("pids", "/"),
        )
    if unified:
        return Layout(version=2, unified_mount=unified, unified_path=paths.get("unified", "/"))
    return None


@dataclass(frozen=True)
class Plan:
    """The directories to create, the controllers to enable, and nsjail's flags."""

    version: int
    dirs: tuple[str, ...]
    v2_base: str = ""  # v2: the cgroup whose processes may have to move to base/host
    nsjail_args: tuple[str, ...] = ()


def plan(layout: Layout, *, memory_bytes: int, pids: int, root: str | None = None) -> Plan:
    caps = ("--cgroup_mem_max", str(memory_bytes), "--cgroup_pids_max", str(pids))
    if layout.version == 1:
        mem_parent = _join(root or layout.memory_path, PARENT)
        pids_parent = _join(root or layout.pids_path, PARENT)
        return Plan(
            version=1,
            dirs=(_abs(layout.memory_mount, mem_parent), _abs(layout.pids_mount, pids_parent)),
            nsjail_args=caps + (
                "--cgroup_mem_mount", layout.memory_mount, "--cgroup_mem_parent", mem_parent,
                "--cgroup_pids_mount", layout.pids_mount, "--cgroup_pids_parent", pids_parent,
            ),
        )
    mount = layout.unified_mount.rstrip("/")
    if root and (root == mount or root.startswith(mount + "/")):
        base = root
    else:
        base = _abs(layout.unified_mount, root or layout.unified_path)
    parent = os.path.join(base, PARENT)
    return Plan(
        version=2,
        dirs=(parent,),
        v2_base=base,
        nsjail_args=caps + ("--use_cgroupv2", "--cgroupv2_mount", parent),
    )


# What to do when the cgroup layer cannot be set up: the settings named as every source
# spells them (sandbox.config's schema derives the same names).
ADVICE = ("run as root, give a cgroup delegated to this user with cgroup_root (--cgroup-root, "
          "SANDBOX_CGROUP_ROOT), or run without this layer with cgroup off (--cgroup off, "
          "SANDBOX_CGROUP=off): the jails then have no memory or pids cap of their own, each "
          "task keeps its own limits (see the README)")


def check(p: Plan) -> None:
    """What ``prepare`` and nsjail will need, checked without changing anything: each parent
    cgroup, or the nearest directory above it that exists, is ours to write. JailError
    naming the directory, and what to do, if not."""
    for d in p.dirs:
        path = Path(d)
        while not path.exists() and path != path.parent:
            path = path.parent
        if not os.access(path, os.W_OK | os.X_OK):
            raise JailError(f"cannot set up the jail's cgroup: {path} is not writable by this "
                            f"user (uid {os.geteuid()}); {ADVICE}")


def prepare(p: Plan) -> None:
    """Create the parent cgroups (idempotent). JailError with the reason, and what to do,
    if we may not: nsjail creates each jail's cgroup inside them, as this user."""
    try:
        if p.version == 2:
            _delegate(Path(p.v2_base))
        for d in p.dirs:
            os.makedirs(d, exist_ok=True)
        if p.version == 2:
            _enable(Path(p.dirs[0]))
    except OSError as exc:
        raise JailError(f"cannot set up the jail's cgroup ({exc}); {ADVICE}") from exc
    check(p)  # they exist: a parent another user made (root, earlier) must still be ours


def jail_dirs(p: Plan, jailed_pid: int) -> list[Path]:
    """The cgroup directories nsjail makes for one jail: named after the jailed process's
    pid (the zygote's, on the host), not nsjail's own."""
    return [Path(d, f"NSJAIL.{jailed_pid}") for d in p.dirs]


def oom_kills(p: Plan, jailed_pid: int) -> int:
    """How many processes the kernel's OOM killer has killed in one jail's cgroup."""
    name = "memory.oom_control" if p.version == 1 else "memory.events"
    path = jail_dirs(p, jailed_pid)[0] / name
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def remove(dirs: list[Path], timeout_s: float) -> bool:
    """Remove these cgroups, waiting up to ``timeout_s`` for their processes to leave."""
    import errno
    import time

    end = time.monotonic() + timeout_s
    for d in dirs:
        while True:
            try:
                d.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError as exc:
                if exc.errno != errno.EBUSY or time.monotonic() >= end:
                    return False
                time.sleep(0.01)
    return True


def reclaim(p: Plan) -> list[str]:
    """Remove the jail cgroups whose jailed process is gone (nsjail removes its own when it
    ends cleanly; a ``kill -9`` of nsjail leaves them). An empty cgroup is removed with
    rmdir; one that still holds a process is busy and stays."""
    removed = []
    for parent in p.dirs:
        try:
            names = os.listdir(parent)
        except OSError:
            continue
        for name in names:
            pid = name[len("NSJAIL."):]
            if not name.startswith("NSJAIL.") or not pid.isdigit() or os.path.exists(f"/proc/{pid}"):
                continue
            try:
                os.rmdir(os.path.join(parent, name))
                removed.append(os.path.join(parent, name))
            except OSError:
                pass  # still has a process, or a sibling cgroup of its own: leave it
    return removed


def _delegate(base: Path) -> None:
    wanted = {"memory", "pids"}
    if wanted <= set((base / "cgroup.subtree_control").read_text().split()):
        return
    procs = (base / "cgroup.procs").read_text().split()
    if procs and base != Path("/sys/fs/cgroup"):
        host = base / "host"
        host.mkdir(exist_ok=True)
        for pid in procs:
            try:
                (host / "cgroup.procs").write_text(pid)
            except ProcessLookupError:
                pass
    _enable(base)


def _enable(cgroup: Path) -> None:
    present = set((cgroup / "cgroup.subtree_control").read_text().split())
    for c in ("memory", "pids"):
        if c not in present:
            (cgroup / "cgroup.subtree_control").write_text(f"+{c}")


def _join(path: str, name: str) -> str:
    return f"{path.strip('/')}/{name}".lstrip("/")


def _abs(mount: str, path: str) -> str:
    return os.path.join(mount, path.lstrip("/"))
