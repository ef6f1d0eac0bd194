"""What this host lets a jail have, and so which runtimes can run here and why the others not.

A default Docker container (its seccomp profile, no CAP_SYS_ADMIN) or a kernel with
unprivileged user namespaces off refuses the namespaces nsjail creates, and then no jail
with them starts: ``namespaces()`` says so in one line. ``runtimes(config)`` goes through
every runtime of ``sandbox.registry`` and says whether it can run on this host with these
settings, and if not, why and what would change that (``sandbox runtimes``, and
``sandbox exec`` when a runtime did not start).
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sandbox.config import PoolConfig

# The namespaces nsjail asks for (linux/sched.h).
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
JAIL_NAMESPACES = (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER
                   | CLONE_NEWPID | CLONE_NEWNET)
# loaded before any fork: the probe child of a threaded process must not take the loader's lock
_libc = ctypes.CDLL(None, use_errno=True)


@functools.cache
def namespaces() -> str | None:
    """None if a process of ours may create the jail's namespaces, else why it may not.

    Probed once per process, in a forked child (unshare needs a single-threaded caller for a
    user namespace, and the namespaces it makes must not be ours)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the probe child
        code = 0
        try:
            if _libc.unshare(JAIL_NAMESPACES) != 0:
                code = ctypes.get_errno() or 255
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        return None
    if os.WIFEXITED(status):
        code = os.WEXITSTATUS(status)
        name = errno.errorcode.get(code, str(code))
        return (f"unshare of the user, mount, pid, network, ipc, uts and cgroup namespaces "
                f"fails with {name} ({os.strerror(code)})")
    return "the namespace probe died"


@dataclass(frozen=True)
class Verdict:
    runtime: str
    works: bool
    why: str  # why not, or what it runs with (a layer given up)

    def line(self) -> str:
        return f"{self.runtime}: {'works' if self.works else 'cannot run'}" + (
            f" ({self.why})" if self.why else "")


def runtimes(config: PoolConfig) -> list[Verdict]:
    """Each runtime, whether it can run on this host with ``config``, and why (not)."""
    from sandbox import registry
    from sandbox.jail import launch
    from sandbox.errors import SandboxError

    try:
        launch.locate_nsjail(config.nsjail_path)
        missing = ""
    except SandboxError as exc:
        missing = str(exc)
    cgroup = "" if missing else _cgroup_problem(config)
    denied = namespaces()
    out = []
    for facts in registry.RUNTIMES.values():
        name = facts.name
        if missing:
            out.append(Verdict(name, False, missing))
            continue
        problem = _installed(name) or cgroup
        if problem:
            out.append(Verdict(name, False, problem))
            continue
        without = name == "pyodide" and config.pyodide.no_namespaces
        if without:
            from sandbox.pyodide.runtime import GIVEN_UP_WITHOUT_NAMESPACES

            out.append(Verdict(name, True, f"without namespaces, as configured: it gives up "
                                           f"{GIVEN_UP_WITHOUT_NAMESPACES}"))
        elif denied and facts.jail_setup is not None:
            from sandbox.pyodide.runtime import OPT_IN

            out.append(Verdict(name, False, f"this host denies namespaces: {denied}; it can run "
                                            f"without them with {OPT_IN}"))
        elif denied:
            out.append(Verdict(name, False, f"this host denies namespaces, which its jail "
                                            f"needs: {denied}"))
        else:
            out.append(Verdict(name, True, ""))
    return out


def _cgroup_problem(config: PoolConfig) -> str:
    """Why this user cannot set up the cgroup layer ``config`` asks for (every jail has it), or
    "" (also when the layer is off)."""
    from sandbox.jail import cgroups
    from sandbox.jail import launch
    from sandbox.errors import SandboxError

    if config.cgroup == "off":
        return ""
    try:
        plan = launch.cgroup_plan(config)
        if plan is not None:
            cgroups.check(plan)
    except SandboxError as exc:
        return str(exc)
    return ""


def _installed(runtime: str) -> str:
    """What is missing on this host for ``runtime`` to start, or ""."""
    from sandbox.errors import SandboxError

    if runtime == "javascript":
        try:
            import quickjs  # noqa: F401
        except ImportError:
            return "the quickjs-ng package is not installed"
    if runtime == "pyodide":
        from sandbox.pyodide import dist as pyodide_dist

        try:
            if pyodide_dist.installed() is None:
                return "its distribution is not installed: run `sandbox pyodide install`"
        except SandboxError as exc:
            return str(exc)
    return ""
