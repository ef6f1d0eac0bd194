"""The snippet contract in JavaScript, through real jails: values, errors, async, output."""

from __future__ import annotations

import datetime

import pytest

from sandbox import Status

UTC = datetime.timezone.utc


def js(sandbox, code, data=None, **limits):
    return sandbox.run("javascript", code, data, **limits)


def test_return_gives_result(sandbox):
    r = js(sandbox, "return data.n * 2", {"n": 21})
    assert r.status is Status.OK and r.value == 42


def test_alias_js_is_accepted(sandbox):
    r = sandbox.run("js", "return 'ok'")
    assert r.status is Status.OK and r.value == "ok"


def test_values_out_follow_the_codec_rules(sandbox):
    r = js(sandbox, """
        return {
          u8: new Uint8Array([0, 255]), ab: new Uint8Array([1, 2]).buffer,
          dv: new DataView(new Uint8Array([3]).buffer), date: new Date(Date.UTC(2026, 0, 2)),
          undef: undefined, big: 2n ** 70n, nan: NaN, f: 1.5, arr: [1, , 3],
          set: new Set([1]), map: new Map([["k", "v"]]), i16: new Int16Array([-1, 2]),
        }""")
    assert r.status is Status.OK, r.message
    v = r.value
    assert v["u8"] == b"\x00\xff" and v["ab"] == b"\x01\x02" and v["dv"] == b"\x03"
    assert v["date"] == datetime.datetime(2026, 1, 2, tzinfo=UTC)
    assert v["undef"] is None and v["big"] == 2**70 and v["nan"] != v["nan"]
    assert v["f"] == 1.5 and v["arr"] == [1, None, 3]
    assert v["set"] == [1] and v["map"] == {"k": "v"} and v["i16"] == [-1, 2]


def test_bytes_round_trip_both_ways(sandbox):
    blob = bytes(range(256))
    r = js(sandbox, "if (!(data instanceof Uint8Array)) throw new Error('not bytes'); return data", blob)
    assert r.status is Status.OK, r.message
    assert r.value == blob


def test_dates_and_big_ints_arrive_as_date_and_bigint(sandbox):
    when = datetime.datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    r = js(sandbox, "return [data.t instanceof Date, data.t.getTime(), typeof data.big]",
           {"t": when, "big": 2**60})
    assert r.value == [True, int(when.timestamp() * 1000), "bigint"]


def test_async_snippet_result(sandbox):
    r = js(sandbox, "const v = await new Promise((ok) => ok(20)); return v + 1")
    assert r.status is Status.OK and r.value == 21


def test_returned_promise_is_resolved(sandbox):
    r = js(sandbox, "return Promise.resolve('later')")
    assert r.status is Status.OK and r.value == "later"


def test_console_is_captured(sandbox):
    r = js(sandbox, "console.log('a', 1, {k: [1]}); console.error('b'); return null")
    assert r.status is Status.OK
    assert r.stdout == "a 1 { k: [ 1 ] }\nb\n"
    assert not r.truncated


def test_console_beyond_cap_is_truncated(sandbox):
    r = js(sandbox, "for (let i = 0; i < 1000; i++) console.log('x'.repeat(100)); return 1",
           stdout_bytes=1000)
    assert r.status is Status.OK and r.truncated
    assert len(r.stdout.encode()) <= 1000


def test_error_has_name_message_and_snippet_line_numbers(sandbox):
    r = js(sandbox, "const a = 1;\nfunction f() {\n  throw new TypeError('boom');\n}\nf();")
    assert r.status is Status.ERROR
    assert (r.error.type, r.error.message) == ("TypeError", "boom")
    assert "<snippet>:3:" in r.error.traceback and "<snippet>:5:" in r.error.traceback


@pytest.mark.parametrize("code, message", [
    ("throw new Error('x'.repeat(5_000_000))", "x" * 65536 + f"... ({5_000_000 - 65536} more characters)"),
    ("throw 'x'.repeat(5_000_000)",
     "uncaught string: " + "x" * 65536 + f"... ({5_000_000 - 65536} more characters)"),
])
def test_an_errors_text_comes_back_clipped_to_its_cap(sandbox, code, message):
    """Whatever the snippet throws, its error fits its envelope (a 50 MB string under a 256 MB
    limit ended memory_limit before: the report copied it)."""
    r = sandbox.run("javascript", code)
    assert (r.status, r.error.message) == (Status.ERROR, message)


def test_syntax_error_names_its_line(sandbox):
    r = js(sandbox, "let a = 1;\nreturn a +;")
    assert r.status is Status.ERROR and r.error.type == "SyntaxError"
    assert "(line 2)" in r.error.message


def test_rejected_promise_is_an_error(sandbox):
    r = js(sandbox, "await Promise.reject(new RangeError('nope'))")
    assert r.status is Status.ERROR and r.error.type == "RangeError"


def test_unserializable_results_are_errors(sandbox):
    for code in ("const a = {}; a.self = a; return a", "return () => 1", "return Symbol('s')",
                 "return {toJSON() { throw new Error('x') }}"):
        r = js(sandbox, code)
        assert r.status is Status.ERROR, code
        assert r.error.type == "UnserializableResult", code


def test_deep_recursion_is_an_error_not_a_crash(sandbox):
    r = js(sandbox, "function r(n) { return r(n + 1) + 1 }\nreturn r(0)")
    assert r.status is Status.ERROR
    assert r.error.type in ("RangeError", "InternalError")


def test_oversized_result_is_output_limit(sandbox):
    r = js(sandbox, "return 'x'.repeat(5000)", result_bytes=2000)
    assert r.status is Status.OUTPUT_LIMIT


@pytest.mark.parametrize("code, position", [
    ("null.x.y", "<snippet>:1:1"),
    ("let a = 1;\n  null.x.y", "<snippet>:2:3"),
    ("let x = ;", "<snippet>:1:9"),
])
def test_stack_positions_are_the_snippets_own_also_on_line_1(sandbox, code, position):
    r = js(sandbox, code)
    assert r.status is Status.ERROR
    assert position in r.error.traceback, r.error.traceback
