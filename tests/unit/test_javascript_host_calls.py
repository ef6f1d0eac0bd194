"""What the JavaScript runtime's host callables answer (pure functions of the executor, no
jail): the time zone database's offsets for luxon and Intl, and hashing for crypto."""

from __future__ import annotations

import hashlib
import hmac
import os

import pytest

from runtimes.javascript import executor

pytestmark = pytest.mark.skipif(not os.path.isdir("/usr/share/zoneinfo"),
                                reason="no time zone database on this host")


@pytest.mark.parametrize("zone,ms,minutes", [
    ("Europe/Berlin", 1_719_835_200_000, 120.0),  # 2024-07-01: summer time
    ("Europe/Berlin", 1_704_110_400_000, 60.0),  # 2024-01-01
    ("Asia/Kolkata", 0, 330.0),
    ("UTC", 0, 0.0),
])
def test_a_zones_offset_comes_from_the_database(zone, ms, minutes):
    assert executor._tz_offset(zone, ms) == minutes


@pytest.mark.parametrize("zone", ["Mars/Base", "", "../../etc/passwd", "Europe/../Berlin", 5])
def test_a_zone_it_does_not_know_is_none(zone):
    assert executor._tz_offset(zone, 0) is None


def test_digest_and_hmac_as_hashlib():
    data = "h\xe9llo"  # bytes as latin-1 text, as crypto.js hands them over
    raw = data.encode("latin-1")
    assert executor._digest("sha256", None, data) == hashlib.sha256(raw).digest().decode("latin-1")
    assert executor._digest("md5", "k", data) == hmac.new(b"k", raw, "md5").digest().decode("latin-1")


def test_an_unknown_digest_is_none():
    assert executor._digest("whirlpool", None, "x") is None
