"""Pure-JavaScript npm packages for JavaScript snippets: one directory, mounted read-only.

An operator names packages (``sandbox packages install --runtime javascript lodash@4``);
npm installs them into a directory of their own with ``--ignore-scripts`` (no install script
of a package runs on the host), which the JavaScript jail mounts read-only at ``JAIL_NPM``.
A snippet's ``require('name')`` loads one from there when NODE_FUNCTION_ALLOW_EXTERNAL
allows it (runtimes/javascript/npm.py resolves, library/n8n.js evaluates).

The runtime is QuickJS, not Node: a package with a native addon (``binding.gyp``, a ``.node``
file) cannot load, so the install is refused whole. Packages are installed into a fresh copy
that replaces the directory at the end, so a failed or refused install leaves the previous
one in place.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence

from runtimes.javascript.npm import ROOT
from sandbox.errors import ConfigError

JAIL_NPM = ROOT  # the runtime's resolver reads the same path


def default_dir() -> str:
    if os.geteuid() == 0:
        return "/var/lib/snippet-sandbox/npm"
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                             "share")
    return os.path.join(base, "snippet-sandbox", "npm")


def native_addons(directory: str) -> list[str]:
    """The packages under ``directory``'s node_modules that carry a native addon, each as
    ``name (file)``: what QuickJS cannot load."""
    found: dict[str, str] = {}
    root = os.path.join(directory, "node_modules")
    for here, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".bin"]
        for f in files:
            if f == "binding.gyp" or f.endswith(".node"):
                rel = os.path.relpath(here, root).split(os.sep)
                name = "/".join(rel[:2]) if rel[0].startswith("@") else rel[0]
                found.setdefault(name, f)
    return [f"{name} ({file})" for name, file in sorted(found.items())]


def _check_specs(specs: Sequence[str]) -> list[str]:
    out = [s.strip() for s in specs if s.strip()]
    for spec in out:
        if spec.startswith("-"):
            raise ConfigError(f"package spec {spec!r}: options are not package names")
    if not out:
        raise ConfigError("packages install: name at least one package")
    return out


def install(specs: Sequence[str], directory: str, npm: str = "npm") -> list[tuple[str, str]]:
    """Add ``specs`` (npm's ``name[@version]``, or a tarball path) to ``directory``; what it
    then holds at top level. ConfigError if npm fails or a package has a native addon."""
    specs = _check_specs(specs)
    directory = os.path.abspath(directory)
    staging = directory.rstrip(os.sep) + ".installing"
    shutil.rmtree(staging, ignore_errors=True)
    if os.path.isdir(directory):
        shutil.copytree(directory, staging, symlinks=True)
    else:
        os.makedirs(staging)
    manifest = os.path.join(staging, "package.json")
    if not os.path.exists(manifest):
        with open(manifest, "w") as f:
            json.dump({"name": "snippet-sandbox-npm", "private": True}, f)
    command = [npm, "install", "--ignore-scripts", "--no-audit", "--no-fund",
               "--omit=dev", "--install-links", "--prefix", staging, "--", *specs]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise ConfigError(f"npm install failed: {exc}") from exc
    if done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise ConfigError(f"npm install failed (exit {done.returncode}):\n{tail}")
    native = native_addons(staging)
    if native:
        shutil.rmtree(staging, ignore_errors=True)
        raise ConfigError("refused: these packages carry native addons, which the JavaScript "
                          "runtime (QuickJS, not Node) cannot load: " + ", ".join(native))
    for d, _, names in os.walk(staging):  # the jail's user (nobody, as root) reads them
        os.chmod(d, 0o755)
        for name in names:
            path = os.path.join(d, name)
            if not os.path.islink(path):
                os.chmod(path, 0o644)
    old = directory.rstrip(os.sep) + ".old"
    shutil.rmtree(old, ignore_errors=True)
    if os.path.isdir(directory):
        os.rename(directory, old)
    os.rename(staging, directory)
    shutil.rmtree(old, ignore_errors=True)
    held = contents(directory)
    return held or []


def contents(directory: str) -> list[tuple[str, str]] | None:
    """The packages ``directory`` holds at top level (name, version), or None if it holds
    no npm environment."""
    try:
        with open(os.path.join(directory, "package.json")) as f:
            wanted = json.load(f).get("dependencies", {})
    except (OSError, ValueError, AttributeError):
        return None
    out = []
    for name in sorted(wanted):
        try:
            with open(os.path.join(directory, "node_modules", name, "package.json")) as f:
                version = str(json.load(f).get("version", "?"))
        except (OSError, ValueError, AttributeError):
            version = "missing"
        out.append((name, version))
    return out
