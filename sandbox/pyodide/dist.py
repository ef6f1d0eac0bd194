"""The Pyodide distribution and the tools around it: pinned versions, where they live, install.

Versions, and why they fit together on this machine:

* **Pyodide 0.25.1** (npm ``pyodide``): CPython 3.11.3 compiled to WebAssembly. Its Python is
  the host's minor version (3.11), so the project's own Python (``runtimes/``: codec, wire,
  executor) runs unchanged inside it, and ``pyodide-build`` for 3.11 matches it.
* **pyodide-build 0.25.1** (PyPI): the last line that installs on Python 3.11 (0.26 and later
  need 3.12); same release as the runtime, so its lock-file format and ``py-compile`` target
  the interpreter the worker runs. It goes into a virtual environment of its own, since it
  pins ``pydantic<2`` and ``cython<3``, which must not leak into the service's environment.
* **Node.js 20** (Debian package ``nodejs``, on every machine of this kind): Pyodide 0.25
  needs Node >= 18; 20 is the LTS line the machine ships.

``ensure()`` installs the distribution with ``npm ci`` from ``runtimes/pyodide/package-lock.json``
(integrity hashes pinned) into a cache directory, once: a finished install carries a marker
named after the lock file's hash, so a second call does nothing, and a failed one leaves
nothing behind. ``ensure_build_tools()`` does the same for pyodide-build. Both need the
package registries only the first time on a machine.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import runtimes.pyodide
from sandbox.errors import JailError
from sandbox.registry import PYODIDE_VERSION
from sandbox.jail.packages import run_tool, world_readable

PYODIDE_BUILD_VERSION = "0.25.1"
NODE_MAJOR = 20
# The oldest Node the workers run on: Pyodide 0.25 needs 18, but the permission model they
# run under (--experimental-permission, runtimes/pyodide/launch.py) came with Node 20; on 18
# every worker failed to start on an unknown option.
NODE_FLOOR = 20
_SPEC_DIR = Path(runtimes.pyodide.__file__).resolve().parent  # package.json, package-lock.json
# What the worker loads; the rest of the npm package (docs, typings, source maps) stays out.
DIST_FILES = ("pyodide.mjs", "pyodide.asm.js", "pyodide.asm.wasm", "python_stdlib.zip",
              "pyodide-lock.json", "package.json")
_MARKER = ".snippet-sandbox-complete"
BUILD_TOOLS = (
    f"pyodide-build=={PYODIDE_BUILD_VERSION}",
    "wheel<0.44",  # auditwheel-emscripten, which pyodide-build imports, needs wheel.cli (gone after)
    "pkginfo",  # pyodide-lock 0.1.0a4 reads wheel metadata with it, without declaring it
)


@dataclass(frozen=True)
class Distribution:
    """An installed Pyodide: the directory the jail mounts read-only, and Node."""

    directory: str  # node_modules/pyodide
    node: str
    version: str = PYODIDE_VERSION


def cache_root(cache_dir: str | None = None) -> str:
    """``cache_dir`` when the operator names one (the ``pyodide_cache_dir`` setting); else,
    as root, a system directory the jail's user (nobody) can traverse; else the user's cache
    directory (the jail then runs as the same user)."""
    if cache_dir:
        return os.path.abspath(cache_dir)
    if os.geteuid() == 0:
        return "/var/cache/snippet-sandbox"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "snippet-sandbox")


def _lock_key() -> str:
    return hashlib.sha256((_SPEC_DIR / "package-lock.json").read_bytes()).hexdigest()[:16]


def install_dir(cache_dir: str | None = None) -> str:
    return os.path.join(cache_root(cache_dir), f"pyodide-{PYODIDE_VERSION}-{_lock_key()}")


@functools.cache
def locate_node(configured: str | None = None) -> str:
    """The Node.js binary: ``configured`` (the ``pyodide_node`` setting), else ``node`` on
    PATH; JailError unless it is Node ``NODE_FLOOR`` or later."""
    candidates = [configured] if configured else [shutil.which("node"), "/usr/bin/node"]
    for candidate in candidates:
        if not candidate or not os.access(candidate, os.X_OK):
            continue
        binary = os.path.realpath(candidate)
        done = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False,
                              env={})
        version = done.stdout.strip().lstrip("v")
        major = version.split(".")[0]
        if done.returncode == 0 and major.isdigit() and int(major) >= NODE_FLOOR:
            return binary
        if done.returncode == 0 and major.isdigit():
            raise JailError(f"the pyodide runtime needs Node.js {NODE_FLOOR} or later (its workers "
                            f"run under Node's permission model); {binary} is {version}")
    raise JailError(f"the pyodide runtime needs Node.js {NODE_FLOOR} or later, and this host has "
                    f"none (Debian 12's nodejs is 18: take Node {NODE_MAJOR} from nodejs.org or "
                    "NodeSource, or name one with pyodide_node, SANDBOX_PYODIDE_NODE)")


def check_usable(cache_dir: str | None = None, node: str | None = None) -> None:
    """JailError unless a pyodide jail could start here: Node, and the distribution
    installed or npm to install it (said before a daemon starts runners that would fail)."""
    locate_node(node)
    if installed(cache_dir, node) is None and shutil.which("npm") is None:
        raise JailError(f"the Pyodide distribution is not installed in {install_dir(cache_dir)} "
                        "and npm is not here to install it (run `sandbox pyodide install` "
                        "where npm is)")


def installed(cache_dir: str | None = None, node: str | None = None) -> Distribution | None:
    """The distribution if it is completely installed, else None (no I/O beyond a stat)."""
    root = install_dir(cache_dir)
    dist = os.path.join(root, "node_modules", "pyodide")
    if not os.path.exists(os.path.join(root, _MARKER)):
        return None
    return Distribution(directory=dist, node=locate_node(node))


def ensure(*, quiet: bool = True, cache_dir: str | None = None,
           node: str | None = None) -> Distribution:
    """Install the pinned Pyodide once (``npm ci``, integrity-checked) under ``cache_root``;
    the distribution."""
    found = installed(cache_dir, node)
    if found is not None:
        return found
    root = install_dir(cache_dir)
    npm = shutil.which("npm")
    if npm is None:
        raise JailError("npm is needed once to install Pyodide (Debian: apt-get install npm)")
    os.makedirs(os.path.dirname(root), mode=0o755, exist_ok=True)
    fresh = root + f".new-{os.getpid()}"
    shutil.rmtree(fresh, ignore_errors=True)
    os.makedirs(fresh)
    try:
        for name in ("package.json", "package-lock.json"):
            shutil.copy(_SPEC_DIR / name, os.path.join(fresh, name))
        argv = [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--omit=dev"]
        if quiet:
            argv.append("--silent")
        code = run_tool(argv, f"sandbox: installing Pyodide {PYODIDE_VERSION} into {root}",
                        cwd=fresh)
        if code != 0:
            raise JailError(f"npm ci of pyodide@{PYODIDE_VERSION} failed (exit code {code})")
        dist = os.path.join(fresh, "node_modules", "pyodide")
        missing = [n for n in DIST_FILES if not os.path.isfile(os.path.join(dist, n))]
        if missing:
            raise JailError(f"the pyodide package lacks {', '.join(missing)}")
        world_readable(fresh)
        Path(fresh, _MARKER).write_text(PYODIDE_VERSION + "\n")
        try:
            os.rename(fresh, root)
        except OSError:  # another process finished first: theirs is as good
            if installed(cache_dir, node) is None:
                raise
    finally:
        shutil.rmtree(fresh, ignore_errors=True)
    found = installed(cache_dir, node)
    assert found is not None
    return found


def build_tools_dir(cache_dir: str | None = None) -> str:
    return os.path.join(cache_root(cache_dir), f"pyodide-build-{PYODIDE_BUILD_VERSION}")


def ensure_build_tools(*, quiet: bool = True, cache_dir: str | None = None) -> str:
    """pyodide-build in its own virtual environment, once; the path of its ``pyodide`` CLI.

    Built in place (a venv's scripts name the path it was made at); the marker is written
    last, so an interrupted install is started over."""
    root = build_tools_dir(cache_dir)
    cli = os.path.join(root, "bin", "pyodide")
    if os.path.exists(os.path.join(root, _MARKER)):
        return cli
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(os.path.dirname(root), mode=0o755, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", root], check=True)
    argv = [os.path.join(root, "bin", "python"), "-m", "pip", "install",
            "--disable-pip-version-check", "--no-input", *BUILD_TOOLS]
    if run_tool(argv + ["--quiet"] * quiet,
                f"sandbox: installing pyodide-build {PYODIDE_BUILD_VERSION} into {root}") != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise JailError(f"pip could not install {' '.join(BUILD_TOOLS)}")
    Path(root, _MARKER).write_text(PYODIDE_BUILD_VERSION + "\n")
    return cli


def main(argv: list[str] | None = None, cache_dir: str | None = None,
         node: str | None = None) -> int:
    """``python -m sandbox.pyodide.dist``: install the distribution and the build tools
    (idempotent; what .ci/run and ``sandbox pyodide install`` call) under ``cache_root``."""
    args = sys.argv[1:] if argv is None else argv
    try:
        dist = ensure(quiet="--verbose" not in args, cache_dir=cache_dir, node=node)
        cli = ensure_build_tools(quiet="--verbose" not in args, cache_dir=cache_dir)
    except JailError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return 1
    print(f"pyodide {dist.version}: {dist.directory} (node {dist.node}); pyodide-build: {cli}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
