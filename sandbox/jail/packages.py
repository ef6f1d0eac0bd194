"""Third-party packages for Python snippets: one dedicated, read-only environment.

An operator names packages (``sandbox packages install pandas==2.* requests``, or
``sandbox serve --package ...``); they are installed with pip into a directory of their own
(never the host's site-packages), which every Python jail mounts read-only at
``/sandbox/packages`` and puts on ``sys.path``. Which of them a snippet may import is still
the allow-list's business (``external_allow``); the zygote can import some ahead of time
(``preload``) so tasks do not pay the import.

The environment is rebuilt as a whole when the requested specs change, into a fresh
directory that replaces the old one at the end, so a failed install leaves the previous
environment in place. ``MANIFEST`` records the specs it was built from.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sandbox.errors import ConfigError

MANIFEST = ".snippet-sandbox-packages.json"
JAIL_PACKAGES = "/sandbox/packages"


def default_dir() -> str:
    """Where the environment lives unless told: as root, a system directory (the jail's user
    is then nobody, who cannot enter root's home); else under the user's data directory."""
    if os.geteuid() == 0:
        return "/var/lib/snippet-sandbox/packages"
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                             "share")
    return os.path.join(base, "snippet-sandbox", "packages")


def check_reachable(directory: str, as_root: bool) -> None:
    """The jail mounts ``directory`` as its own user: as root that is nobody, who needs
    search permission on every directory above it. ConfigError naming the one that lacks it."""
    if not os.path.isdir(directory):
        raise ConfigError(f"packages_dir {directory} does not exist "
                          f"(run `sandbox packages install ...` first)")
    if not as_root:
        return
    path = os.path.abspath(directory)
    while True:
        if not os.stat(path).st_mode & 0o001:
            raise ConfigError(f"packages_dir {directory}: {path} is not searchable by others "
                              f"(mode o+x), so the jail's user cannot reach the environment")
        parent = os.path.dirname(path)
        if parent == path:
            return
        path = parent


def normalize(specs: Sequence[str]) -> list[str]:
    """The specs as a canonical list (order and spacing do not make another environment)."""
    out = sorted({" ".join(s.split()) for s in specs if s.strip()})
    for spec in out:
        if spec.startswith("-"):
            raise ConfigError(f"package spec {spec!r}: options are not package names")
    return out


def installed_specs(directory: str) -> list[str] | None:
    """The specs ``directory`` was built from, or None if it holds no environment."""
    try:
        with open(os.path.join(directory, MANIFEST)) as f:
            return list(json.load(f)["specs"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


@dataclass(frozen=True)
class Held:
    """One project an environment holds: its version, and either the spec that asked for it
    or the projects that pulled it in (their requirements named it)."""

    name: str
    version: str
    asked: str = ""  # the spec it was installed for; "" when it came as a dependency
    pulled_in_by: tuple[str, ...] = ()

    def line(self) -> str:
        if self.asked:
            return f"{self.name} {self.version}"
        by = ", ".join(self.pulled_in_by) or "nothing it holds now"
        return f"{self.name} {self.version} (pulled in by {by})"


def attribute(specs: Iterable[str], found: Mapping[str, tuple[str, Sequence[str]]]) -> list[Held]:
    """Who is there and why (pure): ``found`` maps each installed project to its version and
    its requirements (``Requires-Dist``); a project asked for comes first, then each one it
    pulled in with the projects that require it. A requirement for an extra only counts when
    that extra was asked for by name (``pkg[extra]``)."""
    import re

    asked = {name_of(s): s for s in specs}
    extras = {name_of(s): set(re.findall(r"[A-Za-z0-9._-]+", s.partition("[")[2].partition("]")[0]))
              for s in specs if "[" in s}
    needs: dict[str, set[str]] = {}
    for name, (_, requires) in found.items():
        for requirement in requires:
            target, _, marker = requirement.partition(";")
            wanted_extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", marker)
            if wanted_extra and wanted_extra.group(1) not in extras.get(name, set()):
                continue
            dep = name_of(target)
            if dep in found and dep != name:
                needs.setdefault(dep, set()).add(name)
    held = [Held(name, found[name][0], asked=asked[name]) for name in sorted(asked)
            if name in found]
    held += [Held(name, version, pulled_in_by=tuple(sorted(needs.get(name, ()))))
             for name, (version, _) in sorted(found.items()) if name not in asked]
    return held


def contents(directory: str) -> list[Held] | None:
    """What the environment in ``directory`` holds, read from its projects' metadata (pip's
    ``.dist-info``), or None if there is no environment."""
    from importlib.metadata import distributions

    specs = installed_specs(directory)
    if specs is None:
        return None
    found: dict[str, tuple[str, Sequence[str]]] = {}
    for dist in distributions(path=[directory]):
        name = dist.metadata["Name"]
        if name:
            found[name_of(name)] = (dist.version, dist.requires or [])
    return attribute(specs, found)


def ensure(specs: Sequence[str], directory: str, *, quiet: bool = False) -> bool:
    """Make ``directory`` hold exactly ``specs``; True if it had to (re)install."""
    wanted = normalize(specs)
    if installed_specs(directory) == wanted:
        return False
    install(wanted, directory, quiet=quiet)
    return True


def name_of(spec: str) -> str:
    """The project a pip spec names, normalized as PyPI does (``Pandas_x[y]>=2`` ->
    ``pandas-x``)."""
    import re

    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else spec.strip().lower()



def run_tool(argv: list[str], announce: str = "", cwd: str | None = None) -> int:
    """Run an installing tool (pip, npm, pyodide): no input, its output on our stderr (stdout
    stays the command's answer); ``announce`` said first. Its exit code."""
    if announce:
        print(announce, file=sys.stderr, flush=True)
    return subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=sys.stderr,
                          check=False).returncode

