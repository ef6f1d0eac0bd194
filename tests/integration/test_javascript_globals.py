"""The Node and web globals every JavaScript snippet has (runtimes/javascript/globals.js),
through real jails. Each expected value is what Node 20 (V8) gives for the same expression.
"""

from __future__ import annotations

import pytest

from sandbox import Status

pytestmark = pytest.mark.jail


def value(sandbox, code):
    r = sandbox.run("javascript", code)
    assert r.status is Status.OK, r.message
    return r.value


def test_buffer_encodes_and_decodes_as_node_does(sandbox):
    assert value(sandbox, """
        const b = Buffer.from('héllo wörld', 'utf8');
        return [b.toString('base64'), b.toString('hex'),
                Buffer.from('aMOpbGxv', 'base64').toString('utf8'),
                Buffer.from('68c3a9', 'hex').toString(), Buffer.from('héllo').toString('base64url'),
                Buffer.byteLength('héllo'), Buffer.concat([Buffer.from('ab'), Buffer.from('cd')]).toString(),
                Buffer.isBuffer(Buffer.alloc(2)), Buffer.isBuffer(new Uint8Array(2)),
                JSON.stringify(Buffer.from('hi'))]""") == [
        "aMOpbGxvIHfDtnJsZA==", "68c3a96c6c6f2077c3b6726c64", "héllo", "hé", "aMOpbGxv", 6, "abcd",
        True, False, '{"type":"Buffer","data":[104,105]}']


def test_unknown_buffer_encoding_is_nodes_type_error(sandbox):
    r = sandbox.run("javascript", "return Buffer.from('x', 'nope')")
    assert r.status is Status.ERROR and r.error is not None
    assert (r.error.type, r.error.message) == ("TypeError", "Unknown encoding: nope")


def test_btoa_atob_and_text_codecs(sandbox):
    assert value(sandbox, """
        return [btoa('hello'), atob('aGVsbG8='), Array.from(new TextEncoder().encode('é€')),
                new TextDecoder().decode(new Uint8Array([226, 130, 172]))]""") == [
        "aGVsbG8=", "hello", [195, 169, 226, 130, 172], "€"]


def test_url_and_search_params_as_whatwg_says(sandbox):
    assert value(sandbox, """
        const u = new URL('https://User:pw@Example.com:443/a/./b/../c d?x=1&y=a b#frag');
        const p = new URLSearchParams({q: 'a b&c', n: '1'});
        p.append('n', '2');
        return [u.href, u.host, u.port, u.pathname, u.search, u.hash, u.origin,
                u.searchParams.get('y'), p.toString(), p.getAll('n'),
                new URL('../x?y=1', 'https://a.com/b/c/d').href]""") == [
        "https://User:pw@example.com/a/c%20d?x=1&y=a%20b#frag", "example.com", "", "/a/c%20d",
        "?x=1&y=a%20b", "#frag", "https://example.com", "a b", "q=a+b%26c&n=1&n=2", ["1", "2"],
        "https://a.com/b/x?y=1"]


def test_an_invalid_url_is_a_type_error(sandbox):
    r = sandbox.run("javascript", "return new URL('nope')")
    assert r.status is Status.ERROR and r.error is not None
    assert (r.error.type, r.error.message) == ("TypeError", "Invalid URL")


def test_structured_clone_copies_deeply(sandbox):
    assert value(sandbox, """
        const a = {d: new Date(0), m: new Map([['k', [1]]]), s: new Set([2])};
        a.self = a;
        const c = structuredClone(a);
        return [c !== a, c.self === c, c.d.getTime(), c.m.get('k'), [...c.s], c.m.get('k') !== a.m.get('k')]
    """) == [True, True, 0, [1], [2], True]


def test_set_timeout_runs_as_a_later_job_in_due_order(sandbox):
    assert value(sandbox, """
        const seen = [];
        setTimeout(() => seen.push('b'), 20);
        setTimeout(() => seen.push('a'), 10);
        const t = setTimeout(() => seen.push('never'), 5);
        clearTimeout(t);
        await new Promise((resolve) => setTimeout(resolve, 30));
        return seen""") == ["a", "b"]


def test_random_values_differ_from_task_to_task(sandbox):
    # the pristine context is forked into every child: its own Math.random state would repeat
    first = value(sandbox, "return [Math.random(), crypto.randomUUID()]")
    second = value(sandbox, "return [Math.random(), crypto.randomUUID()]")
    assert first[0] != second[0] and first[1] != second[1]


