"""A decoder for the "flatted" JSON encoding n8n uses for execution data.

flatted writes a value graph as one JSON array: entry 0 is the root, and every string,
object or array inside an object or array is replaced by the decimal index (as a string) of
the entry that holds it. Numbers, booleans and null stay inline; the entries that are plain
strings are the string values themselves. Shared and circular references decode to the same
Python object.
"""

from __future__ import annotations

import json
from typing import Any


class FlattedError(ValueError):
    """Text that is not a flatted document."""


def parse(text: str | bytes) -> Any:
    """Decode a flatted document into plain dicts, lists and scalars."""
    try:
        table = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FlattedError(f"not JSON: {exc}") from exc
    if not isinstance(table, list) or not table:
        raise FlattedError("a flatted document is a non-empty JSON array")
    done: dict[int, Any] = {}
    # Iterative, so a long chain of nested objects cannot exhaust the recursion limit.
    pending: list[tuple[int, Any]] = []

    def ref(raw: Any) -> Any:
        if not isinstance(raw, str):
            return raw
        try:
            index = int(raw)
            entry = table[index]
        except (ValueError, IndexError) as exc:
            raise FlattedError(f"bad reference {raw!r}") from exc
        if index in done:
            return done[index]
        if isinstance(entry, list):
            done[index] = []
        elif isinstance(entry, dict):
            done[index] = {}
        else:
            done[index] = entry
            return entry
        pending.append((index, entry))
        return done[index]

    root = ref("0")
    while pending:
        index, entry = pending.pop()
        target = done[index]
        if isinstance(entry, list):
            target.extend(ref(x) for x in entry)
        else:
            for key, raw in entry.items():
                target[key] = ref(raw)
    return root
