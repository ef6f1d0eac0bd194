"""What a user would otherwise do, each as a callable that runs one snippet.

Snippets are function bodies (the service's contract); ``as_script`` turns one into a
program for the process-per-snippet baselines.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from typing import Any

import seccomp
from sandbox.jail import launch, mounts
from sandbox.config import PoolConfig


def as_script(body: str) -> str:
    return "def snippet(data):\n" + textwrap.indent(body, "    ") + "\nsnippet(None)\n"


def cold_nsjail(body: str) -> Callable[[], None]:
    """One fresh ``nsjail ... python3 -c`` per snippet, with the pool's isolation flags."""
    config = PoolConfig()
    plan = launch.cgroup_plan(config)
    if plan is not None:
        from sandbox.jail import cgroups

        cgroups.prepare(plan)
    argv = launch.nsjail_argv(
        launch.locate_nsjail(None),
        [mounts.JAIL_PYTHON, "-I", "-S", "-B", "-c", as_script(body)],
        seccomp_policy=seccomp.jail_policy(),
        cgroup_args=plan.nsjail_args if plan else (),
        mounts=mounts.mounts_for("python", mounts.interpreter()),
        as_root=os.geteuid() == 0,
    )
    argv[argv.index("--time_limit") + 1] = "10"

    def run() -> None:
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env={})

    return run


def plain_subprocess(body: str) -> Callable[[], None]:
    """``subprocess.run([python3, -c])`` per snippet: no sandbox at all."""
    argv = [sys.executable, "-I", "-S", "-c", as_script(body)]

    def run() -> None:
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)

    return run


def in_process_exec(body: str, data: Any = None) -> Callable[[], object]:
    """``exec`` of the snippet in this process: no isolation, the floor."""
    source = "def snippet(data):\n" + textwrap.indent(body, "    ") + "\n"

    def run() -> object:
        namespace: dict[str, Any] = {}
        exec(compile(source, "<snippet>", "exec"), namespace)
        return namespace["snippet"](data)

    return run


def in_process_restricted(body: str, data: Any = None) -> Callable[[], object]:
    """RestrictedPython's compile and a guarded run in this process: what the restricted
    policy costs without a jail (the compile is most of it)."""
    from runtimes.protocol import Imports
    from runtimes.python import imports, restricted

    def run() -> object:
        namespace = restricted.namespace(imports.guard(Imports()))
        exec(restricted.compile_snippet(body, "<snippet>"), namespace)
        return namespace[restricted.FUNCTION](data)

    return run


def in_process_quickjs(body: str) -> Callable[[], object]:
    """A fresh ``quickjs.Context()`` and one eval in this process: no jail, the JS floor."""
    import quickjs

    source = f"(function (data) {{\n{body}\n}})(null)"

    def run() -> object:
        return quickjs.Context().eval(source)

    return run
