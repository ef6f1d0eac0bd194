"""What a user would otherwise do, each as a callable that runs one trivial snippet."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import seccomp
from sandbox import jail
from sandbox.config import PoolConfig


def cold_nsjail(code: str = "print(6 * 7)") -> Callable[[], None]:
    """One fresh ``nsjail ... python3 -c`` per snippet, with the pool's isolation flags."""
    config = PoolConfig()
    plan = jail.cgroup_plan(config)
    if plan is not None:
        from sandbox import cgroups

        cgroups.prepare(plan)
    argv = jail.nsjail_argv(
        jail.locate_nsjail(None),
        [jail.JAIL_PYTHON, "-I", "-S", "-B", "-c", code],
        seccomp_policy=seccomp.jail_policy(),
        cgroup_args=plan.nsjail_args if plan else (),
        mounts=jail.mounts_for("python", jail.interpreter()),
        as_root=os.geteuid() == 0,
    )
    argv[argv.index("--time_limit") + 1] = "10"

    def run() -> None:
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env={})

    return run


def plain_subprocess(code: str = "print(6 * 7)") -> Callable[[], None]:
    """``subprocess.run([python3, -c])`` per snippet: no sandbox at all."""
    argv = [sys.executable, "-I", "-S", "-c", code]

    def run() -> None:
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)

    return run


def in_process_exec(code: str = "result = 6 * 7") -> Callable[[], None]:
    """``exec`` in this process: no isolation, the floor."""

    def run() -> None:
        exec(compile(code, "<snippet>", "exec"), {})

    return run


def in_process_quickjs(code: str = "(function () { return 6 * 7 })()") -> Callable[[], None]:
    """A fresh ``quickjs.Context()`` and one eval in this process: no jail, the JS floor."""
    import quickjs

    def run() -> None:
        quickjs.Context().eval(code)

    return run
