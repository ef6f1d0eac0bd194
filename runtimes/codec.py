"""The codec: the one set of rules for values crossing the jail wall, in MessagePack.

Used inside the jail to encode a snippet's result (and decode its ``data``), and by clients to
decode results, so it imports only msgpack and the standard library.

=================================  ====================================================
value                              encoded as (and decoded back to)
=================================  ====================================================
None, bool, str, float             the msgpack native type (NaN and infinities included)
int in [-2**63, 2**64)             msgpack int
int beyond that                    ext type 1, its decimal digits (decodes to the same int)
bytes, bytearray, memoryview       msgpack bin (decodes to bytes); never base64
list, tuple, set, frozenset        array (decodes to list)
dict                               map; keys must be str or int (not bool), else an error
datetime.datetime                  msgpack timestamp (ext -1); naive means UTC; decodes to
                                   an aware datetime in UTC
datetime.date                      its ISO string, "YYYY-MM-DD"
a cycle                            EncodeError "circular reference at <path>"
nesting deeper than 256            EncodeError "nested deeper than 256 levels at <path>"
anything else                      EncodeError naming the type and the path
larger than ``max_bytes``          ResultTooLarge (an EncodeError)
=================================  ====================================================

Subclasses of str, int, float, list and dict are encoded as their base type. ``decode``
treats its input as untrusted: whatever the bytes, it returns a value or raises
``DecodeError``, nothing else.
"""

from __future__ import annotations

import datetime
from typing import Any

import msgpack

MAX_DEPTH = 256
BIGINT_EXT = 1
_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1
_MAX_BIGINT_DIGITS = 100_000
_UTC = datetime.timezone.utc
_SCALARS = (str, float, type(None), bool)


class CodecError(Exception):
    """Root of the codec's errors."""


class EncodeError(CodecError, TypeError):
    """The value cannot be encoded; the message names the offending path."""


class ResultTooLarge(EncodeError):
    """The encoded value is larger than the allowed size."""


class DecodeError(CodecError, ValueError):
    """The bytes are not a valid encoding (the only error ``decode`` raises)."""


def encode(value: Any, *, max_bytes: int | None = None, path: str = "result") -> bytes:
    """Encode ``value`` by the rules above; raise EncodeError (or ResultTooLarge). ``path``
    names the value in messages ("result", "data")."""
    if type(value) in _SCALARS or (type(value) is int and _INT_MIN <= value <= _INT_MAX):
        plain = value  # the common trivial result: no walk needed
    else:
        plain = _plain(value, path, 0, set())
    try:
        body: bytes = msgpack.packb(plain, use_bin_type=True, datetime=False)
    except (ValueError, TypeError, OverflowError) as exc:  # pragma: no cover - walk guards
        raise EncodeError(f"{path}: {exc}") from exc
    if max_bytes is not None and len(body) > max_bytes:
        raise ResultTooLarge(
            f"the {path} is {len(body)} bytes encoded, over the {max_bytes}-byte limit"
        )
    return body


def _plain(value: Any, path: str, depth: int, active: set[int]) -> Any:
    """Turn ``value`` into what msgpack packs natively, checking every rule on the way."""
    if value is None or isinstance(value, (bool, str)):
        return str(value) if isinstance(value, str) and type(value) is not str else value
    if isinstance(value, int):
        value = int(value)
        if _INT_MIN <= value <= _INT_MAX:
            return value
        try:
            digits = str(value)
        except ValueError as exc:  # beyond sys.get_int_max_str_digits()
            raise EncodeError(f"{_short(path)}: integer too large to encode ({exc})") from exc
        return msgpack.ExtType(BIGINT_EXT, digits.encode("ascii"))
    if isinstance(value, float):
        return float(value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, memoryview):
        return value.tobytes()
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_UTC)
        return msgpack.Timestamp.from_datetime(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    if depth >= MAX_DEPTH:
        raise EncodeError(f"{_short(path)}: nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, (list, tuple, set, frozenset, dict)):
        if id(value) in active:
            raise EncodeError(f"{_short(path)}: circular reference")
        active.add(id(value))
        try:
            if isinstance(value, dict):
                out = {}
                for key, item in value.items():
                    out[_key(key, path)] = _plain(item, f"{path}[{key!r}]", depth + 1, active)
                return out
            if isinstance(value, (set, frozenset)):
                items: Any = value
                return [_plain(item, f"{path}[...]", depth + 1, active) for item in items]
            return [_plain(item, f"{path}[{i}]", depth + 1, active) for i, item in enumerate(value)]
        finally:
            active.discard(id(value))
    raise EncodeError(f"{_short(path)}: object of type {type(value).__name__!r} is not serializable")


def _key(key: Any, path: str) -> str | int:
    if isinstance(key, bool) or not isinstance(key, (str, int)):
        raise EncodeError(
            f"{path}: dict key {key!r} of type {type(key).__name__!r} is not allowed "
            "(keys must be str or int)"
        )
    if isinstance(key, int):
        number = int(key)
        if not _INT_MIN <= number <= _INT_MAX:
            raise EncodeError(f"{_short(path)}: dict key {number} does not fit in 64 bits")
        return number
    return str(key)


def _short(path: str) -> str:
    return path if len(path) <= 120 else path[:40] + "..." + path[-77:]


def decode(data: bytes, *, max_bytes: int | None = None) -> Any:
    """Decode bytes produced by ``encode``; raise DecodeError for anything else."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    if max_bytes is not None and len(data) > max_bytes:
        raise DecodeError(f"encoded value of {len(data)} bytes exceeds {max_bytes} bytes")
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=False,
            timestamp=3,
            ext_hook=_ext,
            object_pairs_hook=_map,
            max_bin_len=len(data),
            max_str_len=len(data),
            max_array_len=len(data),
            max_map_len=len(data),
            max_ext_len=len(data),
        )
    except DecodeError:
        raise
    except Exception as exc:  # msgpack raises many types for bad input; they become one
        raise DecodeError(f"not a valid encoded value: {exc}") from exc


def _ext(code: int, payload: bytes) -> int:
    if code != BIGINT_EXT:
        raise DecodeError(f"unknown extension type {code}")
    if not 0 < len(payload) <= _MAX_BIGINT_DIGITS:
        raise DecodeError("malformed big integer")
    text = payload.decode("ascii", "replace")
    body = text[1:] if text.startswith("-") else text
    if not body.isdigit() or not body.isascii():
        raise DecodeError("malformed big integer")
    return int(text)


def _map(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    out = {}
    for key, value in pairs:
        if isinstance(key, bool) or not isinstance(key, (str, int)):
            raise DecodeError(f"map key of type {type(key).__name__} is not allowed")
        out[key] = value
    return out
