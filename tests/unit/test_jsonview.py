"""The CLI's JSON view of codec values, and the tags ``--data`` accepts: reversible."""

from __future__ import annotations

import datetime
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.jsonview import from_json_data, to_jsonable


def test_tags_what_json_cannot_say() -> None:
    when = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    view = to_jsonable({"b": b"\x00\x01", "t": when, "n": math.nan, "i": [math.inf, -math.inf]})
    assert view == {
        "b": {"$bytes": "AAE="},
        "t": {"$datetime": "2026-01-02T03:04:05+00:00"},
        "n": {"$float": "NaN"},
        "i": [{"$float": "Infinity"}, {"$float": "-Infinity"}],
    }
    json.dumps(view, allow_nan=False)  # must not raise


def test_a_dict_that_looks_like_a_tag_is_not_read_as_one() -> None:
    value = [{"$bytes": "aGk="}, b"hi"]
    view = to_jsonable(value)
    assert view == [{"$dict": {"$bytes": "aGk="}}, {"$bytes": "aGk="}]
    assert from_json_data(json.dumps(view)) == value


def test_ints_beyond_2_53_are_tagged_so_javascript_readers_do_not_round_them() -> None:
    assert to_jsonable([2**53 - 1, 2**53, -(2**63)]) == [2**53 - 1, {"$int": "9007199254740992"},
                                                          {"$int": "-9223372036854775808"}]


def test_int_keys_survive_as_a_map() -> None:
    view = to_jsonable({7: "a", "k": 1})
    assert view == {"$map": [[7, "a"], ["k", 1]]}
    assert from_json_data(json.dumps(view)) == {7: "a", "k": 1}


def test_data_tags_become_values() -> None:
    data = from_json_data(
        '{"b": {"$bytes": "AAE="}, "t": {"$datetime": "2026-01-02T03:04:05+00:00"}, "x": 1}')
    assert data["b"] == b"\x00\x01"
    assert data["t"] == datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    assert data["x"] == 1


def test_objects_with_more_keys_are_left_alone() -> None:
    assert from_json_data('{"$bytes": "AAE=", "other": 1}') == {"$bytes": "AAE=", "other": 1}


@pytest.mark.parametrize("text", ["{bad", '{"$bytes": "***"}', '{"$int": "12x"}',
                                  '{"$map": [[[1], 2]]}', '{"$datetime": "yesterday"}'])
def test_invalid_data_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        from_json_data(text)


_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=5)
    | st.binary(max_size=5) | st.sampled_from(sorted({"$bytes", "$int", "$dict", "$map"})),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=6) | st.sampled_from(["$bytes", "$dict", "$map"]), inner, max_size=2)
    | st.dictionaries(st.integers(-5, 5), inner, max_size=2),
    max_leaves=12,
)


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@settings(max_examples=500, deadline=None)
@given(_values)
def test_the_view_reads_back_to_the_same_value(value) -> None:
    text = json.dumps(to_jsonable(value), allow_nan=False)
    assert _same(from_json_data(text), value)
