"""The frames recorded between a real n8n 2.41.1 and an external runner (copied from the
project's notes into ``captures/``): ``dir`` "in" is broker -> runner, "out" runner -> broker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DIR = Path(__file__).parent / "captures"
BROKER_DIRS = ("in", "broker->runner")
RUNNER_DIRS = ("out", "runner->broker")


def load(name: str) -> list[dict[str, Any]]:
    """A capture file as a list of entries (a file holding one message is a list of one)."""
    (path,) = DIR.glob(f"{name}*.json")
    doc = json.loads(path.read_text())
    return doc if isinstance(doc, list) else [doc]


def messages(name: str, direction: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """The messages of a capture, in order; only one direction when given (entries without
    a direction are bare messages and always included)."""
    out = []
    for entry in load(name):
        msg = entry.get("msg", entry if "type" in entry else None)
        if msg is None or "type" not in msg:
            continue
        if direction is None or entry.get("dir") in direction or "dir" not in entry:
            out.append(msg)
    return out


def every(prefix: str, direction: tuple[str, ...]) -> list[tuple[str, dict[str, Any]]]:
    """(capture name, message) for every message of every capture that one side sent:
    ``every("broker:", BROKER_DIRS)`` or ``every("runner:", RUNNER_DIRS)``."""
    return [(path.stem, msg) for path in sorted(DIR.glob("*.json"))
            for msg in messages(path.stem, direction) if msg["type"].startswith(prefix)]
