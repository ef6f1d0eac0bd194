"""An installed package (a wheel, the deploy image's `pip install`) carries every file the code
reads at run time, not only the Python modules: pyproject.toml's package-data must name them."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ("*.md",)  # read by people, not by the code


def _data_files() -> list[tuple[str, str]]:
    """(package, file name) of each non-Python file inside a package directory."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    tops = [pattern.rstrip("*") for pattern in config["tool"]["setuptools"]["packages"]["find"]["include"]]
    out = []
    for init in sorted(i for top in tops for i in (ROOT / top).glob("**/__init__.py")):
        package_dir = init.parent
        package = ".".join(package_dir.relative_to(ROOT).parts)
        for path in sorted(package_dir.iterdir()):
            if path.is_file() and path.suffix not in (".py", ".pyc") and \
                    not any(fnmatch.fnmatch(path.name, d) for d in DOCS):
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
