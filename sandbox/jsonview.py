"""JSON views of codec values, for the CLI: what JSON cannot say is tagged, never lost.

``to_jsonable`` turns a decoded result into what ``json.dumps(allow_nan=False)`` accepts:

- bytes -> ``{"$bytes": "<base64>"}``
- datetime -> ``{"$datetime": "<ISO 8601>"}``
- NaN, inf, -inf -> ``{"$float": "NaN" | "Infinity" | "-Infinity"}``
- int dict keys -> their decimal strings

``from_json_data`` reads ``--data``: plain JSON, with the ``$bytes`` and ``$datetime`` tags
(an object with exactly that one key) turned back into bytes and datetimes.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import math
from typing import Any

_FLOAT_TAGS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def to_jsonable(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return {"$bytes": base64.b64encode(value).decode("ascii")}
    if isinstance(value, datetime.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, float) and not math.isfinite(value):
        return {"$float": "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value


def from_json_data(text: str) -> Any:
    """Parse ``--data`` JSON; raise ValueError with a one-line reason when it is not valid."""
    try:
        return json.loads(text, object_hook=_untag)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc}") from exc


def _untag(obj: dict[str, Any]) -> Any:
    if len(obj) != 1:
        return obj
    ((key, value),) = obj.items()
    if key == "$bytes" and isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"invalid base64 in $bytes: {exc}") from exc
    if key == "$datetime" and isinstance(value, str):
        return datetime.datetime.fromisoformat(value)
    if key == "$float" and value in _FLOAT_TAGS:
        return _FLOAT_TAGS[value]
    return obj
