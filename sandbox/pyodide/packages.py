"""Pure-Python packages for the pyodide runtime: wheels from PyPI, ready for Pyodide, offline.

``sandbox packages install --runtime pyodide NAME...`` builds one environment directory:

1. **pip download** of the packages and their dependencies as pure-Python wheels only
   (``--only-binary :all: --platform any --abi none --implementation py``, Python 3.11, the
   version inside Pyodide 0.25). A package that exists only as compiled wheels fails here,
   with pip's message: running it in Pyodide needs a WebAssembly build of it.
2. **the lock file**, with pyodide-lock's ``add_wheels_to_spec`` (the library pyodide-build's
   ``pyodide lockfile`` command belongs to; that command, in the pinned 0.1.0a4, writes its
   input unchanged): the distribution's ``pyodide-lock.json`` with its own packages replaced
   by these wheels, so the worker can load nothing else.
3. **pyodide py-compile** (pyodide-build): every wheel's ``.py`` compiled to ``.pyc`` for
   the interpreter in Pyodide, the lock file updated with the new names and checksums, so
   an import reads bytecode instead of compiling source in WebAssembly.

The worker loads the lock file's packages at start with Pyodide's own ``loadPackage``, from
this directory (mounted read-only in the jail), before it locks the JS side down; whether
a snippet may import them is still ``external_allow``'s business.

What pyodide-build cannot do here: ``pyodide build``, ``pyodide venv`` and
``pyodide build-recipes`` need its cross-build environment and Emscripten, which
``pyodide xbuildenv`` downloads from GitHub releases (only package registries are
reachable); ``pyodide skeleton pypi`` writes recipes for those builds. So packages with
compiled parts are out of reach; pure-Python ones are served.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Sequence
from typing import Any

from sandbox.jail import packages
from sandbox.pyodide import dist as pyodide_dist
from sandbox.errors import ConfigError

MANIFEST = ".snippet-sandbox-pyodide-packages.json"
LOCK = "pyodide-lock.json"
_PIP_TARGET = ("--only-binary", ":all:", "--platform", "any", "--abi", "none",
               "--implementation", "py", "--python-version", "3.11")
# Run with the build tools' interpreter: pyodide-lock's library call (see the docstring).
_ADD_WHEELS = r"""
import sys
from pathlib import Path
from pyodide_lock import PyodideLockSpec
from pyodide_lock.utils import add_wheels_to_spec
source, directory = Path(sys.argv[1]), Path(sys.argv[2])
spec = PyodideLockSpec.from_json(source)
spec.packages = {}
wheels = sorted(directory.glob("*.whl"))
spec = add_wheels_to_spec(spec, wheels, base_path=directory)
spec.to_json(directory / "pyodide-lock.json")
"""


def default_dir() -> str:
    return packages.default_dir() + "-pyodide"


def installed(directory: str) -> dict[str, Any] | None:
    """The manifest of the environment in ``directory`` (specs, package names), or None."""
    try:
        with open(os.path.join(directory, MANIFEST)) as f:
            manifest: dict[str, Any] = json.load(f)
        if isinstance(manifest.get("specs"), list) and isinstance(manifest.get("packages"), list):
            return manifest
    except (OSError, ValueError, AttributeError):
        pass
    return None


def contents(directory: str) -> list[packages.Held] | None:
    """What the environment holds, from its lock file (each package's version and what it
    depends on), or None if there is none."""
    manifest = installed(directory)
    if manifest is None:
        return None
    try:
        with open(os.path.join(directory, LOCK)) as f:
            locked = json.load(f)["packages"]
        found = {packages.name_of(str(p.get("name", key))): (str(p.get("version", "?")),
                                                             list(p.get("depends", [])))
                 for key, p in locked.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        found = {packages.name_of(n): ("?", []) for n in manifest["packages"]}
    return packages.attribute(manifest["specs"], found)


def install(specs: Sequence[str], directory: str, *, quiet: bool = False,
            cache_dir: str | None = None, node: str | None = None) -> dict[str, Any]:
    """Build the environment of ``specs`` in ``directory`` (replaced whole on success), with
    the distribution and build tools under ``cache_dir`` (``pyodide_dist.cache_root``)."""
    wanted = packages.normalize(specs)
    if not wanted:
        raise ConfigError("name at least one package")
    dist = pyodide_dist.ensure(cache_dir=cache_dir, node=node)
    cli = pyodide_dist.ensure_build_tools(quiet=quiet, cache_dir=cache_dir)
    directory = os.path.abspath(directory)
    fresh = directory + ".new"
    shutil.rmtree(fresh, ignore_errors=True)
    os.makedirs(fresh)
    try:
        print(f"sandbox packages: pure-Python wheels of {' '.join(wanted)} for Pyodide "
              f"{dist.version} into {directory}", file=sys.stderr, flush=True)
        _run([sys.executable, "-m", "pip", "download", "--disable-pip-version-check",
              "--no-input", *_PIP_TARGET, "--dest", fresh, *wanted, *(["--quiet"] if quiet else [])],
             f"pip found no pure-Python wheels for {' '.join(wanted)} (a package with compiled "
             "parts needs a WebAssembly build, which this host cannot make)")
        python = os.path.join(os.path.dirname(cli), "python")
        _run([python, "-c", _ADD_WHEELS, os.path.join(dist.directory, LOCK), fresh],
             "pyodide-lock could not add the wheels to the lock file")
        _run([cli, "py-compile", "--silent", fresh], "pyodide py-compile failed")
        with open(os.path.join(fresh, LOCK)) as f:
            names = sorted(json.load(f)["packages"])
        manifest = {"specs": wanted, "packages": names, "pyodide": dist.version}
        with open(os.path.join(fresh, MANIFEST), "w") as f:
            json.dump(manifest, f)
        packages.replace_environment(fresh, directory)
    finally:
        shutil.rmtree(fresh, ignore_errors=True)
    return manifest


def _run(argv: list[str], failure: str) -> None:
    code = packages.run_tool(argv)
    if code != 0:
        raise ConfigError(f"{failure} (exit code {code}); the previous environment stays")


def worker_settings(host_dir: str, worker_dir: str) -> dict[str, Any]:
    """What worker.mjs needs to load the environment: the lock file, where the wheels are
    (``worker_dir``: as the worker sees ``host_dir``), and the packages to load."""
    manifest = installed(host_dir)
    if manifest is None:
        raise ConfigError(f"{host_dir} holds no pyodide packages environment "
                          "(sandbox packages install --runtime pyodide NAME...)")
    return {"lock_file": f"{worker_dir}/{LOCK}", "packages_dir": worker_dir,
            "load_packages": list(manifest["packages"])}
