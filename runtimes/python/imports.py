"""The import guard of a snippet: its ``import`` statements pass an allow-list.

The snippet runs with a ``__builtins__`` of its own whose ``__import__`` checks the name
against the task's lists before anything is loaded, so a module the zygote preloaded is no
more reachable than one on disk. Imports made by library code run with the real builtins
and are not checked: an allowed module may use what it needs. This is the language layer;
the kernel layers (namespaces, seccomp, limits) hold whatever a snippet reaches around it.
"""

from __future__ import annotations

import builtins
import sys
from collections.abc import Callable
from typing import Any

from runtimes.protocol import Imports

ALL = "*"
#: The operator's setting that governs a module, by whether it is in the standard library.
SETTING = {
    True: "stdlib_allow (SANDBOX_STDLIB_ALLOW, --stdlib-allow)",
    False: "external_allow (SANDBOX_EXTERNAL_ALLOW, --external-allow)",
}


# Modules the interpreter's C code imports on a snippet's behalf, through the snippet's own
# __import__ (datetime.strptime and time.strptime import _strptime, datetime.strftime imports
# time, warnings import linecache, ...): always let through, or built-ins would break under a
# narrow list. None of them reaches anything the curated list does not.
IMPLICIT = frozenset({"_strptime", "time", "linecache", "copyreg", "warnings", "encodings"})


class ImportDenied(ImportError):
    """An import the task's allow-list does not cover."""


def is_stdlib(name: str) -> bool:
    return name.partition(".")[0] in sys.stdlib_module_names


def allowed_by(allowed: frozenset[str], name: str) -> bool:
    """Whether ``name`` (dotted) is covered by a list of names: itself, a package above it,
    or ``*``."""
    if ALL in allowed:
        return True
    parts = name.split(".")
    return any(".".join(parts[:i]) in allowed for i in range(1, len(parts) + 1))


def checker(policy: Imports) -> Callable[[str], None]:
    """The check of one dotted module name against ``policy``: raises ``ImportDenied``."""
    stdlib = frozenset(policy.stdlib)
    external = frozenset(policy.external)
    narrowed = policy.narrowed

    def check(name: str) -> None:
        if name in IMPLICIT:
            return
        in_stdlib = is_stdlib(name)
        if not allowed_by(stdlib if in_stdlib else external, name):
            kind = "standard-library" if in_stdlib else "third-party"
            if narrowed:
                raise ImportDenied(f"import of {kind} module {name!r} is not in this task's "
                                   f"imports (the imports= of the request, --import)", name=name)
            raise ImportDenied(f"import of {kind} module {name!r} is not allowed here; "
                               f"the operator can allow it with {SETTING[in_stdlib]}",
                               name=name)

    return check


def guard(policy: Imports, on_import: Callable[[Any], None] | None = None) -> Callable[..., Any]:
    """An ``__import__`` for snippets that only lets through what ``policy`` lists;
    ``on_import`` sees every module it hands out (worker mode watches them)."""
    stdlib = frozenset(policy.stdlib)
    external = frozenset(policy.external)
    real_import = builtins.__import__
    check = checker(policy)

    def partly_allowed(name: str) -> bool:
        prefix = name + "."
        return any(n.startswith(prefix) for n in (stdlib if is_stdlib(name) else external))

    def guarded_import(name: str, globals: Any = None, locals: Any = None,
                       fromlist: Any = (), level: int = 0) -> Any:
        if level:
            raise ImportDenied("relative imports are not available to snippets", name=name)
        if not isinstance(name, str):
            raise TypeError("module name must be a str")
        try:
            check(name)
        except ImportDenied:
            # ``from pkg import sub`` may name an allowed submodule of a package not allowed;
            # only then is the submodule what a denial names (``from zoneinfo import
            # ZoneInfo`` names zoneinfo: nothing under it is allowed, ZoneInfo is a class)
            subs = [f"{name}.{item}" for item in (fromlist or ()) if isinstance(item, str)]
            if not subs or not partly_allowed(name):
                raise
            for sub in subs:
                check(sub)
        module = real_import(name, globals, locals, fromlist, level)
        if on_import is not None:
            on_import(module)
            if not fromlist and "." in name:  # ``import a.b`` binds a; b is a's attribute
                on_import(sys.modules.get(name))
            for item in fromlist or ():
                if isinstance(item, str):
                    on_import(sys.modules.get(f"{module.__name__}.{item}"))
        return module

    return guarded_import


# The running task's check of library code's ``importlib.import_module`` calls, or None (the
# task lets them through): one item, set for a task and put back after it. The wrapper that
# reads it is installed once, before a worker's pristine state is taken, so a task changes no
# module's namespace (a Python worker retires when one changed: runtimes/python/leftovers.py,
# which compares this list by its item).
_library_check: list[Callable[[str], None] | None] = [None]


def install_library_check() -> None:
    """``importlib.import_module`` through the running task's check (``check_library_imports``);
    once per process, in the zygote before the preloads import what may hold on to it."""
    import importlib

    original = importlib.import_module
    if getattr(original, "__wrapped__", None) is not None:
        return

    def import_module(name: str, package: str | None = None,
                      _current: list[Callable[[str], None] | None] = _library_check,
                      _original: Callable[..., Any] = original) -> Any:
        check = _current[0]
        if check is not None and isinstance(name, str):
            if name.startswith(".") and isinstance(package, str):
                dots = len(name) - len(name.lstrip("."))
                base = package.rsplit(".", dots - 1)[0] if dots > 1 else package
                check(f"{base}.{name[dots:]}" if name[dots:] else base)
            else:
                check(name)
        return _original(name, package)

    import_module.__wrapped__ = original  # type: ignore[attr-defined]
    import_module.__doc__ = original.__doc__
    importlib.import_module = import_module


def check_library_imports(policy: Imports) -> Callable[[], None]:
    """``policy.transitive`` false (n8n's ``N8N_RUNNERS_ALLOW_TRANSITIVE_IMPORTS`` unset): an
    allowed package's own ``importlib.import_module`` calls (how packages load optional
    dependencies and plugins) pass the lists too, as in n8n's runner; a package's plain
    ``import`` statements run with the real builtins, unchecked, there as here (through the
    wrapper ``install_library_check`` put in place, once). Returns what ends the check (after
    the task)."""
    _library_check[0] = checker(policy)
    return _end_library_check


def _end_library_check() -> None:
    _library_check[0] = None


def snippet_builtins(policy: Imports, on_import: Callable[[Any], None] | None = None) -> dict[str, Any]:
    """A copy of the builtins whose ``__import__`` is the guard."""
    namespace = dict(builtins.__dict__)
    namespace["__import__"] = guard(policy, on_import)
    return namespace
