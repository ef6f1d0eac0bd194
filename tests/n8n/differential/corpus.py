"""The corpus: ``snippets.txt`` (the Code nodes) and ``inputs.json`` (the items they get).

One header per snippet (``### <id> [mode=..] [input=..] [mask=..] [source=..]``, described at
the top of ``snippets.txt``); a header that names several modes or input sets expands into one
case per combination. Pure: reads the two files of this folder, nothing else.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
SNIPPETS = HERE / "snippets.txt"
INPUTS = HERE / "inputs.json"

ALL, EACH = "runOnceForAllItems", "runOnceForEachItem"
_MODES = {"all": (ALL,), "each": (EACH,), "both": (ALL, EACH)}
_SHORT = {ALL: "all", EACH: "each"}
_ID = re.compile(r"[a-z0-9][a-z0-9-]*")


class CorpusError(ValueError):
    """A header or an input set of the corpus is malformed."""


@dataclass(frozen=True)
class Case:
    """One Code node of the corpus: its code, mode and the pinned input set it reads."""

    id: str
    code: str
    mode: str
    input: str
    mask: tuple[str, ...] = ()
    source: str = "ours"

    @property
    def short_mode(self) -> str:
        return _SHORT[self.mode]

    @property
    def digest(self) -> str:
        """What a recording of this case depends on (code, mode, input items, mask), so that a
        recording made for another version of the case is found stale."""
        text = json.dumps([self.code, self.mode, inputs()["inputs"][self.input], list(self.mask),
                           inputs()["upstream"]], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@cache
def inputs() -> dict[str, Any]:
    """``{"upstream": {node: items}, "inputs": {set: items}}`` with items as plain json."""
    doc = json.loads(INPUTS.read_text(encoding="utf-8"))
    return {"upstream": doc["upstream"], "inputs": doc["inputs"]}


def _header(line: str, sets: dict[str, Any]) -> tuple[str, tuple[str, ...], tuple[str, ...],
                                                       tuple[str, ...], str]:
    words = line[3:].split()
    if not words or not _ID.fullmatch(words[0]):
        raise CorpusError(f"bad snippet id in {line!r}")
    opts = {"mode": "all", "input": "people", "mask": "", "source": "ours"}
    for word in words[1:]:
        key, sep, value = word.partition("=")
        if not sep or key not in opts:
            raise CorpusError(f"unknown option {word!r} in {line!r}")
        opts[key] = value
    if opts["mode"] not in _MODES:
        raise CorpusError(f"unknown mode in {line!r}")
    names = tuple(opts["input"].split(","))
    for name in names:
        if name not in sets:
            raise CorpusError(f"unknown input set {name!r} in {line!r}")
    mask = tuple(k for k in opts["mask"].split(",") if k)
    return words[0], _MODES[opts["mode"]], names, mask, opts["source"]


def parse(text: str, sets: dict[str, Any]) -> list[Case]:
    """The cases of a corpus text (the format of ``snippets.txt``)."""
    cases: list[Case] = []
    blocks: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("### "):
            blocks.append((line, []))
        elif blocks:
            blocks[-1][1].append(line)
    for header, body in blocks:
        sid, modes, names, mask, source = _header(header, sets)
        code = "\n".join(body).strip("\n") + "\n"
        several = len(modes) * len(names) > 1
        for mode in modes:
            for name in names:
                cid = f"{sid}.{_SHORT[mode]}.{name}" if several else sid
                cases.append(Case(cid, code, mode, name, mask, source))
    ids = [c.id for c in cases]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise CorpusError(f"duplicate snippet ids: {dupes}")
    return cases


@cache
def load() -> tuple[Case, ...]:
    """Every case of the corpus, in file order."""
    return tuple(parse(SNIPPETS.read_text(encoding="utf-8"), inputs()["inputs"]))
