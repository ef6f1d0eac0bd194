// A module of globals.js, compiled on a task's first use of what it defines (see the
// loader there): toLocaleString and Intl.
// One function expression: it takes the loader's helpers and returns what it defines.
(function (h) {
  "use strict";
  const { define, isArray, fromCharCode, nativeParse, DOMException } = h;
  // -- locale formatting: toLocaleString and Intl from a table of Node's own ICU output -----
  // (locale_table.json, written by tests/node/locale_table.js). What the table lacks (a
  // locale, an option set, a time zone) throws an error that names it: never a silently
  // different text.
  let table = null;
  function notSupported(what) {
    return new RangeError(what + " is not supported in this runner (snippet-sandbox)");
  }
  function localeOf(locales, api) {
    if (table === null) table = nativeParse(h.localeTable());
    let tag = isArray(locales) ? locales[0] : locales;
    if (tag === undefined) return "en-US";
    tag = String(tag).replace(/_/g, "-");
    const [lang, region] = tag.split("-");
    const want = lang.toLowerCase() + (region ? "-" + region.toUpperCase() : "");
    if (table.locales[want]) return want;
    const found = Object.keys(table.locales).find((l) => l.split("-")[0] === lang.toLowerCase());
    if (found && (!region || region.length > 2)) return found;
    throw notSupported(api + ": the locale '" + tag + "'");
  }
  function plainDigits(x) {  // |x| as decimal digits, shortest round-trip form, no exponent
    let s = String(Math.abs(x));
    const e = s.indexOf("e");
    if (e < 0) return s;
    const exp = Number(s.slice(e + 1));
    let mant = s.slice(0, e).replace(".", "");
    const point = (s.indexOf(".") < 0 || s.indexOf(".") > e ? e : s.indexOf(".")) + exp;
    if (point <= 0) return "0." + "0".repeat(-point) + mant;
    if (point >= mant.length) return mant + "0".repeat(point - mant.length);
    return mant.slice(0, point) + "." + mant.slice(point);
  }
  function roundDigits(x, minFD, maxFD, shift) {
    let [int, frac = ""] = plainDigits(x).split(".");
    if (shift) {  // a percent: the point moves in decimal, as ICU moves it (no binary product)
      frac = frac.padEnd(shift, "0");
      int = int + frac.slice(0, shift);
      frac = frac.slice(shift);
    }
    if (frac.length > maxFD) {
      const up = frac.charCodeAt(maxFD) >= 53;  // half away from zero, as ICU rounds
      let all = (int + frac.slice(0, maxFD)).split("").map(Number);
      if (up) {
        let i = all.length - 1;
        while (i >= 0 && all[i] === 9) { all[i] = 0; i--; }
        if (i < 0) all.unshift(1); else all[i]++;
      }
      const cut = all.length - maxFD;
      int = all.slice(0, cut).join("") || "0";
      frac = all.slice(cut).join("");
    }
    frac = frac.replace(/0+$/, "");
    while (frac.length < minFD) frac += "0";
    return [int.replace(/^0+(?=\d)/, ""), frac];
  }
  const NUMBER_OPTIONS = new Set(["localeMatcher", "style", "currency", "currencyDisplay",
    "minimumFractionDigits", "maximumFractionDigits", "minimumIntegerDigits", "useGrouping",
    "numberingSystem", "signDisplay", "notation"]);
  function numberFormatter(locales, options, api) {
    const locale = localeOf(locales, api), L = table.locales[locale].n;
    const o = options === undefined ? {} : Object(options);
    for (const k of Object.keys(o)) {
      if (o[k] !== undefined && !NUMBER_OPTIONS.has(k)) throw notSupported(api + ": the option " + k);
    }
    const style = o.style === undefined ? "decimal" : String(o.style);
    let templates, minFD = 0, maxFD = style === "percent" ? 0 : 3, currency;
    if (style === "currency") {
      if (o.currency === undefined) throw new TypeError("Currency code is required with currency style.");
      currency = String(o.currency).toUpperCase();
      if (o.currencyDisplay !== undefined && o.currencyDisplay !== "symbol") {
        throw notSupported(api + ": currencyDisplay '" + o.currencyDisplay + "'");
      }
      const c = L.c[currency];
      if (!c) throw notSupported(api + ": the currency " + currency + " in " + locale);
      templates = c; minFD = maxFD = c[2];
    } else if (style === "percent") templates = L.p;
    else if (style === "decimal") templates = L.n;
    else throw notSupported(api + ": style '" + style + "'");
    if (o.signDisplay !== undefined && o.signDisplay !== "auto") throw notSupported(api + ": signDisplay '" + o.signDisplay + "'");
    if (o.notation !== undefined && o.notation !== "standard") throw notSupported(api + ": notation '" + o.notation + "'");
    if (o.numberingSystem !== undefined && o.numberingSystem !== "latn") throw notSupported(api + ": numberingSystem '" + o.numberingSystem + "'");
    const digitsOption = (name, lo, hi) => {
      const v = o[name];
      if (v === undefined) return undefined;
      const n = Number(v);
      if (!(n >= lo && n <= hi)) throw new RangeError(name + " value is out of range.");
      return Math.floor(n);
    };
    const mnfd = digitsOption("minimumFractionDigits", 0, 100), mxfd = digitsOption("maximumFractionDigits", 0, 100);
    if (mnfd !== undefined) { minFD = mnfd; if (mxfd === undefined) maxFD = Math.max(maxFD, mnfd); }
    if (mxfd !== undefined) {
      if (mnfd !== undefined && mnfd > mxfd) throw new RangeError("maximumFractionDigits value is out of range.");
      maxFD = mxfd; if (mnfd === undefined) minFD = Math.min(minFD, mxfd);
    }
    const minInt = digitsOption("minimumIntegerDigits", 1, 21) || 1;
    const grouping = o.useGrouping === undefined ? true : (o.useGrouping === "false" ? true : !!o.useGrouping);
    const resolved = { locale, numberingSystem: "latn", style, currency, minimumIntegerDigits: minInt,
                       minimumFractionDigits: minFD, maximumFractionDigits: maxFD, useGrouping: grouping ? "auto" : false,
                       notation: "standard", signDisplay: "auto" };
    if (currency === undefined) delete resolved.currency;
    const format = (value) => {
      const x = Number(value);
      const negative = x < 0 || Object.is(x, -0);
      let text;
      if (x !== x) text = L.nan;
      else if (!isFinite(x)) text = L.inf.replace(/^[-\u2212]/, "");
      else {
        let [int, frac] = roundDigits(x, minFD, maxFD, style === "percent" ? 2 : 0);
        while (int.length < minInt) int = "0" + int;
        if (grouping && !(L.min2 && int.length <= 4)) {
          const groups = [];
          let rest = int;
          if (L.indian && rest.length > 3) { groups.unshift(rest.slice(-3)); rest = rest.slice(0, -3); while (rest.length > 2) { groups.unshift(rest.slice(-2)); rest = rest.slice(0, -2); } }
          else while (rest.length > 3) { groups.unshift(rest.slice(-3)); rest = rest.slice(0, -3); }
          if (rest) groups.unshift(rest);
          int = groups.join(L.g);
        }
        text = frac ? int + L.d + frac : int;
      }
      return templates[negative && x === x ? 1 : 0].replace("#", text);
    };
    return { format, resolved };
  }
  // constructors that, as ECMA-402's, may be called without `new`
  function NumberFormat(locales, options) {
    if (!new.target) return new NumberFormat(locales, options);
    define(this, "_f", numberFormatter(locales, options, "Intl.NumberFormat"));
  }
  function supportedLocalesOf(locales) {
    const out = [];
    for (const l of isArray(locales) ? locales : [locales]) { try { localeOf(l, ""); out.push(String(l)); } catch (_) {} }
    return out;
  }
  define(NumberFormat, "supportedLocalesOf", supportedLocalesOf);
  Object.defineProperty(NumberFormat.prototype, "format", { get() { return this._f.format; }, configurable: true });
  define(NumberFormat.prototype, "formatToParts", function formatToParts() {
    throw notSupported("Intl.NumberFormat.prototype.formatToParts");
  });
  define(NumberFormat.prototype, "resolvedOptions", function resolvedOptions() { return Object.assign({}, this._f.resolved); });

  // time zones: a standard offset (minutes), a daylight-saving rule and the year from which
  // the pair is right (earlier dates are refused, not guessed)
  function lastSunday(y, m) { const d = new Date(Date.UTC(y, m + 1, 0)); return d.getTime() - d.getUTCDay() * 86400000; }
  function nthSunday(y, m, n) { const d = new Date(Date.UTC(y, m, 1)); return d.getTime() + (((7 - d.getUTCDay()) % 7) + 7 * (n - 1)) * 86400000; }
  const EU = (y, std) => [lastSunday(y, 2) + 3600000, lastSunday(y, 9) + 3600000];
  const US = (y, std) => [nthSunday(y, 2, 2) + 7200000 - std * 60000, nthSunday(y, 10, 1) + 7200000 - (std + 60) * 60000];
  // southern hemisphere: daylight time from the first instant to the second, across new year
  const AU = (y, std) => [nthSunday(y, 9, 1) + 7200000 - std * 60000, nthSunday(y, 3, 1) + 10800000 - (std + 60) * 60000];
  const NZ = (y, std) => [lastSunday(y, 8) + 7200000 - std * 60000, nthSunday(y, 3, 1) + 10800000 - (std + 60) * 60000];
  const ZONES = { UTC: [0], "Pacific/Auckland": [720, NZ, 2008], "Australia/Sydney": [600, AU, 2008],
    "Australia/Melbourne": [600, AU, 2008], "Australia/Hobart": [600, AU, 2009], "Australia/Adelaide": [570, AU, 2008], "Etc/UTC": [0], GMT: [0], "Etc/GMT": [0], Z: [0],
    "Europe/London": [0, EU, 1996], "Europe/Dublin": [0, EU, 1996], "Europe/Lisbon": [0, EU, 1996],
    "Africa/Lagos": [60, null, 1920], "Africa/Johannesburg": [120, null, 1944], "Africa/Nairobi": [180, null, 1960],
    "Europe/Moscow": [180, null, 2015], "Europe/Istanbul": [180, null, 2017], "Asia/Dubai": [240, null, 1921],
    "Asia/Karachi": [300, null, 2010], "Asia/Kolkata": [330, null, 1946], "Asia/Calcutta": [330, null, 1946],
    "Asia/Bangkok": [420, null, 1921], "Asia/Jakarta": [420, null, 1965], "Asia/Ho_Chi_Minh": [420, null, 1976],
    "Asia/Shanghai": [480, null, 1992], "Asia/Hong_Kong": [480, null, 1980], "Asia/Singapore": [480, null, 1983],
    "Asia/Manila": [480, null, 1979], "Australia/Perth": [480, null, 2010], "Asia/Tokyo": [540, null, 1952],
    "Asia/Seoul": [540, null, 1989], "Australia/Brisbane": [600, null, 1993], "Pacific/Honolulu": [-600, null, 1948],
    "America/Phoenix": [-420, null, 1968], "America/Bogota": [-300, null, 1994], "America/Lima": [-300, null, 1995],
    "America/Mexico_City": [-360, null, 2023], "America/Sao_Paulo": [-180, null, 2020],
    "America/Argentina/Buenos_Aires": [-180, null, 2010],
  };
  for (const z of ["Berlin", "Paris", "Madrid", "Rome", "Amsterdam", "Brussels", "Vienna", "Zurich", "Stockholm",
                   "Oslo", "Copenhagen", "Warsaw", "Prague", "Budapest", "Belgrade", "Luxembourg", "Zagreb", "Ljubljana", "Bratislava"]) {
    ZONES["Europe/" + z] = [60, EU, 1996];
  }
  for (const z of ["Athens", "Helsinki", "Kiev", "Kyiv", "Bucharest", "Sofia", "Riga", "Tallinn", "Vilnius"]) ZONES["Europe/" + z] = [120, EU, 2003];
  for (const [z, off] of [["New_York", -300], ["Detroit", -300], ["Toronto", -300], ["Chicago", -360], ["Winnipeg", -360],
                          ["Denver", -420], ["Edmonton", -420], ["Los_Angeles", -480], ["Vancouver", -480],
                          ["Anchorage", -540], ["Halifax", -240]]) ZONES["America/" + z] = [off, US, 2007];
  function zoneOf(tz, api) {
    if (tz === undefined) return h.localZone;  // the process's (TZ), as in Node
    const name = String(tz);
    const found = Object.keys(ZONES).find((z) => z.toLowerCase() === name.toLowerCase());
    if (!found && h.tzOffset(name, 0) !== null) return name;  // the host's database has it
    if (!found) throw notSupported(api + ": the time zone '" + name + "'");
    return found === "Etc/UTC" || found === "GMT" || found === "Etc/GMT" || found === "Z" ? "UTC" : found;
  }
  function offsetAt(zone, t, api) {
    const known = h.tzOffset(zone, t);  // the host's time zone database, when it has the zone
    if (known !== null) return known;
    const [std, rule, since] = ZONES[zone];
    const y = new Date(t).getUTCFullYear();
    if (since !== undefined && y < since) throw notSupported(api + ": the time zone " + zone + " before " + since);
    if (!rule) return std;
    const [start, end] = rule(y, std);
    const daylight = start < end ? t >= start && t < end : t >= start || t < end;
    return daylight ? std + 60 : std;
  }
  const DATE_FIELDS = ["weekday", "year", "month", "day"], TIME_FIELDS = ["hour", "minute", "second"];
  const DATE_OPTIONS = new Set([...DATE_FIELDS, ...TIME_FIELDS, "hour12", "hourCycle", "timeZone",
    "dateStyle", "timeStyle", "localeMatcher", "formatMatcher", "calendar", "numberingSystem"]);
  function dateFormatter(locales, options, required, defaults, api) {
    const locale = localeOf(locales, api), T = table.locales[locale];
    const o = options === undefined ? {} : Object(options);
    for (const k of Object.keys(o)) {
      if (o[k] !== undefined && !DATE_OPTIONS.has(k)) throw notSupported(api + ": the option " + k);
    }
    const opts = {};
    for (const k of [...DATE_FIELDS, ...TIME_FIELDS, "dateStyle", "timeStyle"]) if (o[k] !== undefined) opts[k] = String(o[k]);
    if (required === "date" && opts.timeStyle) throw new TypeError("Invalid option : timeStyle");
    if (required === "time" && opts.dateStyle) throw new TypeError("Invalid option : dateStyle");
    if (o.hourCycle !== undefined) throw notSupported(api + ": the option hourCycle");
    if (o.calendar !== undefined && o.calendar !== "gregory") throw notSupported(api + ": the calendar " + o.calendar);
    if (!opts.dateStyle && !opts.timeStyle) {
      let need = true;
      if (required !== "time" && DATE_FIELDS.some((k) => k in opts)) need = false;
      if (required !== "date" && TIME_FIELDS.some((k) => k in opts)) need = false;
      if (need && defaults !== "time") { opts.year = opts.month = opts.day = "numeric"; }
      if (need && defaults !== "date") { opts.hour = opts.minute = opts.second = "numeric"; }
    }
    const hasHour = "hour" in opts || "timeStyle" in opts;
    if (hasHour && o.hour12 !== undefined) opts.hour12 = String(!!o.hour12);
    const k = Object.keys(opts).sort().map((n) => n + "=" + opts[n]).join(",");
    const i = table.keys.indexOf(k);
    const pattern = i < 0 ? null : T.p[i];
    if (pattern === null) throw notSupported(api + ": the options {" + k + "} in " + locale);
    const zone = zoneOf(o.timeZone, api);
    const two = (n) => (n < 10 ? "0" : "") + n;
    // the type formatToParts gives each token of the pattern
    const TYPES = { y: "year", yy: "year", M: "month", MM: "month", d: "day", dd: "day", m: "minute",
                    mm: "minute", s: "second", ss: "second", N: "month", W: "weekday", A: "dayPeriod" };
    const typeOf = (tok) => TYPES[tok] || TYPES[tok[0]] || (tok[0] === "h" ? "hour" : "literal");
    const formatToParts = (date) => {
      const out = [];
      const re = /\{([^{}]*|[{}])\}/g;
      let last = 0, m;
      const text = format(date), pieces = [];
      // the pattern again, token by token: each token's text is what format gave it
      while ((m = re.exec(pattern)) !== null) {
        if (m.index > last) pieces.push(["literal", pattern.slice(last, m.index)]);
        pieces.push([m[1] === "{" || m[1] === "}" ? "literal" : typeOf(m[1]), token(date, m[1])]);
        last = re.lastIndex;
      }
      if (last < pattern.length) pieces.push(["literal", pattern.slice(last)]);
      for (const [type, value] of pieces) {
        if (out.length && type === "literal" && out[out.length - 1].type === "literal") out[out.length - 1].value += value;
        else out.push({ type, value });
      }
      if (out.map((x) => x.value).join("") !== text) throw notSupported(api + ".formatToParts");
      return out;
    };
    const token = (date, tok) => {
      const t = date === undefined ? Date.now() : Number(date instanceof Date ? date.getTime() : date);
      return format(t, tok);
    };
    const format = (date, only) => {
      const t = date === undefined ? Date.now() : Number(date instanceof Date ? date.getTime() : date);
      if (t !== t) throw new RangeError("Invalid time value");
      const d = new Date(t + offsetAt(zone, t, api) * 60000);
      const H = d.getUTCHours();
      return (only === undefined ? pattern : "{" + only + "}").replace(/\{([^{}]*|[{}])\}/g, (_, tok) => {
        switch (tok) {
          case "{": case "}": return tok;
          case "y": return String(d.getUTCFullYear());
          case "yy": return two(d.getUTCFullYear() % 100);
          case "M": return String(d.getUTCMonth() + 1);
          case "MM": return two(d.getUTCMonth() + 1);
          case "d": return String(d.getUTCDate());
          case "dd": return two(d.getUTCDate());
          case "m": return String(d.getUTCMinutes());
          case "mm": return two(d.getUTCMinutes());
          case "s": return String(d.getUTCSeconds());
          case "ss": return two(d.getUTCSeconds());
          case "h23": return String(H);
          case "h232": return two(H);
          case "h11": return String(H % 12);
          case "h112": return two(H % 12);
          case "h12": return String(H % 12 || 12);
          case "h122": return two(H % 12 || 12);
          case "h24": return String(H || 24);
          case "h242": return two(H || 24);
        }
        const list = T.l[Number(tok.slice(1))];
        if (tok[0] === "N") return list[d.getUTCMonth()];
        if (tok[0] === "W") return list[d.getUTCDay()];
        return list[H < 12 ? 0 : 1];  // A: the day period
      });
    };
    const resolved = { locale, calendar: "gregory", numberingSystem: "latn", timeZone: zone };
    for (const n of Object.keys(opts)) if (n !== "hour12") resolved[n] = opts[n];
    if (hasHour) resolved.hour12 = /\{h1[12]/.test(pattern);
    return { format: (date) => format(date), formatToParts, resolved };
  }
  function DateTimeFormat(locales, options) {
    if (!new.target) return new DateTimeFormat(locales, options);
    define(this, "_f", dateFormatter(locales, options, "any", "date", "Intl.DateTimeFormat"));
  }
  define(DateTimeFormat, "supportedLocalesOf", supportedLocalesOf);
  Object.defineProperty(DateTimeFormat.prototype, "format", { get() { return this._f.format; }, configurable: true });
  define(DateTimeFormat.prototype, "formatToParts", function formatToParts(date) {
    return this._f.formatToParts(date);
  });
  define(DateTimeFormat.prototype, "resolvedOptions", function resolvedOptions() { return Object.assign({}, this._f.resolved); });
  const Intl = {};
  define(Intl, "NumberFormat", NumberFormat);
  define(Intl, "DateTimeFormat", DateTimeFormat);
  define(Intl, "getCanonicalLocales", (l) => (l === undefined ? [] : (isArray(l) ? l : [l]).map(String)));
  // -- collation: the Unicode root order (CLDR's), for the locales that keep it -------------
  // Three levels, as ICU compares: base letters (case and accents aside; spaces, then
  // punctuation and symbols, then digits, then letters), then accents, then case (lower
  // first). Locales whose alphabets reorder letters (sv: å after z, es: ñ, ...) are refused.
  const ROOT_ORDER = new Set(["en", "fr", "de", "it", "pt", "nl", "ga", "id", "ms", "sw", "ca"]);
  const COLLATOR_OPTIONS = new Set(["usage", "sensitivity", "ignorePunctuation", "numeric",
                                    "localeMatcher", "caseFirst", "collation"]);
  function collator(locales, options, api) {
    let tag = isArray(locales) ? locales[0] : locales;
    tag = tag === undefined ? "en-US" : String(tag);
    const lang = tag.split(/[-_]/)[0].toLowerCase();
    if (!ROOT_ORDER.has(lang)) throw notSupported(api + ": the collation of '" + tag + "'");
    const o = options === undefined ? {} : Object(options);
    for (const k of Object.keys(o)) {
      if (o[k] !== undefined && !COLLATOR_OPTIONS.has(k)) throw notSupported(api + ": the option " + k);
    }
    if (o.usage === "search") throw notSupported(api + ": usage 'search'");
    if (o.caseFirst !== undefined && o.caseFirst !== "false" && o.caseFirst !== false) {
      throw notSupported(api + ": caseFirst " + o.caseFirst);
    }
    const sensitivity = o.sensitivity === undefined ? "variant" : String(o.sensitivity);
    if (!["base", "accent", "case", "variant"].includes(sensitivity)) {
      throw new RangeError("Value " + sensitivity + " out of range for Intl.Collator options property sensitivity");
    }
    const numeric = !!o.numeric, ignorePunctuation = !!o.ignorePunctuation;
    function elements(str) {
      const out = [];
      const d = String(str).normalize("NFD");
      for (let i = 0; i < d.length; i++) {
        const c = d[i];
        if (/[\u0300-\u036f]/.test(c)) {
          if (out.length) out[out.length - 1].accents += c;
          continue;
        }
        if (/\s/.test(c) || /[\p{P}\p{S}]/u.test(c)) {
          if (!ignorePunctuation) out.push({ group: /\s/.test(c) ? 0 : 1, key: c.codePointAt(0), accents: "", upper: false });
          continue;
        }
        if (/[0-9]/.test(c)) {
          if (numeric) {
            let j = i;
            while (j < d.length && /[0-9]/.test(d[j])) j++;
            const run = d.slice(i, j).replace(/^0+(?=\d)/, "");
            out.push({ group: 2, key: run.length * 16 + 0, run, accents: "", upper: false });
            i = j - 1;
          } else out.push({ group: 2, key: c.charCodeAt(0), accents: "", upper: false });
          continue;
        }
        const lower = c.toLowerCase();
        out.push({ group: 3, key: lower.codePointAt(0), accents: "", upper: lower !== c });
      }
      return out;
    }
    function level(x, y, pick) {
      const n = Math.min(x.length, y.length);
      for (let i = 0; i < n; i++) {
        const r = pick(x[i], y[i]);
        if (r) return r;
      }
      return x.length === y.length ? 0 : (x.length < y.length ? -1 : 1);
    }
    const primary = (a, b) => (a.group - b.group) || (a.run !== undefined && b.run !== undefined
      ? (a.run.length - b.run.length) || (a.run < b.run ? -1 : a.run > b.run ? 1 : 0)
      : a.key - b.key);
    function compare(a, b) {
      const x = elements(a), y = elements(b);
      const p = level(x, y, primary);
      if (p) return Math.sign(p);
      if (sensitivity === "accent" || sensitivity === "variant") {
        const s = level(x, y, (m, n) => (m.accents === n.accents ? 0 : m.accents < n.accents ? -1 : 1));
        if (s) return s;
      }
      if (sensitivity === "case" || sensitivity === "variant") {
        const t = level(x, y, (m, n) => (m.upper === n.upper ? 0 : m.upper ? 1 : -1));
        if (t) return t;
      }
      return 0;
    }
    const resolved = { locale: tag, usage: "sort", sensitivity, ignorePunctuation, collation: "default",
                       numeric, caseFirst: "false" };
    return { compare, resolved };
  }
  function Collator(locales, options) {
    if (!new.target) return new Collator(locales, options);
    define(this, "_c", collator(locales, options, "Intl.Collator"));
  }
  define(Collator, "supportedLocalesOf", (l) => (l === undefined ? [] : (isArray(l) ? l : [l]).map(String)
    .filter((t) => ROOT_ORDER.has(t.split(/[-_]/)[0].toLowerCase()))));
  Object.defineProperty(Collator.prototype, "compare", { get() { return this._c.compare; }, configurable: true });
  define(Collator.prototype, "resolvedOptions", function resolvedOptions() { return Object.assign({}, this._c.resolved); });

  // -- plural rules and relative time: English, as CLDR has them --------------------------
  function english(locales, api) {
    let tag = isArray(locales) ? locales[0] : locales;
    tag = tag === undefined ? "en-US" : String(tag);
    if (tag.split(/[-_]/)[0].toLowerCase() !== "en") throw notSupported(api + ": the locale '" + tag + "'");
    return tag;
  }
  function PluralRules(locales, options) {
    if (!new.target) throw new TypeError("Constructor Intl.PluralRules requires 'new'");
    const o = options === undefined ? {} : Object(options);
    const type = o.type === undefined ? "cardinal" : String(o.type);
    if (type !== "cardinal" && type !== "ordinal") {
      throw new RangeError("Value " + type + " out of range for Intl.PluralRules options property type");
    }
    define(this, "_p", { locale: english(locales, "Intl.PluralRules"), type });
  }
  define(PluralRules.prototype, "select", function select(n) {
    const x = Math.abs(Number(n));
    if (this._p.type === "cardinal") return x === 1 ? "one" : "other";
    if (!Number.isInteger(x)) return "other";
    const m10 = x % 10, m100 = x % 100;
    if (m10 === 1 && m100 !== 11) return "one";
    if (m10 === 2 && m100 !== 12) return "two";
    if (m10 === 3 && m100 !== 13) return "few";
    return "other";
  });
  define(PluralRules.prototype, "resolvedOptions", function resolvedOptions() {
    return { locale: this._p.locale, type: this._p.type, minimumIntegerDigits: 1,
             minimumFractionDigits: 0, maximumFractionDigits: 3,
             pluralCategories: this._p.type === "cardinal" ? ["one", "other"] : ["few", "one", "two", "other"] };
  });
  const UNITS = ["second", "minute", "hour", "day", "week", "month", "quarter", "year"];
  const NEAR = { day: ["yesterday", "today", "tomorrow"], year: ["last year", "this year", "next year"],
                 month: ["last month", "this month", "next month"], week: ["last week", "this week", "next week"],
                 quarter: ["last quarter", "this quarter", "next quarter"], hour: [null, "this hour", null],
                 minute: [null, "this minute", null], second: [null, "now", null] };
  function RelativeTimeFormat(locales, options) {
    if (!new.target) throw new TypeError("Constructor Intl.RelativeTimeFormat requires 'new'");
    const o = options === undefined ? {} : Object(options);
    const numeric = o.numeric === undefined ? "always" : String(o.numeric);
    const style = o.style === undefined ? "long" : String(o.style);
    if (style !== "long") throw notSupported("Intl.RelativeTimeFormat: style '" + style + "'");
    define(this, "_r", { locale: english(locales, "Intl.RelativeTimeFormat"), numeric, style });
  }
  define(RelativeTimeFormat.prototype, "format", function format(value, unit) {
    const v = Number(value);
    let u = String(unit);
    if (u.endsWith("s")) u = u.slice(0, -1);
    if (!UNITS.includes(u)) throw new RangeError("Invalid unit argument for format() '" + unit + "'");
    if (!isFinite(v)) throw new RangeError("Invalid value " + value + " for format()");
    if (this._r.numeric === "auto" && (v === -1 || v === 0 || v === 1) && !Object.is(v, -0)) {
      const word = NEAR[u][v + 1];
      if (word) return word;
    }
    const n = Math.abs(v);
    const text = numberFormatter("en-US", undefined, "Intl.RelativeTimeFormat").format(n);
    const units = n === 1 ? u : u + "s";
    return v < 0 || Object.is(v, -0) ? text + " " + units + " ago" : "in " + text + " " + units;
  });
  define(RelativeTimeFormat.prototype, "resolvedOptions", function resolvedOptions() {
    return { locale: this._r.locale, style: this._r.style, numeric: this._r.numeric, numberingSystem: "latn" };
  });
  define(Intl, "Collator", Collator);
  define(Intl, "PluralRules", PluralRules);
  define(Intl, "RelativeTimeFormat", RelativeTimeFormat);

  // Intl's other services: named when used, never a bare "not a constructor"
  for (const name of ["ListFormat", "Segmenter", "DisplayNames", "Locale", "DurationFormat"]) {
    const missing = { [name]: function () { throw notSupported("Intl." + name); } }[name];
    define(missing, "supportedLocalesOf", () => { throw notSupported("Intl." + name); });
    define(Intl, name, missing);
  }
  return { Intl, NumberFormat, DateTimeFormat, numberFormatter, dateFormatter, collator };
})
