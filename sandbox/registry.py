"""The runtimes this service knows, and each one's facts, in one place every layer consults.

A runtime's facts: the names a request may use for it, the third-party packages its jail
needs inside (importable names, copied into the jail's staging directory), whether Python's
import allow-lists apply and which policies a task may ask for, whether its children are
workers of their own, whether it can run without namespaces, and the version a runner
advertises. It imports nothing of this package: every layer reads it, none is read by it.
What a runtime's jail adds beyond the common one (mounts, namespaces, the workers' settings)
is its host module's business (``sandbox.pyodide.runtime`` for pyodide); the pools hand
it to the launcher (``sandbox.host.pools.jail_setup``).
"""

from __future__ import annotations

import functools
import platform
from collections.abc import Callable
from dataclasses import dataclass


def _python_version() -> str:
    return platform.python_version()


PYODIDE_VERSION = "0.25.1"  # the pinned distribution (``sandbox.pyodide.dist`` installs it)
PYODIDE_PYTHON = "3.11.3"  # the CPython inside it


def _pyodide_version() -> str:
    # the Python inside first, so that a task asking for version "3.11" finds it
    return f"{PYODIDE_PYTHON}-pyodide-{PYODIDE_VERSION}"


def _quickjs_version() -> str:
    try:
        from importlib.metadata import version

        return "quickjs-ng-" + version("quickjs-ng")
    except Exception:  # metadata missing in an odd install: the engine is still quickjs-ng
        return "quickjs-ng"


@dataclass(frozen=True)
class Runtime:
    name: str
    aliases: tuple[str, ...]
    jail_packages: tuple[str, ...]  # top-level importable names mounted at /sandbox/lib
    language_layer: bool  # Python's import allow-lists apply (stdlib_allow, imports, ...)
    shared_output: bool  # its children print into a file the host can read (runtimes.output)
    _version: Callable[[], str]
    policies: tuple[str, ...] = ("default",)  # what a task's ``policy`` may name
    zygote_preload: bool = False  # the operator's ``preload`` modules load in its zygote
    # Its children exec a worker program of their own (pyodide: Node.js, which cannot fork a
    # warm interpreter): each says ready when it can take a task, serves several tasks, and
    # every task has a reuse key (``sandbox.request``), so the pool's worker rules apply.
    worker_children: bool = False
    # it can run on a host that denies namespaces, with the operator's opt-in (its set-up,
    # ``sandbox.jail.launch.RuntimeSetup``, says how and what that gives up)
    runs_without_namespaces: bool = False
    # a session's call can be interrupted at its timeout and the process live on (python:
    # SIGINT raises KeyboardInterrupt); else such a call ends its session (QuickJS cannot be
    # interrupted from outside without giving up its calls into the host)
    interruptible: bool = False
    # a task may ask for its stdout and stderr apart, and for them streamed while it runs
    # (its executor writes through ``runtimes.output`` with the stream named)
    streams: bool = False
    stdin: bool = False  # a task may hand its snippet a standard input
    files: bool = False  # a task may have a directory of its own (``files_mb``: runtimes.files)

    @property
    def version(self) -> str:
        return _cached_version(self.name, self._version)


@functools.cache
def _cached_version(name: str, probe: Callable[[], str]) -> str:
    return probe()


RUNTIMES: dict[str, Runtime] = {
    r.name: r for r in (
        Runtime("python", ("py",), ("msgpack", "RestrictedPython"), True, True, _python_version,
                policies=("default", "restricted"), zygote_preload=True, interruptible=True, streams=True,
                stdin=True, files=True),
        Runtime("javascript", ("js",), ("msgpack", "quickjs", "_quickjs"), False, True,
                _quickjs_version, streams=True),
        # msgpack: the zygote's protocol, and worker.mjs copies its pure-Python part into
        # Pyodide for the codec there
        Runtime("pyodide", (), ("msgpack",), True, False, _pyodide_version,
                worker_children=True, runs_without_namespaces=True),
    )
}

#: Every name a request may use, mapped to the runtime that serves it.
ALIASES: dict[str, str] = {
    alias: r.name for r in RUNTIMES.values() for alias in (r.name, *r.aliases)
}


def canonical(name: object) -> str | None:
    """The runtime serving ``name`` (an alias such as ``js`` included, any case), or None."""
    return ALIASES.get(name.lower()) if isinstance(name, str) else None


def known() -> str:
    """The names a request may use, for error messages."""
    return ", ".join(sorted(ALIASES))
