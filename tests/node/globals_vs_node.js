// Runs runtimes/javascript/globals.js in a vm context of this Node and compares what it
// gives with what Node's own built-ins give for the same calls (Buffer, btoa/atob, text codecs,
// URL, JSON.parse's messages, toLocaleString and Intl). Prints a JSON summary; the unit test
// test_globals_against_node.py asserts no difference. A call that globals.js refuses as not
// supported (a locale, an option set or a time zone its table lacks) is counted, not compared.
"use strict";
const vm = require("vm"), fs = require("fs"), path = require("path"), crypto = require("crypto");
const dir = path.join(__dirname, "..", "..", "runtimes", "javascript");
const src = fs.readFileSync(path.join(dir, "globals.js"), "utf8");
const ctx = vm.createContext({ __random_bytes: (n) => crypto.randomBytes(n).toString("latin1"), __sandbox: {},
                               __locale_table: () => fs.readFileSync(path.join(dir, "locale_table.json"), "utf8"),
                               __library_module: (n) => fs.readFileSync(path.join(dir, "library", n + ".js"), "utf8"),
                               // the jail's time zone database is the executor's: the table here
                               __tz_offset: () => null, __digest: () => null, __v8_message: (n, m) => m });
vm.runInContext(src, ctx);
const cJSON = vm.runInContext("JSON", ctx), cNum = vm.runInContext("Number", ctx);
const cDate = vm.runInContext("Date", ctx), cIntl = vm.runInContext("Intl", ctx);
let compared = 0, refused = 0;
const differ = [];
function eq(label, a, b) { same(label, ["ok", a], ["ok", b]); }
function msg(f) { try { return ["ok", f()]; } catch (e) { return [e.name, e.message]; } }
function same(label, a, b) {
  if (a[0] === "RangeError" && / is not supported in this runner/.test(a[1])) { refused++; return; }
  compared++;
  if (JSON.stringify(a) !== JSON.stringify(b)) differ.push([label, a, b]);
}
const cBuffer = vm.runInContext('Buffer', ctx), cbtoa = vm.runInContext('btoa', ctx), catob = vm.runInContext('atob', ctx), cTextEncoder = vm.runInContext('TextEncoder', ctx), cTextDecoder = vm.runInContext('TextDecoder', ctx), ccrypto = vm.runInContext('crypto', ctx), cstructuredClone = vm.runInContext('structuredClone', ctx);
const jsons = ["01", "{\"a\" 1}", "{\"a\":1 \"b\":2}", "[1,]", "[1 2]", "{\"a\":1,\"b\"}", "-", "1.", "1e", "\"ab", "\"a\\x\"", "\"\\u12\"", "\"a\tb\"", "tru", "nul", "{\"a\": 1} x", "  ", "[1, 2, 3, 4, 5, 6, 7, 8, 9, x, 11, 12]", "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, x]", "[x, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]", "NaN", "{\"a\":1,}", "{,}", "[", "{", "{\"a\"", "{\"a\":", "[1,", "\u00e9", "{\"a\":1}}", "1 2", "[1]]", "\"a\" \"b\"", "{\"a\": [1, {\"b\": 2,}]}", "{\"a\": x}", "[\"a\" 1]", "undefined", "[object Object]", "{'a': 1}", "{\"a\": 'x'}", "<html><body>Error</body></html>", "", "Infinity", "-Infinity", "{\"a\":1}\n\n{\"b\":2}", "True", "{\"a\": .5}", "[-]", "{\"a\":1e+}", "\"\\ud800\"", "{\"text\": \"line1\nline2\"}", "[1,2,3,]"];
// n8n 2.41.1 runs on Node 24 (tests/n8n/differential/golden.json holds its words), whose V8
// follows "at position N" with " (line L column C)" and words a missing colon after any
// property as it does after the first: Node 20's messages, moved to Node 24's
function node24(j, r) {
  if (r[0] !== "SyntaxError" || process.versions.node.split(".")[0] !== "20") return r;
  let m = r[1];
  const colon = /^\{.*,\s*"[^"]*"\s*\}$/.test(j) && /^Unexpected token '}'/.test(m);
  if (colon) m = "Expected ':' after property name in JSON at position " + (j.length - 1);
  const at = / at position (\d+)$/.exec(m);
  if (at) {
    const before = j.slice(0, Number(at[1]));
    m += " (line " + before.split("\n").length + " column " + (Number(at[1]) - before.lastIndexOf("\n")) + ")";
  }
  return [r[0], m];
}
for (const j of jsons) same('JSON.parse ' + JSON.stringify(j), msg(() => cJSON.parse(j)), node24(j, msg(() => JSON.parse(j))));
same('JSON.parse undefined', msg(() => cJSON.parse(undefined)), msg(() => JSON.parse(undefined)));
same('JSON.parse obj', msg(() => cJSON.parse({})), msg(() => JSON.parse({})));
const strs = ["", "hello", "héllo wörld €", "😀 emoji", "\u0000\u00ff", "a\ud800b", "aGVsbG8=", "aGVsbG8", "YQ", "-_-_", "zz!!", "48656c6c6f", "4865zz", "abc", "   "];
const encs = ["utf8", "utf-8", "base64", "base64url", "hex", "latin1", "binary", "ascii", "utf16le", "ucs2", undefined, "UTF8", "nope"];
for (const s of strs) for (const e of encs) {
  same(`from(${JSON.stringify(s)},${e})`, msg(() => Array.from(cBuffer.from(s, e))), msg(() => Array.from(Buffer.from(s, e))));
  for (const e2 of encs) same(`from(${JSON.stringify(s)},${e}).toString(${e2})`, msg(() => cBuffer.from(s, e).toString(e2)), msg(() => Buffer.from(s, e).toString(e2)));
  same(`byteLength(${JSON.stringify(s)},${e})`, msg(() => cBuffer.byteLength(s, e)), msg(() => Buffer.byteLength(s, e)));
}
eq('concat', Array.from(cBuffer.concat([cBuffer.from('ab'), cBuffer.from('cd')])), Array.from(Buffer.concat([Buffer.from('ab'), Buffer.from('cd')])));
eq('concat n', Array.from(cBuffer.concat([cBuffer.from('ab'), cBuffer.from('cd')], 3)), Array.from(Buffer.concat([Buffer.from('ab'), Buffer.from('cd')], 3)));
eq('isBuffer', [cBuffer.isBuffer(cBuffer.from('a')), cBuffer.isBuffer(new Uint8Array(1)), cBuffer.isBuffer('a')], [true, false, false]);
eq('toJSON', JSON.stringify(cBuffer.from('hi')), JSON.stringify(Buffer.from('hi')));
eq('slice', cBuffer.from('hello').slice(1, 3).toString(), Buffer.from('hello').slice(1, 3).toString());
eq('subarray', cBuffer.from('hello').subarray(1).toString('hex'), Buffer.from('hello').subarray(1).toString('hex'));
eq('alloc', Array.from(cBuffer.alloc(5, 'ab')), Array.from(Buffer.alloc(5, 'ab')));
eq('from arr', cBuffer.from([104, 105, 300]).toString(), Buffer.from([104, 105, 300]).toString());
eq('from json', cBuffer.from({type: 'Buffer', data: [104, 105]}).toString(), Buffer.from({type: 'Buffer', data: [104, 105]}).toString());
eq('equals', cBuffer.from('a').equals(cBuffer.from('a')), true);
eq('readUInt32BE', cBuffer.from([1,2,3,4]).readUInt32BE(0), Buffer.from([1,2,3,4]).readUInt32BE(0));
eq('indexOf', cBuffer.from('hello world').indexOf('wor'), Buffer.from('hello world').indexOf('wor'));
eq('uuid', /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(ccrypto.randomUUID()), true);
for (const s of ["hi", "héllo", "€", "", "\u00ff\u0000"]) same('btoa ' + s, msg(() => cbtoa(s)), msg(() => btoa(s)));
for (const s of ["aGk=", "aGk", "a", "aGk===", "!!", "aG k=", "", "////"]) same('atob ' + s, msg(() => catob(s)), msg(() => atob(s)));
for (const s of ["héllo €😀", "", "a\ud800"]) same('TextEncoder ' + s, msg(() => Array.from(new cTextEncoder().encode(s))), msg(() => Array.from(new TextEncoder().encode(s))));
for (const b of [[104, 195, 169], [0xff, 0x41], [0xe2, 0x82], [0xef, 0xbb, 0xbf, 0x41], [0xf0, 0x9f, 0x98, 0x80], [0xed, 0xa0, 0x80], [0xc0, 0x80]]) same('TextDecoder ' + b, msg(() => new cTextDecoder().decode(new Uint8Array(b))), msg(() => new TextDecoder().decode(new Uint8Array(b))));
same('random', ['ok', (() => { const r = vm.runInContext('Math.random()', ctx); return r >= 0 && r < 1; })()], ['ok', true]);
same('structuredClone fn', msg(() => cstructuredClone(() => 1)), msg(() => structuredClone(() => 1)));
const urls = [["https://User:pw@Example.com:443/a/./b/../c d?x=1&y=a b#frag"], ["http://a.com"], ["../x?y=1", "https://a.com/b/c/d"], ["?q=2", "https://a.com/b?x=1"], ["#h", "https://a.com/b?x=1"], ["//other.org/p", "https://a.com/b"], ["/abs/path", "https://a.com/b/c"], ["nope"], ["https://"], ["https://a.com:99999"], ["https://a.com:8080/x"], ["mailto:someone@example.com"], ["https://api.example.com/v1/users?id=123&name=John%20Doe"], ["https://example.com/path/é?q=ü#ß"], ["HTTPS://EXAMPLE.COM/A"], ["http://a.com/x/../../y"], ["https://a.com?x"], ["https://a.com/b c"], ["file:///etc/hosts"], ["data:text/plain,hello"], ["https://a.com/?a=1&a=2&b"], ["x", "https://a.com"], ["https://a.com/p?q=a'b"]];
for (const [u, b] of urls) {
  const f = (U) => { const x = new U(u, b); return [x.href, x.protocol, x.username, x.password, x.host, x.hostname, x.port, x.pathname, x.search, x.hash, x.origin, Array.from(x.searchParams)]; };
  same('URL ' + u + ' ' + (b || ''), msg(() => f(vm.runInContext('URL', ctx))), msg(() => f(URL)));
}
for (const init of ["a=1&b=2", "?q=a+b%20c&x", "", "a=%zz&b=é", "k=v=w"]) {
  const f = (P) => { const p = new P(init); p.append('n', 'x y&z'); p.set('a', 'é'); p.sort(); return [p.toString(), p.get('a'), p.getAll('n'), p.has('b'), p.size, Array.from(p.keys())]; };
  same('USP ' + init, msg(() => f(vm.runInContext('URLSearchParams', ctx))), msg(() => f(URLSearchParams)));
}
{ const f = (U) => { const u = new U('https://a.com/p?x=1'); u.searchParams.set('y', 'a b'); u.searchParams.append('x', '2'); u.hash = 'h'; return u.href; };
  same('USP live', msg(() => f(vm.runInContext('URL', ctx))), msg(() => f(URL))); }
{ const f = (P) => new P({q: 'a b&c', n: '1'}).toString(); same('USP obj', msg(() => f(vm.runInContext('URLSearchParams', ctx))), msg(() => f(URLSearchParams))); }
const locs = [undefined, 'en-US', 'en-GB', 'de-DE', 'de', 'fr-FR', 'es-ES', 'it-IT', 'nl-NL', 'pt-BR', 'sv-SE', 'en-IN', 'de-CH', 'ja-JP', 'ru-RU', 'pl-PL', 'tr-TR', 'fr-CA', 'nb-NO', 'xx-YY'];
const nums = [1234567.891, 1234.5, 0.5, -9876.54321, 0, -0, 1.005, 0.125, 1e21, 1.23e-7, 12, 99.995, -0.0001, NaN, Infinity, 1234, 12345];
const nopts = [undefined, {style: 'currency', currency: 'EUR'}, {style: 'currency', currency: 'USD'}, {style: 'currency', currency: 'JPY'}, {style: 'percent'}, {minimumFractionDigits: 2}, {maximumFractionDigits: 0}, {minimumFractionDigits: 2, maximumFractionDigits: 2}, {useGrouping: false}, {minimumIntegerDigits: 3}, {style: 'currency', currency: 'GBP', minimumFractionDigits: 0}, {maximumFractionDigits: 1}];
for (const l of locs) for (const x of nums) for (const o of nopts) {
  same(`num ${l} ${x} ${JSON.stringify(o)}`, msg(() => cNum.prototype.toLocaleString.call(x, l, o)), msg(() => x.toLocaleString(l, o)));
}
same('NF', msg(() => new cIntl.NumberFormat('de-DE', {style: 'currency', currency: 'EUR'}).format(1234.5)), msg(() => new Intl.NumberFormat('de-DE', {style: 'currency', currency: 'EUR'}).format(1234.5)));
const dates = [Date.UTC(2024, 3, 6, 15, 59), Date.UTC(2024, 3, 6, 16, 0), Date.UTC(2024, 9, 5, 15, 59), Date.UTC(2024, 9, 5, 16, 0), Date.UTC(2024, 8, 28, 13, 59), Date.UTC(2024, 8, 28, 14, 0), Date.UTC(2024, 3, 6, 13, 59), Date.UTC(2024, 3, 6, 14, 0), Date.UTC(2024, 0, 15, 9, 5, 3), Date.UTC(2024, 6, 4, 23, 30, 0), Date.UTC(2024, 2, 31, 0, 59, 59), Date.UTC(2024, 2, 31, 1, 0, 0), Date.UTC(2024, 9, 27, 0, 59, 0), Date.UTC(2024, 9, 27, 1, 0, 0), Date.UTC(2024, 2, 10, 6, 59), Date.UTC(2024, 2, 10, 7, 0), Date.UTC(2024, 10, 3, 5, 59), Date.UTC(2024, 10, 3, 6, 0), Date.UTC(2025, 11, 31, 12, 0, 0), Date.UTC(2026, 1, 28, 0, 0, 0)];
const zones = ['Pacific/Auckland', 'Australia/Adelaide', undefined, 'Europe/Berlin', 'America/New_York', 'Asia/Kolkata'];
const dopts = [undefined, {}, {year: 'numeric', month: 'long', day: 'numeric'}, {year: 'numeric', month: '2-digit', day: '2-digit'}, {weekday: 'long', year: 'numeric', month: 'long', day: 'numeric'}, {hour: '2-digit', minute: '2-digit'}, {hour: '2-digit', minute: '2-digit', hour12: false}, {month: 'long'}, {weekday: 'short'}, {dateStyle: 'medium'}, {dateStyle: 'full', timeStyle: 'short'}, {year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false}, {month: 'short', day: 'numeric'}, {hour: 'numeric', minute: '2-digit', hour12: true}, {timeZoneName: 'short'}];
for (const l of locs) for (const t of dates) for (const z of zones) for (const o0 of dopts) for (const m of ['toLocaleString', 'toLocaleDateString', 'toLocaleTimeString']) if (locs.indexOf(l) % 3 === ['toLocaleString', 'toLocaleDateString', 'toLocaleTimeString'].indexOf(m) || l === 'en-US' || l === 'de-DE') {
  const o = o0 === undefined ? (z ? {timeZone: z} : undefined) : {...o0, timeZone: z};
  same(`date ${m} ${l} ${new Date(t).toISOString()} ${JSON.stringify(o)}`, msg(() => cDate.prototype[m].call(new cDate(t), l, o)), msg(() => new Date(t)[m](l, o ?? (z === undefined ? {timeZone: 'UTC'} : o))));
}
for (const l of locs) for (const o of dopts) same(`DTF ${l} ${JSON.stringify(o)}`, msg(() => new cIntl.DateTimeFormat(l, {...o, timeZone: 'Europe/Berlin'}).format(dates[1])), msg(() => new Intl.DateTimeFormat(l, {...o, timeZone: 'Europe/Berlin'}).format(dates[1])));
same('resolved tz', ['ok', new cIntl.DateTimeFormat().resolvedOptions().timeZone], ['ok', 'UTC']);
process.stdout.write(JSON.stringify({ compared, refused, differ: differ.slice(0, 20), differences: differ.length }));
