"""The codec's rules: round trips (property tests) and each defined failure outcome."""

from __future__ import annotations

import datetime
import decimal
import math

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtimes import codec

UTC = datetime.timezone.utc

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
    | st.datetimes(
        min_value=datetime.datetime(1900, 1, 1), max_value=datetime.datetime(2200, 1, 1),
        timezones=st.just(UTC),
    )
)
keys = st.text() | st.integers(min_value=-(2**63), max_value=2**64 - 1)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=30,
)


@given(values)
def test_round_trip(value: object) -> None:
    assert codec.decode(codec.encode(value)) == value


@given(st.lists(st.integers(min_value=-(2**70), max_value=2**70), max_size=5).map(tuple))
def test_tuples_arrive_as_lists(value: tuple[int, ...]) -> None:
    assert codec.decode(codec.encode(value)) == list(value)


@given(st.binary())
def test_bytes_likes_arrive_as_bytes(value: bytes) -> None:
    for form in (value, bytearray(value), memoryview(value)):
        out = codec.decode(codec.encode(form))
        assert type(out) is bytes and out == value


def test_bytes_are_msgpack_bin_not_base64() -> None:
    assert codec.encode(b"\x00\xff") == msgpack.packb(b"\x00\xff", use_bin_type=True)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_round_trip(value: float) -> None:
    out = codec.decode(codec.encode(value))
    assert (math.isnan(out) and math.isnan(value)) or out == value


def test_naive_datetime_is_taken_as_utc() -> None:
    naive = datetime.datetime(2026, 5, 4, 3, 2, 1, 123456)
    assert codec.decode(codec.encode(naive)) == naive.replace(tzinfo=UTC)


def test_aware_datetime_arrives_in_utc() -> None:
    plus2 = datetime.timezone(datetime.timedelta(hours=2))
    out = codec.decode(codec.encode(datetime.datetime(2026, 1, 1, 12, tzinfo=plus2)))
    assert out == datetime.datetime(2026, 1, 1, 10, tzinfo=UTC) and out.tzinfo == UTC


def test_date_is_an_iso_string() -> None:
    assert codec.decode(codec.encode(datetime.date(2026, 11, 25))) == "2026-11-25"


def test_sets_arrive_as_lists() -> None:
    assert sorted(codec.decode(codec.encode({3, 1, 2}))) == [1, 2, 3]


def test_big_ints_use_the_ext_type() -> None:
    encoded = codec.encode(2**64)
    assert msgpack.unpackb(encoded) == msgpack.ExtType(codec.BIGINT_EXT, b"18446744073709551616")
    assert codec.decode(encoded) == 2**64


def test_list_cycle_is_an_error() -> None:
    loop: list[object] = [1]
    loop.append(loop)
    with pytest.raises(codec.EncodeError, match=r"result\[1\]: circular reference"):
        codec.encode(loop)


def test_dict_cycle_is_an_error() -> None:
    loop: dict[str, object] = {}
    loop["self"] = loop
    with pytest.raises(codec.EncodeError, match="circular"):
        codec.encode(loop)


def test_shared_but_acyclic_values_are_fine() -> None:
    shared = [1, 2]
    assert codec.decode(codec.encode([shared, shared])) == [[1, 2], [1, 2]]


def test_too_deep_is_an_error() -> None:
    deep: list[object] = []
    for _ in range(300):
        deep = [deep]
    with pytest.raises(codec.EncodeError, match="nested deeper than 256"):
        codec.encode(deep)


@pytest.mark.parametrize(
    "value, type_name",
    [(object(), "object"), (lambda: 1, "function"), (decimal.Decimal("1.5"), "Decimal")],
)
def test_unsupported_types_name_type_and_path(value: object, type_name: str) -> None:
    with pytest.raises(codec.EncodeError, match=rf"result\['k'\]\[0\]: object of type '{type_name}'"):
        codec.encode({"k": [value]})


@pytest.mark.parametrize("key", [True, (1, 2), None, 1.5, 2**64])
def test_bad_dict_keys_are_errors(key: object) -> None:
    with pytest.raises(codec.EncodeError, match="key"):
        codec.encode({key: 1})


def test_oversized_is_result_too_large() -> None:
    with pytest.raises(codec.ResultTooLarge, match="over the 100-byte limit") as info:
        codec.encode(b"x" * 1000, max_bytes=100)
    assert isinstance(info.value, codec.EncodeError)


@settings(max_examples=2000)
@given(st.binary(max_size=64))
def test_decode_of_random_bytes_returns_or_raises_decode_error(data: bytes) -> None:
    try:
        codec.decode(data)
    except codec.DecodeError:
        pass


@given(values)
def test_truncated_encodings_raise_decode_error(value: object) -> None:
    encoded = codec.encode(value)
    for cut in range(len(encoded) - 1, max(-1, len(encoded) - 8), -1):
        with pytest.raises(codec.DecodeError):
            codec.decode(encoded[:cut])


@pytest.mark.parametrize("code", [0, 2, 42, 127])
def test_unknown_ext_types_raise_decode_error(code: int) -> None:
    with pytest.raises(codec.DecodeError, match="unknown extension"):
        codec.decode(msgpack.packb(msgpack.ExtType(code, b"x")))


@pytest.mark.parametrize("payload", [b"", b"12a", b"--1", b"\xff"])
def test_malformed_big_ints_raise_decode_error(payload: bytes) -> None:
    with pytest.raises(codec.DecodeError):
        codec.decode(msgpack.packb(msgpack.ExtType(codec.BIGINT_EXT, payload)))


def test_decode_refuses_more_than_max_bytes() -> None:
    with pytest.raises(codec.DecodeError, match="exceeds"):
        codec.decode(codec.encode("x" * 100), max_bytes=10)


def test_decode_refuses_non_bytes() -> None:
    with pytest.raises(codec.DecodeError):
        codec.decode("not bytes")  # type: ignore[arg-type]