def add(specs: Sequence[str], directory: str, *, quiet: bool = False) -> list[str]:
    """Add ``specs`` to the environment (a spec for a project it holds replaces that one's)
    and rebuild it; the specs it holds then."""
    new = {name_of(s): s for s in normalize(specs)}
    kept = [s for s in installed_specs(directory) or [] if name_of(s) not in new]
    wanted = normalize([*kept, *new.values()])
    ensure(wanted, directory, quiet=quiet)
    return wanted


def remove(names: Sequence[str], directory: str, *, quiet: bool = False) -> list[str]:
    """Remove the projects ``names`` from the environment and rebuild it from what is left;
    the specs it holds then. ConfigError naming a project it does not hold."""
    held = installed_specs(directory)
    if held is None:
        raise ConfigError(f"no environment in {directory}")
    gone = {name_of(n) for n in names}
    missing = sorted(gone - {name_of(s) for s in held})
    if missing:
        raise ConfigError(f"{directory} holds no {', '.join(missing)} (it holds: "
                          f"{' '.join(held) or 'nothing'})")
    left = [s for s in held if name_of(s) not in gone]
    install(left, directory, quiet=quiet)
    return left


def install(specs: Sequence[str], directory: str, *, quiet: bool = False) -> None:
    """Build a fresh environment of ``specs`` with pip (its progress shown on stderr)."""
    wanted = normalize(specs)
    directory = os.path.abspath(directory)
    parent = os.path.dirname(directory)
    os.makedirs(parent, mode=0o755, exist_ok=True)
    fresh = directory + ".new"
    shutil.rmtree(fresh, ignore_errors=True)
    os.makedirs(fresh)
    if wanted:
        argv = [sys.executable, "-m", "pip", "install", "--target", fresh, "--no-compile",
                "--disable-pip-version-check", "--no-input", "--progress-bar", "on", *wanted]
        code = run_tool(argv + ["--quiet"] * quiet,
                        f"sandbox packages: installing {' '.join(wanted)} into {directory}")
        if code != 0:
            shutil.rmtree(fresh, ignore_errors=True)
            raise ConfigError(f"pip could not install {' '.join(wanted)} "
                              f"(exit code {code}); the previous environment stays")
    with open(os.path.join(fresh, MANIFEST), "w") as f:
        json.dump({"specs": wanted, "python": sys.version.split()[0]}, f)
    replace_environment(fresh, directory)


def replace_environment(fresh: str, directory: str) -> None:
    """Make the finished ``fresh`` directory readable by the jail's user and put it in place
    of ``directory`` (the old one goes only now, so a failed build never left it missing)."""
    old = directory + ".old"
    world_readable(fresh)
    shutil.rmtree(old, ignore_errors=True)
    if os.path.exists(directory):
        os.rename(directory, old)
    os.rename(fresh, directory)
    shutil.rmtree(old, ignore_errors=True)


def world_readable(root: str) -> None:
    """The jail's user is nobody: it must be able to read (and traverse) everything."""
    os.chmod(root, 0o755)
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            os.chmod(os.path.join(dirpath, d), 0o755)
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                mode = os.stat(path).st_mode
                os.chmod(path, 0o755 if mode & 0o111 else 0o644)
