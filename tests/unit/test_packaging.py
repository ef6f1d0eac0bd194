"""An installed package (a wheel, the deploy image's `pip install`) carries every file the code
reads at run time, not only the Python modules: pyproject.toml's package-data must name them."""

from __future__ import annotations

import fnmatch
import importlib.machinery
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ("*.md",)  # read by people, not by the code


def _data_files() -> list[tuple[str, str]]:
    """(package, file name) of each non-Python file inside a package directory."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    tops = [pattern.rstrip("*") for pattern in config["tool"]["setuptools"]["packages"]["find"]["include"]]
    # an extension's C source and what the install compiles of it are the build's, not data
    built = {source for ext in config["tool"]["setuptools"]["ext-modules"] for source in ext["sources"]}
    out = []
    for init in sorted(i for top in tops for i in (ROOT / top).glob("**/__init__.py")):
        package_dir = init.parent
        package = ".".join(package_dir.relative_to(ROOT).parts)
        for path in sorted(package_dir.iterdir()):
            if path.is_file() and path.suffix not in (".py", ".pyc") and \
                    not any(fnmatch.fnmatch(path.name, d) for d in DOCS) and \
                    path.relative_to(ROOT).as_posix() not in built and \
                    not path.name.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
                out.append((package, path.name))
    return out


def test_every_file_a_package_reads_is_declared_as_package_data():
    """The pyodide runtime's package.json, lock file and worker scripts were left out of the
    wheel: installed from it, `sandbox exec` died with a FileNotFoundError traceback."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = config["tool"]["setuptools"]["package-data"]
    missing = [f"{package}/{name}" for package, name in _data_files()
               if not any(fnmatch.fnmatch(name, pattern) for pattern in declared.get(package, ()))]
    assert missing == []


def test_a_module_that_shadows_one_of_the_packages_parts_is_named_on_import(tmp_path):
    """The wheel installs ``broker``, ``runtimes`` and ``seccomp`` as top-level packages (the
    README says why). A host app's own ``broker`` found first on sys.path used to be imported
    in ours' place; importing ``sandbox`` now refuses, naming it."""
    import subprocess
    import sys

    (tmp_path / "broker").mkdir()
    (tmp_path / "broker" / "__init__.py").write_text("")
    # this checkout may be an editable install, whose finder comes before sys.path: put a
    # plain path finder first, as a regular install in site-packages would be found
    code = ("import sys, importlib.machinery\n"
            f"sys.path.insert(0, {str(tmp_path)!r})\n"
            "sys.meta_path.insert(0, importlib.machinery.PathFinder)\n"
            "import sandbox\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"ImportError: snippet-sandbox needs its own top-level package 'broker' (installed in "
        f"{ROOT}), but {tmp_path / 'broker' / '__init__.py'} is found first on sys.path: "
        f"rename or move that module, or install snippet-sandbox in a virtualenv of its own")
