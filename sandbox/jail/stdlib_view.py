"""The standard library a jail mounts: what the runtime needs and what the allow-list names.

So the kernel layer agrees with the language layer: a standard-library module that is
neither imported by the jail's own code (zygote, child, executors, codec) nor allowed to
snippets is not in the jail's file system at all, and a snippet that walks around the import
guard finds nothing to load (``http``, ``email``, ``xml``, ``multiprocessing``, ``sqlite3``,
``pickle``... are simply absent).

Which files: a probe runs the jail's interpreter on the host with the jail's ``sys.path``,
imports the runtime's modules as the zygote does, then every allowed module with its
submodules, and every module the allowed modules' own files import lazily (inside
functions); whatever the standard library contributed to ``sys.modules`` is kept, packages
whole (``encodings`` always: codecs are found by name at run time). The view is a copy in
the staging directory, made once per allow-list and host process; the probe's answer is
remembered in ``~/.cache/snippet-sandbox`` under a key of everything it depends on.

Not applied (the whole standard library is mounted) when the allow-list is ``*``, or when
a packages environment is mounted: third-party code imports the standard library in ways a
probe cannot enumerate.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess

from sandbox.errors import JailError

_PROBE = r"""
import ast, importlib, json, os, pkgutil, sys
runtime, allowed = sys.argv[1], json.loads(sys.argv[2])

def attempt(name):
    try:
        importlib.import_module(name)
    except BaseException:
        pass

from runtimes import child, codec, framing, outcome, protocol, seccomp_filter, zygote
executor = importlib.import_module(f"runtimes.{runtime}.executor")
executor.preload(())
if getattr(executor, "survey", None) is not None:  # as the zygote does after preload
    executor.survey()
executor.rehearse()
for name in ("_strptime", "encodings.idna", "encodings.latin_1", "encodings.ascii"):
    attempt(name)  # loaded lazily by C code (time.strptime, codec lookups)
for name in allowed:
    attempt(name)
    module = sys.modules.get(name)
    if module is not None and hasattr(module, "__path__"):
        for info in pkgutil.walk_packages(module.__path__, name + "."):
            attempt(info.name)
tops = {name.partition(".")[0] for name in allowed}
seen = set()
for name in list(sys.modules):
    path = getattr(sys.modules.get(name), "__file__", None) or ""
    if name.partition(".")[0] not in tops or not path.endswith(".py") or path in seen:
        continue
    seen.add(path)
    try:
        tree = ast.parse(open(path, "rb").read())
    except (OSError, SyntaxError, ValueError):
        continue
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                attempt(alias.name)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            attempt(node.module)
std = os.path.dirname(os.__file__)
files = sorted({m.__file__ for m in list(sys.modules.values())
                if isinstance(getattr(m, "__file__", None), str)
                and m.__file__.startswith(std + os.sep)})
sys.__stdout__.write(json.dumps({"stdlib": std, "files": files}))
"""


def probe(python_binary: str, staged_root: str, runtime: str,
          allowed: tuple[str, ...]) -> tuple[str, list[str]]:
    """(the interpreter's stdlib directory, the stdlib files the jail needs)."""
    done = subprocess.run(
        [python_binary, "-I", "-S", "-B", "-c",
         f"import sys; sys.path[:0] = [{staged_root!r}, {os.path.join(staged_root, 'lib')!r}]\n"
         + _PROBE, runtime, json.dumps(sorted(allowed))],
        capture_output=True, text=True, check=False, env={}, cwd="/",
    )
    if done.returncode != 0:
        raise JailError(f"probing the standard library the jail needs failed: "
                        f"{done.stderr.strip().splitlines()[-1:] or done.returncode}")
    out = json.loads(done.stdout)
    return out["stdlib"], out["files"]


def _cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "snippet-sandbox")


