"""The runtimes this service knows, and each one's facts, in one place every layer consults.

A runtime's facts: the names a request may use for it, the third-party packages its jail
needs inside (importable names, copied into the jail's staging directory), whether Python's
language layer (``policy``, ``imports``) applies, and the version a runner advertises.
"""

from __future__ import annotations

import functools
import platform
from collections.abc import Callable
from dataclasses import dataclass


def _python_version() -> str:
    return platform.python_version()


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
    language_layer: bool  # Python's policy and import allow-lists apply
    shared_output: bool  # its children print into a file the host maps (runtimes.output)
    _version: Callable[[], str]

    @property
    def version(self) -> str:
        return _cached_version(self.name, self._version)


@functools.cache
def _cached_version(name: str, probe: Callable[[], str]) -> str:
    return probe()


RUNTIMES: dict[str, Runtime] = {
    r.name: r for r in (
        Runtime("python", ("py",), ("msgpack", "RestrictedPython"), True, True, _python_version),
        Runtime("javascript", ("js",), ("msgpack", "quickjs", "_quickjs"), False, True,
                _quickjs_version),
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
