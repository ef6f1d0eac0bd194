// A module of globals.js, compiled on a task's first use of what it defines (see the
// loader there): URL and URLSearchParams.
// One function expression: it takes the loader's helpers and returns what it defines.
(function (h) {
  "use strict";
  const { define, isArray, fromCharCode, nativeParse, DOMException } = h;
  const { utf8Encode, utf8Decode, HEX } = h.load("bytes");
  // -- URL and URLSearchParams (WHATWG, for the URLs snippets meet: ASCII hosts) -----------
  const SPECIAL = { "http:": "80", "https:": "443", "ws:": "80", "wss:": "443", "ftp:": "21", "file:": "" };
  function pctEncode(str, keep) {
    let out = "";
    for (const ch of str) {
      const c = ch.codePointAt(0);
      if (c > 0x20 && c < 0x7f && !keep.includes(ch)) out += ch;
      else for (const b of utf8Encode(ch)) out += "%" + HEX[b >> 4].toUpperCase() + HEX[b & 15].toUpperCase();
    }
    return out;
  }
  const PATH_SET = " \"#<>?`{}", QUERY_SET = " \"#<>", SPECIAL_QUERY_SET = " \"#<>'", FRAGMENT_SET = " \"<>`";
  const USER_SET = " \"#<>?`{}/:;=@[\\]^|";
  function invalid(input) {
    const e = new TypeError("Invalid URL");
    define(e, "code", "ERR_INVALID_URL");
    define(e, "input", input);
    return e;
  }
  function normalizePath(segments, special) {
    const out = [];
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i], low = seg.toLowerCase();
      const last = i === segments.length - 1;
      if (low === ".." || low === ".%2e" || low === "%2e." || low === "%2e%2e") {
        out.pop();
        if (last) out.push("");
      } else if (low === "." || low === "%2e") {
        if (last) out.push("");
      } else out.push(pctEncode(seg, PATH_SET));
    }
    return "/" + out.join("/");
  }
  function parseURL(input, base) {
    let s = String(input).replace(/^[\u0000-\u0020]+|[\u0000-\u0020]+$/g, "").replace(/[\t\n\r]/g, "");
    const r = { protocol: "", username: "", password: "", hostname: "", port: "", pathname: "",
                search: "", hash: "", opaque: false };
    const hashAt = s.indexOf("#");
    if (hashAt >= 0) { r.hash = s.slice(hashAt); s = s.slice(0, hashAt); }
    const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(s);
    let rest;
    if (m) {
      r.protocol = m[1].toLowerCase() + ":";
      rest = s.slice(m[0].length);
      const special = r.protocol in SPECIAL;
      if (special) rest = rest.replace(/\\/g, "/");
      if (special && base && base.protocol === r.protocol && !rest.startsWith("/")) {
        return relative(rest, base, r);
      }
      if (rest.startsWith("//") || (special && r.protocol !== "file:")) {
        authority(special && r.protocol !== "file:" ? rest.replace(/^\/*/, "") : rest.slice(2), r, special, input);
      } else {
        const q = rest.indexOf("?");
        if (q >= 0) { r.search = rest.slice(q); rest = rest.slice(0, q); }
        if (special || rest.startsWith("/")) r.pathname = normalizePath(rest.replace(/^\//, "").split("/"), special);
        else { r.opaque = true; r.pathname = pctEncode(rest, ""); }
      }
    } else {
      if (!base || base.opaque) throw invalid(input);
      r.protocol = base.protocol;
      relative(r.protocol in SPECIAL ? s.replace(/\\/g, "/") : s, base, r);
    }
    r.search = r.search === "?" ? "" : r.search;
    if (r.search) r.search = "?" + pctEncode(r.search.slice(1), r.protocol in SPECIAL ? SPECIAL_QUERY_SET : QUERY_SET);
    if (r.hash) r.hash = r.hash === "#" ? "" : "#" + pctEncode(r.hash.slice(1), FRAGMENT_SET);
    return r;

    function relative(rest, b, out) {
      out.protocol = b.protocol;
      if (rest.startsWith("//")) { authority(rest.slice(2), out, out.protocol in SPECIAL, input); return out; }
      out.username = b.username; out.password = b.password; out.hostname = b.hostname; out.port = b.port;
      const q = rest.indexOf("?");
      let path = rest, search = null;
      if (q >= 0) { search = rest.slice(q); path = rest.slice(0, q); }
      if (path === "") {
        out.pathname = b.pathname;
        out.search = search !== null ? search : (hashAt >= 0 ? b.search : "");
        if (search === null && hashAt < 0) out.search = "";
        if (search === null) out.search = b.search;
        return out;
      }
      out.search = search || "";
      if (path.startsWith("/")) out.pathname = normalizePath(path.slice(1).split("/"), true);
      else {
        const dir = b.pathname.slice(1).split("/");
        dir.pop();
        out.pathname = normalizePath(dir.concat(path.split("/")), true);
      }
      return out;
    }
  }
  function authority(rest, r, special, input) {
    const end = rest.search(special ? /[\/?#]/ : /[\/?#]/);
    let auth = end >= 0 ? rest.slice(0, end) : rest, tail = end >= 0 ? rest.slice(end) : "";
    const at = auth.lastIndexOf("@");
    if (at >= 0) {
      const info = auth.slice(0, at), colon = info.indexOf(":");
      r.username = pctEncode(colon >= 0 ? info.slice(0, colon) : info, USER_SET);
      r.password = colon >= 0 ? pctEncode(info.slice(colon + 1), USER_SET) : "";
      auth = auth.slice(at + 1);
    }
    const pm = /^(\[[^\]]*\]|[^:]*)(?::(.*))?$/.exec(auth);
    let host = pm[1], port = pm[2] === undefined ? "" : pm[2];
    if (/[^\u0000-\u007f]/.test(host)) {
      throw new TypeError("URL: host names outside ASCII (" + host + ") are not supported in this runner");
    }
    host = decodeURIComponent(host.replace(/%(?![0-9a-fA-F]{2})/g, "%25")).toLowerCase();
    if (/[\u0000\t\n\r #\/<>?@[\\\]^|%]/.test(host.replace(/^\[.*\]$/, "")) || (special && !host && r.protocol !== "file:")) {
      throw invalid(input);
    }
    if (port !== "") {
      if (!/^[0-9]+$/.test(port) || Number(port) > 65535) throw invalid(input);
      port = String(Number(port));
      if (SPECIAL[r.protocol] === port) port = "";
    }
    r.hostname = host; r.port = port;
    const q = tail.indexOf("?");
    if (q >= 0) { r.search = tail.slice(q); tail = tail.slice(0, q); }
    r.pathname = special || tail ? normalizePath(tail.replace(/^\//, "").split("/"), special) : "";
    if (!special && !tail) r.pathname = "";
  }
  const URL_STATE = new WeakMap();
  class URL {
    constructor(url, base) {
      const b = base === undefined ? null : URL_STATE.get(base instanceof URL ? base : new URL(base)).r;
      const r = parseURL(url, b);
      const params = new URLSearchParams(r.search);
      URL_STATE.set(this, { r, params });
      PARAMS_OWNER.set(params, this);
    }
    static canParse(url, base) { try { new URL(url, base); return true; } catch (_) { return false; } }
    get href() {
      const r = URL_STATE.get(this).r;
      if (r.opaque) return r.protocol + r.pathname + r.search + r.hash;
      const cred = r.username || r.password ? r.username + (r.password ? ":" + r.password : "") + "@" : "";
      const host = r.hostname || r.protocol === "file:" || r.protocol in SPECIAL ? "//" + cred + this.host : "";
      return r.protocol + host + r.pathname + r.search + r.hash;
    }
    set href(v) { const u = new URL(v); URL_STATE.set(this, URL_STATE.get(u)); PARAMS_OWNER.set(URL_STATE.get(u).params, this); }
    get protocol() { return URL_STATE.get(this).r.protocol; }
    get username() { return URL_STATE.get(this).r.username; }
    get password() { return URL_STATE.get(this).r.password; }
    get host() { const r = URL_STATE.get(this).r; return r.hostname + (r.port ? ":" + r.port : ""); }
    get hostname() { return URL_STATE.get(this).r.hostname; }
    get port() { return URL_STATE.get(this).r.port; }
    get pathname() { return URL_STATE.get(this).r.pathname; }
    set pathname(v) { const r = URL_STATE.get(this).r; if (!r.opaque) r.pathname = normalizePath(String(v).replace(/^\//, "").split("/"), true); }
    get search() { return URL_STATE.get(this).r.search; }
    set search(v) {
      const st = URL_STATE.get(this);
      v = String(v).replace(/^\?/, "");
      st.r.search = v ? "?" + pctEncode(v, st.r.protocol in SPECIAL ? SPECIAL_QUERY_SET : QUERY_SET) : "";
      PARAMS_LIST.set(st.params, parseQuery(v));
    }
    get hash() { return URL_STATE.get(this).r.hash; }
    set hash(v) { v = String(v).replace(/^#/, ""); URL_STATE.get(this).r.hash = v ? "#" + pctEncode(v, FRAGMENT_SET) : ""; }
    get origin() {
      const r = URL_STATE.get(this).r;
      return r.protocol in SPECIAL && r.protocol !== "file:" ? r.protocol + "//" + this.host : "null";
    }
    get searchParams() { return URL_STATE.get(this).params; }
    toString() { return this.href; }
    toJSON() { return this.href; }
  }

  const PARAMS_LIST = new WeakMap(), PARAMS_OWNER = new WeakMap();
  function formDecode(s) {
    const b = [];
    const t = s.replace(/\+/g, " ");
    for (let i = 0; i < t.length; i++) {
      if (t[i] === "%" && /^[0-9a-fA-F]{2}$/.test(t.slice(i + 1, i + 3))) { b.push(parseInt(t.slice(i + 1, i + 3), 16)); i += 2; }
      else for (const x of utf8Encode(t[i] + (/[\ud800-\udbff]/.test(t[i]) && t[i + 1] ? t[++i] : ""))) b.push(x);
    }
    return utf8Decode(Uint8Array.from(b), false);
  }
  function formEncode(s) {
    let out = "";
    for (const b of utf8Encode(s)) {
      const ch = fromCharCode(b);
      if (/[A-Za-z0-9*\-._]/.test(ch)) out += ch;
      else if (b === 32) out += "+";
      else out += "%" + HEX[b >> 4].toUpperCase() + HEX[b & 15].toUpperCase();
    }
    return out;
  }
  function parseQuery(s) {
    const list = [];
    for (const part of String(s).split("&")) {
      if (!part) continue;
      const eq = part.indexOf("=");
      list.push(eq >= 0 ? [formDecode(part.slice(0, eq)), formDecode(part.slice(eq + 1))] : [formDecode(part), ""]);
    }
    return list;
  }
  class URLSearchParams {
    constructor(init = "") {
      let list;
      if (init instanceof URLSearchParams) list = PARAMS_LIST.get(init).map((x) => x.slice());
      else if (init !== null && typeof init === "object") {
        list = [];
        if (typeof init[Symbol.iterator] === "function") {
          for (const pair of init) {
            const pr = Array.from(pair);
            if (pr.length !== 2) throw new TypeError("Each query pair must be an iterable [name, value] tuple");
            list.push([String(pr[0]), String(pr[1])]);
          }
        } else for (const k of Object.keys(init)) list.push([k, String(init[k])]);
      } else list = parseQuery(String(init).replace(/^\?/, ""));
      PARAMS_LIST.set(this, list);
    }
    _update() {
      const owner = PARAMS_OWNER.get(this);
      if (owner) { const s = this.toString(); URL_STATE.get(owner).r.search = s ? "?" + s : ""; }
    }
    get size() { return PARAMS_LIST.get(this).length; }
    append(k, v) { PARAMS_LIST.get(this).push([String(k), String(v)]); this._update(); }
    delete(k, v) {
      k = String(k);
      PARAMS_LIST.set(this, PARAMS_LIST.get(this).filter(([a, b]) => a !== k || (v !== undefined && b !== String(v))));
      this._update();
    }
    get(k) { const e = PARAMS_LIST.get(this).find(([a]) => a === String(k)); return e ? e[1] : null; }
    getAll(k) { return PARAMS_LIST.get(this).filter(([a]) => a === String(k)).map(([, b]) => b); }
    has(k, v) { return PARAMS_LIST.get(this).some(([a, b]) => a === String(k) && (v === undefined || b === String(v))); }
    set(k, v) {
      k = String(k); v = String(v);
      const list = PARAMS_LIST.get(this), i = list.findIndex(([a]) => a === k);
      if (i < 0) list.push([k, v]);
      else { list[i][1] = v; PARAMS_LIST.set(this, list.filter(([a], j) => a !== k || j === i)); }
      this._update();
    }
    sort() {
      PARAMS_LIST.get(this).sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
      this._update();
    }
    forEach(fn, self) { for (const [k, v] of PARAMS_LIST.get(this)) fn.call(self, v, k, this); }
    *entries() { for (const [k, v] of PARAMS_LIST.get(this)) yield [k, v]; }
    *keys() { for (const [k] of PARAMS_LIST.get(this)) yield k; }
    *values() { for (const [, v] of PARAMS_LIST.get(this)) yield v; }
    [Symbol.iterator]() { return this.entries(); }
    toString() { return PARAMS_LIST.get(this).map(([k, v]) => formEncode(k) + "=" + formEncode(v)).join("&"); }
  }
  Object.defineProperty(URLSearchParams.prototype, "_update", { enumerable: false });
  return { URL, URLSearchParams };
})
