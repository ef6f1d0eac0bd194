"""CommonJS resolution for npm packages mounted read-only at ``ROOT`` (sandbox/jail/npm.py).

``resolve`` is pure: Node's rules (a subset) over a file system it is handed as two
functions, so unit tests can give it a dictionary. library/n8n.js evaluates what it finds.

- ``./x``, ``../x``, ``/x``: a file (``x``, ``x.js``, ``x.json``), else a directory;
- a bare name (``lodash``, ``lodash/fp``, ``@scope/name``): ``node_modules/NAME`` in the
  requiring module's directory and each one above it, up to ``ROOT``;
- a directory: package.json's ``exports`` (a string, or ``"."`` / a subpath with the
  ``require``, ``node`` or ``default`` condition), else ``main``, else ``index.js`` /
  ``index.json``.

Nothing outside ``ROOT`` is ever an answer: a path that leaves it resolves to None.
"""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Callable
from typing import Any

ROOT = "/sandbox/npm"  # where the jail mounts the operator's npm packages
_CONDITIONS = ("require", "node", "default")

IsFile = Callable[[str], bool]
Read = Callable[[str], "str | None"]


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _as_file(path: str, is_file: IsFile) -> str | None:
    for candidate in (path, path + ".js", path + ".json", path + ".cjs"):
        if is_file(candidate):
            return candidate
    return None


def _condition(target: Any) -> str | None:
    """An ``exports`` target as CommonJS's require sees it: a string, or the first of
    require / node / default among conditions (nested), or the first of an array's."""
    if isinstance(target, str):
        return target
    if isinstance(target, list):
        for t in target:
            found = _condition(t)
            if found:
                return found
        return None
    if isinstance(target, dict):
        for key in _CONDITIONS:
            if key in target:
                found = _condition(target[key])
                if found:
                    return found
    return None


def _exported(exports: Any, subpath: str) -> str | None:
    """The file ``exports`` maps ``subpath`` (``"."`` or ``"./x"``) to, or None."""
    if isinstance(exports, dict) and any(k.startswith(".") for k in exports):
        return _condition(exports.get(subpath))
    return _condition(exports) if subpath == "." else None


def _package(directory: str, read: Read) -> dict[str, Any] | None:
    text = read(posixpath.join(directory, "package.json"))
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _as_directory(path: str, is_file: IsFile, read: Read) -> str | None:
    pkg = _package(path, read)
    if pkg is not None:
        target = _exported(pkg["exports"], ".") if "exports" in pkg else None
        if target is None and isinstance(pkg.get("main"), str):
            target = pkg["main"]
        if target:
            full = posixpath.normpath(posixpath.join(path, target))
            found = _as_file(full, is_file) or _index(full, is_file)
            if found:
                return found
    return _index(path, is_file)


def _index(path: str, is_file: IsFile) -> str | None:
    for name in ("index.js", "index.json", "index.cjs"):
        if is_file(posixpath.join(path, name)):
            return posixpath.join(path, name)
    return None


def split_name(request: str) -> tuple[str, str]:
    """A bare request as (package name, subpath): ``@a/b/c`` -> (``@a/b``, ``./c``)."""
    parts = request.split("/")
    n = 2 if request.startswith("@") else 1
    rest = "/".join(parts[n:])
    return "/".join(parts[:n]), ("./" + rest if rest else ".")


def resolve(request: str, from_dir: str, is_file: IsFile, read: Read,
            root: str = ROOT) -> str | None:
    """The file ``require(request)`` loads from a module in ``from_dir``, or None."""
    if not request or "\0" in request:
        return None
    if request.startswith(("./", "../", "/")) or request in (".", ".."):
        path = posixpath.normpath(posixpath.join(from_dir, request))
        if not _inside(path, root):
            return None
        found = _as_file(path, is_file) or _as_directory(path, is_file, read)
        return found if found and _inside(found, root) else None
    name, subpath = split_name(request)
    if not name or name.startswith(".") or any(p in ("", ".", "..") for p in name.split("/")):
        return None
    directory = posixpath.normpath(from_dir)
    while _inside(directory, root):
        base = posixpath.join(directory, "node_modules", name)
        found = None
        pkg = _package(base, read)
        if pkg is not None and "exports" in pkg and subpath != ".":
            # an exports map is the package's whole public face: a path it does not list
            # is not found (Node: ERR_PACKAGE_PATH_NOT_EXPORTED)
            target = _exported(pkg["exports"], subpath)
            if target:
                found = _as_file(posixpath.normpath(posixpath.join(base, target)), is_file)
        else:
            path = posixpath.normpath(posixpath.join(base, subpath))
            found = _as_file(path, is_file) if subpath != "." else None
            found = found or _as_directory(path, is_file, read)
        if found and _inside(found, root):
            return found
        if directory == root:
            break
        directory = posixpath.dirname(directory)
    return None


def _real_inside(path: str, root: str) -> bool:
    real = os.path.realpath(path)
    return _inside(real, os.path.realpath(root))


def host_resolve(request: Any, from_dir: Any) -> str | None:
    """``resolve`` on the jail's file system (the executor's callable for n8n.js)."""
    if not isinstance(request, str) or not isinstance(from_dir, str):
        return None
    found = resolve(request, from_dir, lambda p: os.path.isfile(p) and _real_inside(p, ROOT),
                    host_read)
    return found


def host_read(path: Any) -> str | None:
    """The text of a file under ``ROOT`` (a module's source, a JSON file), or None."""
    if not isinstance(path, str) or not _inside(posixpath.normpath(path), ROOT):
        return None
    if not _real_inside(path, ROOT):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, ValueError):
        return None