def _probe_key(python_binary: str, python_stdlib: str, staged_root: str, runtime: str,
               allowed: tuple[str, ...]) -> str:
    """What the probe's answer depends on: the interpreter, its standard library, our code
    and packages as staged, the runtime and the allow-list."""
    digest = hashlib.sha256()
    for path in (python_binary, python_stdlib):
        st = os.stat(path)
        digest.update(f"{os.path.realpath(path)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    for dirpath, dirnames, filenames in os.walk(staged_root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("stdlib-"))
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            st = os.stat(path)
            rel = os.path.relpath(path, staged_root)
            digest.update(f"{rel}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    digest.update(json.dumps([runtime, sorted(allowed)]).encode())
    return digest.hexdigest()[:32]


def cached_probe(python_binary: str, python_stdlib: str, staged_root: str, runtime: str,
                 allowed: tuple[str, ...]) -> tuple[str, list[str]]:
    """``probe``, remembered on disk: a probe costs most of a second at every start."""
    key = _probe_key(python_binary, python_stdlib, staged_root, runtime, allowed)
    path = os.path.join(_cache_dir(), f"stdlib-view-{key}.json")
    try:
        with open(path) as f:
            cached = json.load(f)
        if all(os.path.exists(p) for p in cached["files"]):
            os.utime(path)  # used: the last to go when the cache is pruned
            return cached["stdlib"], list(cached["files"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    stdlib, files = probe(python_binary, staged_root, runtime, allowed)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "w") as f:
            json.dump({"stdlib": stdlib, "files": files}, f)
        os.replace(path + ".tmp", path)
        prune(os.path.dirname(path), KEEP_PROBES)
    except OSError:
        pass  # no cache: the next start probes again
    return stdlib, files


#: Probes kept on disk: one per (interpreter, staged code, runtime, allow-list) in use. Each
#: staging of our code (a new version, a test's own) makes another key, so without a bound
#: the cache grew by thousands of files a day on a machine that runs the tests.
KEEP_PROBES = 32


def prune(directory: str, keep: int) -> None:
    """Remove all but the ``keep`` most recently used probes in ``directory``."""
    entries = []
    with os.scandir(directory) as it:
        for entry in it:
            if entry.name.startswith("stdlib-view-") and entry.name.endswith(".json"):
                try:
                    entries.append((entry.stat().st_mtime_ns, entry.path))
                except OSError:
                    pass  # removed by another process meanwhile
    for _, path in sorted(entries, reverse=True)[keep:]:
        try:
            os.unlink(path)
        except OSError:
            pass


def units(stdlib: str, files: list[str]) -> tuple[set[str], set[str]]:
    """Top-level packages to copy whole, and single files (modules, extension modules)."""
    packages, singles = {"encodings"}, set()
    for path in files:
        rel = os.path.relpath(path, stdlib)
        if rel.startswith(os.pardir) or os.path.isabs(rel):
            raise JailError(f"the standard-library probe named a file outside {stdlib}: {path}")
        head, _, rest = rel.partition(os.sep)
        if rest and head != "lib-dynload":
            packages.add(head)
        else:
            singles.add(rel)
    return packages, singles


@functools.cache
def build(python_binary: str, python_stdlib: str, staged_root: str, runtime: str,
          allowed: tuple[str, ...]) -> str:
    """The directory (inside ``staged_root``) holding the jail's standard library view."""
    stdlib, files = cached_probe(python_binary, python_stdlib, staged_root, runtime, allowed)
    packages, singles = units(stdlib, files)
    digest = hashlib.sha256(json.dumps([sorted(packages), sorted(singles)]).encode()).hexdigest()
    target = os.path.join(staged_root, f"stdlib-{digest[:16]}")
    if os.path.isdir(target):
        return target
    building = target + ".tmp"
    shutil.rmtree(building, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "test", "tests", "idle_test")
    for name in sorted(packages):
        shutil.copytree(os.path.join(stdlib, name), os.path.join(building, name), ignore=ignore)
    for rel in sorted(singles):
        os.makedirs(os.path.join(building, os.path.dirname(rel)), exist_ok=True)
        shutil.copy2(os.path.join(stdlib, rel), os.path.join(building, rel))
    os.makedirs(os.path.join(building, "lib-dynload"), exist_ok=True)
    for dirpath, _dirnames, filenames in os.walk(building):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o755 if name.endswith(".so") else 0o644)
    os.rename(building, target)
    return target
