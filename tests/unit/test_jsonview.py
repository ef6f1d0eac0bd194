"""The CLI's JSON view of codec values, and the tags ``--data`` accepts."""

from __future__ import annotations

import datetime
import json
import math

import pytest

from sandbox.jsonview import from_json_data, to_jsonable


def test_tags_what_json_cannot_say() -> None:
    when = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    view = to_jsonable({"b": b"\x00\x01", "t": when, "n": math.nan, 7: [math.inf, -math.inf]})
    assert view == {
        "b": {"$bytes": "AAE="},
        "t": {"$datetime": "2026-01-02T03:04:05+00:00"},
        "n": {"$float": "NaN"},
        "7": [{"$float": "Infinity"}, {"$float": "-Infinity"}],
    }
    json.dumps(view, allow_nan=False)  # must not raise


def test_data_tags_become_values() -> None:
    data = from_json_data(
        '{"b": {"$bytes": "AAE="}, "t": {"$datetime": "2026-01-02T03:04:05+00:00"}, "x": 1}')
    assert data["b"] == b"\x00\x01"
    assert data["t"] == datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    assert data["x"] == 1


def test_objects_with_more_keys_are_left_alone() -> None:
    assert from_json_data('{"$bytes": "AAE=", "other": 1}') == {"$bytes": "AAE=", "other": 1}


@pytest.mark.parametrize("text", ["{bad", '{"$bytes": "***"}'])
def test_invalid_data_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        from_json_data(text)
