"""JSON views of codec values, for the CLI and the HTTP API: what JSON cannot say is tagged,
never lost, and the view reads back to the same value (``from_json_data(json.dumps(to_jsonable(v))) == v``).

A tag is an object with exactly one key, one of:

- ``{"$bytes": "<base64>"}``: bytes
- ``{"$datetime": "<ISO 8601>"}``: a datetime
- ``{"$float": "NaN" | "Infinity" | "-Infinity"}``: what JSON numbers cannot be
- ``{"$int": "<decimal digits>"}``: an int beyond 2**53, which JavaScript's JSON.parse (and
  other double-based readers) would round
- ``{"$map": [[key, value], ...]}``: a dict with int keys (JSON keys are strings)
- ``{"$dict": {...}}``: a dict that would read as a tag itself (one key, a tag's name): its
  keys are taken as they are

Everything else is plain JSON. ``from_json_data`` reads ``--data`` with the same tags, and
``from_jsonable`` a parsed value (the HTTP API's ``data``).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import math
from typing import Any

_FLOAT_TAGS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
TAGS = frozenset({"$bytes", "$datetime", "$float", "$int", "$map", "$dict"})
SAFE_INT = 2**53 - 1  # the largest integer every JSON reader keeps exactly


def to_jsonable(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value if -SAFE_INT <= value <= SAFE_INT else {"$int": str(value)}
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return {"$float": "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")}
    if isinstance(value, (bytes, bytearray)):
        return {"$bytes": base64.b64encode(value).decode("ascii")}
    if isinstance(value, datetime.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            return {"$map": [[to_jsonable(k), to_jsonable(v)] for k, v in value.items()]}
        plain = {k: to_jsonable(v) for k, v in value.items()}
        return {"$dict": plain} if len(plain) == 1 and next(iter(plain)) in TAGS else plain
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value


def from_json_data(text: str) -> Any:
    """Parse ``--data`` JSON; raise ValueError with a one-line reason when it is not valid."""
    try:
        return _untag(json.loads(text))
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc}") from exc


def from_jsonable(value: Any) -> Any:
    """The value a parsed JSON view stands for (the tags read); ValueError for a malformed
    tag. ``from_json_data`` for a value JSON has parsed already (an HTTP body's field)."""
    return _untag(value)


def _untag(value: Any) -> Any:
    """Read tags top-down, so that what a ``$dict`` holds is taken as it is."""
    if isinstance(value, list):
        return [_untag(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, inner),) = value.items()
        if key in TAGS:
            return _read_tag(key, inner)
    return {k: _untag(v) for k, v in value.items()}


def _read_tag(key: str, inner: Any) -> Any:
    if key == "$bytes" and isinstance(inner, str):
        try:
            return base64.b64decode(inner, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"invalid base64 in $bytes: {exc}") from exc
    if key == "$datetime" and isinstance(inner, str):
        try:
            return datetime.datetime.fromisoformat(inner)
        except ValueError as exc:
            raise ValueError(f"invalid $datetime: {exc}") from exc
    if key == "$float" and inner in _FLOAT_TAGS:
        return _FLOAT_TAGS[inner]
    if key == "$int" and isinstance(inner, str) and inner.lstrip("-").isdigit() and inner.isascii():
        return int(inner)
    if key == "$map" and isinstance(inner, list) and all(
            isinstance(p, list) and len(p) == 2 for p in inner):
        out = {}
        for k, v in inner:
            k = _untag(k)
            if isinstance(k, bool) or not isinstance(k, (int, str)):
                raise ValueError("a $map key must be a string or an integer")
            out[k] = _untag(v)
        return out
    if key == "$dict" and isinstance(inner, dict):
        return {k: _untag(v) for k, v in inner.items()}
    raise ValueError(f"malformed {key} tag: {json.dumps(inner)[:60]}")
