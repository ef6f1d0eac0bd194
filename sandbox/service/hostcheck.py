"""What this host lets a jail have, and so which runtimes can run here and why the others not.

A default Docker container (its seccomp profile, no CAP_SYS_ADMIN) or a kernel with
unprivileged user namespaces off refuses the namespaces nsjail creates, and then no jail
with them starts: ``sandbox.jail.namespaces.denied()`` says so in one line. ``runtimes(config)`` goes through
every runtime of ``sandbox.registry`` and says whether it can run on this host with these
settings, and if not, why and what would change that (``sandbox runtimes``, and
``sandbox exec`` when a runtime did not start).
"""

from __future__ import annotations

from dataclasses import dataclass

from sandbox import registry
from sandbox.config import PoolConfig
from sandbox.errors import SandboxError
from sandbox.jail import cgroups, launch, namespaces
from sandbox.pyodide import dist as pyodide_dist
from sandbox.pyodide.runtime import GIVEN_UP_WITHOUT_NAMESPACES, OPT_IN

@dataclass(frozen=True)
class Verdict:
    runtime: str
    works: bool
    why: str  # why not, or what it runs with (a layer given up)

    def line(self, *, version: bool = False) -> str:
        """``python: works``; with ``version``, the engine's as runners advertise it
        (``python 3.11.7: works``)."""
        name = f"{self.runtime} {registry.RUNTIMES[self.runtime].version}" if version else self.runtime
        return f"{name}: {'works' if self.works else 'cannot run'}" + (
            f" ({self.why})" if self.why else "")


def runtimes(config: PoolConfig) -> list[Verdict]:
    """Each runtime, whether it can run on this host with ``config``, and why (not)."""
    try:
        launch.locate_nsjail(config.nsjail_path)
        missing = ""
    except SandboxError as exc:
        missing = str(exc)
    cgroup = "" if missing else _cgroup_problem(config)
    denied = namespaces.denied()
    out = []
    for facts in registry.RUNTIMES.values():
        name = facts.name
        if missing:
            out.append(Verdict(name, False, missing))
            continue
        problem = _installed(name, config) or cgroup
        if problem:
            out.append(Verdict(name, False, problem))
            continue
        without = name == "pyodide" and config.pyodide.no_namespaces
        if without:
            out.append(Verdict(name, True, f"without namespaces, as configured: it gives up "
                                           f"{GIVEN_UP_WITHOUT_NAMESPACES}"))
        elif denied and facts.runs_without_namespaces:
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
    if config.cgroup == "off":
        return ""
    try:
        plan = launch.cgroup_plan(config)
        if plan is not None:
            cgroups.check(plan)
    except SandboxError as exc:
        return str(exc)
    return ""


def _installed(runtime: str, config: PoolConfig) -> str:
    """What is missing on this host for ``runtime`` to start, or ""."""
    if runtime == "javascript":
        try:
            import quickjs  # noqa: F401
        except ImportError:
            return "the quickjs-ng package is not installed"
    if runtime == "pyodide":
        try:
            if pyodide_dist.installed(config.pyodide.cache_dir, config.pyodide.node) is None:
                return "its distribution is not installed: run `sandbox pyodide install`"
        except SandboxError as exc:
            return str(exc)
    return ""
