"""runtimes/javascript/globals.js against Node's own built-ins, run in Node's vm (no jail):
the differential test of our Buffer, URL, text codecs, JSON.parse messages and locale
formatting, and the check that the locale table is what Node's ICU writes. Node 20 is the
Node n8n 2.41.1 runs on here (its ICU is the reference); another Node has other ICU data, so
the tests skip there, as they do where Node is absent."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NODE = shutil.which("node")


def _node_major() -> int:
    if NODE is None:
        return 0
    out = subprocess.run([NODE, "--version"], capture_output=True, text=True, check=True).stdout
    return int(out.strip().lstrip("v").split(".")[0])


pytestmark = pytest.mark.skipif(_node_major() != 20, reason="needs Node 20 (n8n 2.41.1's) on PATH")


def _node(script: str) -> str:
    env = {**os.environ, "TZ": "UTC"}
    return subprocess.run([str(NODE), str(ROOT / "tests" / "node" / script)], capture_output=True,
                          text=True, check=True, env=env, timeout=300).stdout


def test_locale_table_is_what_nodes_icu_writes():
    table = (ROOT / "runtimes" / "javascript" / "locale_table.json").read_text(encoding="utf-8")
    assert json.loads(_node("locale_table.js")) == json.loads(table)


def test_globals_give_what_node_gives():
    summary = json.loads(_node("globals_vs_node.js"))
    assert summary["differ"] == [] and summary["compared"] > 40000
