"""Which modules a Python snippet may import: the operator's allow-lists and a task's choice.

Two lists, like n8n's ``N8N_RUNNERS_STDLIB_ALLOW`` / ``N8N_RUNNERS_EXTERNAL_ALLOW``:
``stdlib_allow`` for standard-library modules and ``external_allow`` for third-party ones, by
top-level name (``urllib.parse`` allows that submodule only), ``*`` for all. The default
standard-library list is ``SAFE_STDLIB`` (data, text, maths and time, nothing that reaches
the file system, processes, the network or the interpreter's internals); the default
third-party list is empty. A task may narrow the operator's lists (``imports=[...]``), never
widen them. Pure: no I/O; the child enforces the result (``runtimes/python/imports.py``).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterable
from dataclasses import dataclass

from runtimes.protocol import Imports
from runtimes.python.imports import ALL, SETTING, allowed_by, is_stdlib
from sandbox.errors import ConfigError

#: The standard-library modules snippets may import unless the operator says otherwise.
SAFE_STDLIB: tuple[str, ...] = (
    "array", "base64", "binascii", "bisect", "calendar", "cmath", "collections", "contextlib",
    "copy", "csv", "dataclasses", "datetime", "decimal", "difflib", "enum", "fractions",
    "functools", "hashlib", "heapq", "hmac", "html", "io", "ipaddress", "itertools", "json",
    "math", "numbers", "operator", "pprint", "random", "re", "reprlib", "secrets",
    "statistics", "string", "struct", "textwrap", "time", "typing", "unicodedata",
    "urllib.parse", "uuid", "zlib",
)

#: What the n8n runner's Python Code nodes may import by default: the safe set and the other
#: ordinary modules real Code nodes use (time zones, an in-memory sqlite3, asyncio, mail and
#: XML parsing, compression of bytes in memory, logging, ...). What they could reach beyond
#: the language layer (files, processes, sockets) the kernel layers refuse: the jail has no
#: writable path and no network, and its seccomp filter no process or socket creation.
ORDINARY_STDLIB: tuple[str, ...] = tuple(sorted({n for n in SAFE_STDLIB if n != "urllib.parse"} | {
    "abc", "asyncio", "bz2", "codecs", "colorsys", "contextvars", "email", "fnmatch",
    "graphlib", "gzip", "http", "keyword", "locale", "logging", "lzma", "mimetypes", "quopri",
    "queue", "sched", "shlex", "sqlite3", "traceback", "types", "urllib", "warnings",
    "weakref", "xml", "zipfile", "zoneinfo",
} | ({"tomllib"} if "tomllib" in sys.stdlib_module_names else set())))


def resolve(names: Iterable[str], default: Iterable[str], setting: str) -> frozenset[str]:
    """An allow-list setting's value: names that replace the default list, or names that all
    start with ``+`` and are added to it (``+sys``). An empty value is the default."""
    names = [n.strip() for n in names if n.strip()]
    added = [n for n in names if n.startswith("+")]
    if not names:
        return frozenset(default)
    if added and len(added) != len(names):
        raise ConfigError(f"{setting}: mixes names that add to the default list (+name) with names "
                          f"that replace it; write +name for every module to add, or list every "
                          f"module to replace the default")
    if added:
        return frozenset(default) | {n[1:] for n in added}
    return frozenset(names)


def _valid(name: str) -> bool:
    return name == ALL or (0 < len(name) <= 128 and all(
        part.isidentifier() for part in name.split(".")))


@dataclass(frozen=True)
class ImportPolicy:
    stdlib: frozenset[str]
    external: frozenset[str]

    narrowed: bool = False  # a task's own narrowing of the operator's lists
    # library code's own importlib.import_module calls skip the lists (n8n's
    # N8N_RUNNERS_ALLOW_TRANSITIVE_IMPORTS); false: they are checked like the snippet's
    transitive: bool = True

    @classmethod
    def of(cls, stdlib: Iterable[str] = SAFE_STDLIB, external: Iterable[str] = (),
           transitive: bool = True) -> ImportPolicy:
        stdlib = resolve(stdlib, SAFE_STDLIB, "stdlib_allow")
        external = resolve(external, (), "external_allow")
        for in_stdlib, names in ((True, stdlib), (False, external)):
            bad = sorted(n for n in names if not _valid(n))
            if bad:
                raise ConfigError(f"{SETTING[in_stdlib].split()[0]}: not a module name: {bad[0]!r}")
        wrong = sorted(n for n in stdlib if n != ALL and not is_stdlib(n))
        if wrong:
            raise ConfigError(f"stdlib_allow: {wrong[0]!r} is not a standard-library module "
                              f"(third-party modules go in external_allow)")
        return cls(stdlib, external, transitive=transitive)

    def allows(self, name: str) -> bool:
        return allowed_by(self.stdlib if is_stdlib(name) else self.external, name)

    def narrow(self, requested: Iterable[str] | None) -> ImportPolicy:
        """The policy for a task that asks for ``requested`` (None: the operator's lists)."""
        if requested is None:
            return self
        names = list(requested)
        for name in names:
            if name == ALL or not _valid(name):
                raise ConfigError(f"imports: {name!r} is not a module name")
            if not self.allows(name):
                raise ConfigError(f"imports: {name!r} is not allowed by the operator; "
                                  f"{SETTING[is_stdlib(name)]} would allow it")
        return ImportPolicy(frozenset(n for n in names if is_stdlib(n)),
                            frozenset(n for n in names if not is_stdlib(n)), narrowed=True,
                            transitive=self.transitive)

    @functools.cached_property
    def imports(self) -> Imports:
        """The lists as the child reads them (computed once: every task of a pool sends the
        operator's lists unless it narrows them)."""
        return Imports(tuple(sorted(self.stdlib)), tuple(sorted(self.external)), self.narrowed,
                       self.transitive)
