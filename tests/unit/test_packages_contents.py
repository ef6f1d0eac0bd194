"""`sandbox packages list`: each project with its version, and what pulled in the ones
nobody asked for, read from the environment's own metadata."""

from __future__ import annotations

import json
from pathlib import Path

from sandbox.jail import packages
from sandbox.jail.packages import Held


def _dist(root: Path, name: str, version: str, *requires: str) -> None:
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}",
             *(f"Requires-Dist: {r}" for r in requires)]
    (info / "METADATA").write_text("\n".join(lines) + "\n")


def test_the_list_gives_versions_and_what_pulled_each_dependency_in(tmp_path):
    """[25.9] `packages list` printed the specs it was asked for ("python-dateutil"): no
    version, and not six, which python-dateutil pulled in."""
    _dist(tmp_path, "python-dateutil", "2.9.0.post0", "six>=1.5")
    _dist(tmp_path, "six", "1.17.0")
    _dist(tmp_path, "requests", "2.32.3", "idna<4,>=2.5", "PySocks!=1.5.7,>=1.5.6; extra == \"socks\"")
    _dist(tmp_path, "idna", "3.10")
    _dist(tmp_path, "PySocks", "1.7.1")
    (tmp_path / packages.MANIFEST).write_text(json.dumps({"specs": ["python-dateutil",
                                                                    "requests"]}))
    assert [h.line() for h in packages.contents(str(tmp_path)) or []] == [
        "python-dateutil 2.9.0.post0",
        "requests 2.32.3",
        "idna 3.10 (pulled in by requests)",
        "pysocks 1.7.1 (pulled in by nothing it holds now)",
        "six 1.17.0 (pulled in by python-dateutil)"]


def test_an_extra_asked_for_by_name_counts_its_requirements():
    found = {"requests": ("2.32.3", ['PySocks>=1.5.6; extra == "socks"']),
             "pysocks": ("1.7.1", [])}
    assert packages.attribute(["requests[socks]"], found) == [
        Held("requests", "2.32.3", asked="requests[socks]"),
        Held("pysocks", "1.7.1", pulled_in_by=("requests",))]


def test_no_environment_is_none(tmp_path):
    assert packages.contents(str(tmp_path)) is None