def test_random_uuid_is_version_4(sandbox):
    assert value(sandbox, r"""
        const u = crypto.randomUUID();
        const b = crypto.getRandomValues(new Uint8Array(16));
        return [/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(u), b.length]
    """) == [True, 16]


@pytest.mark.parametrize("text,message", [
    ("abc", "Unexpected token 'a', \"abc\" is not valid JSON"),
    ("", "Unexpected end of JSON input"),
    ('{"a":1,}', "Expected double-quoted property name in JSON at position 7 (line 1 column 8)"),
    ('{"a": 1} x', "Unexpected non-whitespace character after JSON at position 9 (line 1 column 10)"),
    ("<html><body>Error</body></html>", "Unexpected token '<', \"<html><bod\"... is not valid JSON"),
])
def test_json_parse_errors_are_v8s(sandbox, text, message):
    r = sandbox.run("javascript", "return JSON.parse(data)", text)
    assert r.status is Status.ERROR and r.error is not None
    assert (r.error.type, r.error.message) == ("SyntaxError", message)


def test_locale_formatting_is_real_for_the_common_cases(sandbox):
    assert value(sandbox, """
        const d = new Date(Date.UTC(2024, 6, 4, 23, 30, 0));
        return [d.toLocaleString('de-DE', {timeZone: 'Europe/Berlin'}), (1234567.891).toLocaleString(),
                (1234.5).toLocaleString('de-DE', {style: 'currency', currency: 'EUR'}),
                new Intl.NumberFormat('fr-FR').format(1234567.891),
                d.toLocaleDateString('en-US', {weekday: 'long', year: 'numeric', month: 'long',
                                               day: 'numeric', timeZone: 'America/New_York'}),
                new Intl.DateTimeFormat('en-GB', {dateStyle: 'medium', timeStyle: 'short',
                                                  timeZone: 'Asia/Kolkata'}).format(d),
                d.toLocaleDateString('sv-SE'), Intl.DateTimeFormat().resolvedOptions().timeZone]
    """) == ["5.7.2024, 01:30:00", "1,234,567.891", "1.234,50\u00a0€", "1\u202f234\u202f567,891",
             "Thursday, July 4, 2024", "5 Jul 2024, 05:00", "2024-07-04", "UTC"]


def test_locale_formatting_knows_every_zone_of_the_time_zone_database(sandbox):
    # a zone beyond the built-in table: its offsets from the host's database (Node's text)
    assert value(sandbox, """
        const d = new Date(Date.UTC(2024, 6, 4, 23, 30, 0));
        return d.toLocaleString('en-US', {timeZone: 'Antarctica/Troll'})
    """) == "7/5/2024, 1:30:00 AM"


@pytest.mark.parametrize("code,message", [
    ("return new Date(0).toLocaleString('en-US', {timeZone: 'Mars/Base'})",
     "Date.prototype.toLocaleString: the time zone 'Mars/Base' is not supported in this "
     "runner (snippet-sandbox)"),
    ("return (5).toLocaleString('ko-KR')",
     "Number.prototype.toLocaleString: the locale 'ko-KR' is not supported in this runner "
     "(snippet-sandbox)"),
    ("return new Intl.NumberFormat('en-US', {notation: 'compact'}).format(1234)",
     "Intl.NumberFormat: notation 'compact' is not supported in this runner (snippet-sandbox)"),
])
def test_locale_formatting_it_cannot_do_is_an_error_naming_it(sandbox, code, message):
    r = sandbox.run("javascript", code)
    assert r.status is Status.ERROR and r.error is not None
    assert (r.error.type, r.error.message) == ("RangeError", message)


def test_date_time_format_to_parts_is_nodes(sandbox):
    # Node 24's parts for the same calls
    assert value(sandbox, """
        const d = new Date(Date.UTC(2024, 2, 15, 10, 30));
        return new Intl.DateTimeFormat('de-DE', {hour: '2-digit', minute: '2-digit',
                                                 timeZone: 'Europe/Berlin'}).formatToParts(d)
    """) == [{"type": "hour", "value": "11"}, {"type": "literal", "value": ":"},
             {"type": "minute", "value": "30"}]
