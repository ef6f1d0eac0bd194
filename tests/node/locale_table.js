// Writes, from Node's own ICU, the locale table that runtimes/javascript/globals.js formats
// numbers and dates with (its LOCALES literal): `node tests/node/locale_table.js`. The unit
// test test_locale_table.py runs it and asserts the table in globals.js is what it writes, so
// the two cannot drift apart.
"use strict";
const LOCALES = ["en-US", "en-GB", "en-CA", "en-AU", "en-IN", "de-DE", "de-AT", "de-CH", "fr-FR",
  "fr-CA", "es-ES", "es-MX", "it-IT", "nl-NL", "pt-BR", "pt-PT", "sv-SE", "da-DK", "nb-NO",
  "fi-FI", "pl-PL", "cs-CZ", "ru-RU", "tr-TR", "ja-JP", "zh-CN"];
const CURRENCIES = ["EUR", "USD", "GBP", "JPY", "CHF", "INR", "CAD", "AUD", "BRL", "SEK"];
const NUMBER_PARTS = new Set(["integer", "group", "decimal", "fraction"]);

function template(locale, opts, value) {
  return new Intl.NumberFormat(locale, opts).formatToParts(value)
    .map((p) => (NUMBER_PARTS.has(p.type) ? "#" : p.value)).join("").replace(/#+/, "#");
}
function numbers(locale) {
  const parts = new Intl.NumberFormat(locale).formatToParts(-1234567.891);
  const of = (t) => (parts.find((p) => p.type === t) || {}).value;
  const plain = (1234).toLocaleString(locale);
  const row = { g: of("group"), d: of("decimal"),
                n: [template(locale, {}, 1234.5), template(locale, {}, -1234.5)],
                min2: plain === "1234" ? 1 : 0,
                nan: (NaN).toLocaleString(locale), inf: (Infinity).toLocaleString(locale),
                indian: (1234567).toLocaleString(locale).replace(/\D/g, "|").split("|")[0].length === 2 ? 1 : 0,
                p: [template(locale, { style: "percent" }, 0.26), template(locale, { style: "percent" }, -0.26)],
                c: {} };
  for (const c of CURRENCIES) {
    const fmt = new Intl.NumberFormat(locale, { style: "currency", currency: c });
    const digits = fmt.resolvedOptions().maximumFractionDigits;
    row.c[c] = [template(locale, { style: "currency", currency: c }, 1234.5),
                template(locale, { style: "currency", currency: c }, -1234.5), digits];
  }
  return row;
}

// dates: a pattern per option set, with tokens for the fields, read off formatToParts of
// dates chosen so that each field's width and name can be told apart
const DATE_SETS = [
  {}, { year: "numeric", month: "numeric", day: "numeric" },
  { year: "numeric", month: "2-digit", day: "2-digit" }, { year: "numeric", month: "long", day: "numeric" },
  { year: "numeric", month: "short", day: "numeric" }, { year: "numeric", month: "long", day: "2-digit" },
  { year: "numeric", month: "short", day: "2-digit" }, { year: "2-digit", month: "2-digit", day: "2-digit" },
  { weekday: "long", year: "numeric", month: "long", day: "numeric" },
  { weekday: "short", year: "numeric", month: "short", day: "numeric" },
  { weekday: "long", month: "long", day: "numeric" }, { weekday: "short", month: "short", day: "numeric" },
  { month: "long", day: "numeric" }, { month: "short", day: "numeric" },
  { month: "long", year: "numeric" }, { month: "short", year: "numeric" }, { month: "2-digit", year: "numeric" },
  { month: "2-digit", day: "2-digit" }, { month: "numeric", day: "numeric" },
  { month: "long" }, { month: "short" }, { weekday: "long" }, { weekday: "short" }, { year: "numeric" },
  { day: "numeric" }, { day: "2-digit" },
];
const TIME_SETS = [
  {}, { hour: "numeric", minute: "numeric", second: "numeric" }, { hour: "2-digit", minute: "2-digit" },
  { hour: "numeric", minute: "2-digit" }, { hour: "2-digit", minute: "2-digit", second: "2-digit" },
  { hour: "numeric", minute: "2-digit", second: "2-digit" }, { hour: "2-digit" }, { hour: "numeric" },
];
const STYLES = [];
for (const d of [undefined, "full", "long", "medium", "short"]) {
  for (const t of [undefined, "medium", "short"]) if (d || t) STYLES.push({ dateStyle: d, timeStyle: t });
}
function key(opts) {
  return Object.keys(opts).filter((k) => opts[k] !== undefined).sort().map((k) => k + "=" + opts[k]).join(",");
}
const REF = Date.UTC(2001, 1, 3, 4, 5, 6);  // Sat 3 Feb 2001 04:05:06
function names(locale, opts, field, dates) {
  return dates.map((t) => (new Intl.DateTimeFormat(locale, { ...opts, timeZone: "UTC" })
    .formatToParts(t).find((p) => p.type === field) || {}).value);
}
function pattern(locale, opts, table) {
  const f = new Intl.DateTimeFormat(locale, { ...opts, timeZone: "UTC" });
  const parts = f.formatToParts(REF);
  const months = Array.from({ length: 12 }, (_, i) => Date.UTC(2001, i, 3, 4, 5, 6));
  const days = Array.from({ length: 7 }, (_, i) => Date.UTC(2001, 1, 4 + i, 4, 5, 6));  // Sun..Sat
  const hc = f.resolvedOptions().hourCycle;
  let out = "";
  for (const p of parts) {
    const v = p.value;
    switch (p.type) {
      case "literal": out += v.replace(/[{}]/g, (c) => "{" + c + "}"); break;
      case "year": out += v.length === 2 ? "{yy}" : "{y}"; break;
      case "day": out += v.length === 2 ? "{dd}" : "{d}"; break;
      case "minute": out += v.length === 2 ? "{mm}" : "{m}"; break;
      case "second": out += v.length === 2 ? "{ss}" : "{s}"; break;
      case "hour": out += "{" + hc + (v.length === 2 ? "2" : "") + "}"; break;
      case "month":
        if (/^\d+$/.test(v)) { out += v.length === 2 ? "{MM}" : "{M}"; break; }
        out += "{N" + table(names(locale, opts, "month", months)) + "}"; break;
      case "weekday": out += "{W" + table(names(locale, opts, "weekday", days)) + "}"; break;
      case "dayPeriod": {
        const am = names(locale, opts, "dayPeriod", [Date.UTC(2001, 1, 3, 4)])[0];
        const pm = names(locale, opts, "dayPeriod", [Date.UTC(2001, 1, 3, 16)])[0];
        out += "{A" + table([am, pm].map((x) => x.replace(/\u202f/g, " "))) + "}"; break;
      }
      default: return null;  // a field this table does not know: not in the table
    }
  }
  // V8 writes a plain space where ICU's parts have a narrow no-break space
  return f.format(REF).includes("\u202f") ? out : out.replace(/\u202f/g, " ");
}
function dates(locale) {
  const lists = [], index = new Map();
  const table = (list) => {
    const k = JSON.stringify(list);
    if (!index.has(k)) { index.set(k, lists.length); lists.push(list); }
    return index.get(k);
  };
  const patterns = {};
  const add = (opts) => { const p = pattern(locale, opts, table); if (p !== null) patterns[key(opts)] = p; };
  for (const d of DATE_SETS) {
    for (const t of TIME_SETS) {
      const both = Object.keys(d).length && Object.keys(t).length;
      if (both && !(DATE_SETS.indexOf(d) <= 4 && TIME_SETS.indexOf(t) <= 5)) continue;
      if (!Object.keys(d).length && !Object.keys(t).length) continue;
      for (const h12 of Object.keys(t).length ? [undefined, true, false] : [undefined]) add({ ...d, ...t, hour12: h12 });
    }
  }
  for (const s of STYLES) for (const h12 of s.timeStyle ? [undefined, true, false] : [undefined]) add({ ...s, hour12: h12 });
  return { patterns, lists };
}

// one list of option keys for all locales; each locale's patterns in that order (null: absent)
const keys = [], out = { keys, locales: {} };
for (const l of LOCALES) {
  const { patterns, lists } = dates(l);
  for (const k of Object.keys(patterns)) if (!keys.includes(k)) keys.push(k);
  out.locales[l] = { n: numbers(l), p: patterns, l: lists };
}
for (const l of LOCALES) {
  const p = out.locales[l].p;
  out.locales[l].p = keys.map((k) => (k in p ? p[k] : null));
}
process.stdout.write(JSON.stringify(out));
