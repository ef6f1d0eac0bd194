// Globals that snippets reach for and QuickJS lacks (Node's and the web's: Buffer, URL,
// TextEncoder, btoa, crypto, structuredClone, setTimeout, locale formatting), and V8's
// wording where QuickJS's differs (JSON.parse). Pure ECMAScript over what the engine has: no
// capability beyond the host's random bytes (__random_bytes, kept private here). Evaluated
// once in the zygote's pristine context (executor.py), so no task pays to compile it; the
// executor numbers its lines from LIBRARY_LINE so its frames never read as a snippet's.
(() => {
  "use strict";
  const randomBytes = globalThis.__random_bytes, localeTable = globalThis.__locale_table;
  delete globalThis.__random_bytes;
  delete globalThis.__locale_table;
  const sandbox = globalThis.__sandbox;
  const fromCharCode = String.fromCharCode, isArray = Array.isArray;
  const nativeParse = JSON.parse;
  function define(obj, name, value) {
    Object.defineProperty(obj, name, { value, writable: true, configurable: true, enumerable: false });
  }

  // -- errors with the names V8 gives them -----------------------------------------------
  class DOMException extends Error {
    constructor(message = "", name = "Error") {
      super(message);
      define(this, "name", name);
    }
  }
  define(globalThis, "DOMException", DOMException);

  // -- randomness: per task, from the host (a forked context would repeat its parent's) ----
  function entropy(n) {
    const s = randomBytes(n), out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = s.charCodeAt(i);
    return out;
  }
  let rs = null;  // xoshiro128** state, seeded on first use
  function next32() {
    if (rs === null) {
      const b = entropy(16);
      rs = new Uint32Array(b.buffer);
      if (!(rs[0] | rs[1] | rs[2] | rs[3])) rs[0] = 1;
    }
    const r = Math.imul(((Math.imul(rs[1], 5) << 7) | (Math.imul(rs[1], 5) >>> 25)), 9) >>> 0;
    const t = rs[1] << 9;
    rs[2] ^= rs[0]; rs[3] ^= rs[1]; rs[1] ^= rs[2]; rs[0] ^= rs[3]; rs[2] ^= t;
    rs[3] = (rs[3] << 11) | (rs[3] >>> 21);
    return r;
  }
  define(Math, "random", function random() {
    return ((next32() >>> 5) * 67108864 + (next32() >>> 6)) / 9007199254740992;
  });
  const crypto = {
    getRandomValues(view) {
      if (!ArrayBuffer.isView(view) || view instanceof Float32Array || view instanceof Float64Array
          || view instanceof DataView) {
        throw new DOMException("The data argument must be an integer-type TypedArray",
                               "TypeMismatchError");
      }
      if (view.byteLength > 65536) {
        throw new DOMException("The ArrayBufferView's byte length (" + view.byteLength + ") exceeds "
          + "the number of bytes of entropy available via this API (65536)", "QuotaExceededError");
      }
      new Uint8Array(view.buffer, view.byteOffset, view.byteLength).set(entropy(view.byteLength));
      return view;
    },
    randomUUID() {
      const b = entropy(16);
      b[6] = (b[6] & 0x0f) | 0x40;
      b[8] = (b[8] & 0x3f) | 0x80;
      const h = hex(b);
      return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20)
        + "-" + h.slice(20);
    },
  };
  define(globalThis, "crypto", crypto);

  // -- bytes and text ----------------------------------------------------------------------
  function utf8Encode(str) {
    str = String(str);
    const out = [];
    for (let i = 0; i < str.length; i++) {
      let c = str.charCodeAt(i);
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < str.length) {
        const d = str.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) { c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00); i++; }
        else c = 0xfffd;
      } else if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
      if (c < 0x80) out.push(c);
      else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
      else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
      else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    }
    return Uint8Array.from(out);
  }
  function utf8Decode(b, fatal) {
    let s = "", chunk = [];
    const bad = () => {
      if (fatal) throw new TypeError("The encoded data was not valid for encoding utf-8");
      chunk.push(0xfffd);
    };
    for (let i = 0; i < b.length;) {
      const c = b[i];
      let n = 0, cp = 0, min = 0;
      if (c < 0x80) { chunk.push(c); i++; }
      else {
        if (c >= 0xc2 && c <= 0xdf) { n = 1; cp = c & 31; min = 0x80; }
        else if (c >= 0xe0 && c <= 0xef) { n = 2; cp = c & 15; min = 0x800; }
        else if (c >= 0xf0 && c <= 0xf4) { n = 3; cp = c & 7; min = 0x10000; }
        else { bad(); i++; continue; }
        let j = 1;
        for (; j <= n; j++) {
          const d = b[i + j];
          if (d === undefined || (d & 0xc0) !== 0x80) break;
          cp = (cp << 6) | (d & 63);
          // a sequence that can only decode to an overlong form, a surrogate or > U+10FFFF ends here
          if (j === 1 && ((c === 0xe0 && d < 0xa0) || (c === 0xed && d > 0x9f)
                          || (c === 0xf0 && d < 0x90) || (c === 0xf4 && d > 0x8f))) break;
        }
        if (j <= n) { bad(); i += Math.max(1, j); continue; }
        i += n + 1;
        if (cp < min) { bad(); continue; }
        if (cp >= 0x10000) { cp -= 0x10000; chunk.push(0xd800 + (cp >> 10), 0xdc00 + (cp & 1023)); }
        else chunk.push(cp);
      }
      if (chunk.length > 8192) { s += fromCharCode.apply(null, chunk); chunk = []; }
    }
    return s + fromCharCode.apply(null, chunk);
  }
  function latin1Decode(b) {
    let s = "";
    for (let i = 0; i < b.length; i += 8192) s += fromCharCode.apply(null, b.subarray(i, i + 8192));
    return s;
  }
  const HEX = "0123456789abcdef";
  function hex(b) {
    let s = "";
    for (let i = 0; i < b.length; i++) s += HEX[b[i] >> 4] + HEX[b[i] & 15];
    return s;
  }
  const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const B64INDEX = new Int16Array(128).fill(-1);
  for (let i = 0; i < 64; i++) B64INDEX[B64.charCodeAt(i)] = i;
  B64INDEX[45] = 62; B64INDEX[95] = 63;  // '-' and '_': Node reads base64url in base64 too
  function base64Encode(b, alphabet, pad) {
    let s = "";
    for (let i = 0; i < b.length; i += 3) {
      const n = (b[i] << 16) | ((b[i + 1] || 0) << 8) | (b[i + 2] || 0);
      s += alphabet[n >> 18] + alphabet[(n >> 12) & 63]
        + (i + 1 < b.length ? alphabet[(n >> 6) & 63] : pad ? "=" : "")
        + (i + 2 < b.length ? alphabet[n & 63] : pad ? "=" : "");
    }
    return s;
  }
  // Node's lenient decoder: characters outside the alphabet are skipped, '=' ends the data
  function base64Decode(str) {
    const out = [];
    let acc = 0, bits = 0;
    for (let i = 0; i < str.length; i++) {
      const c = str.charCodeAt(i);
      // where Node's decoder stops: '=', and a character beyond the BMP (a surrogate pair)
      if (c === 61 || (c >= 0xd800 && c <= 0xdbff && (str.charCodeAt(i + 1) & 0xfc00) === 0xdc00)) break;
      const v = c < 128 ? B64INDEX[c] : -1;
      if (v < 0) continue;
      acc = (acc << 6) | v; bits += 6;
      if (bits >= 8) { bits -= 8; out.push((acc >> bits) & 255); }
    }
    return Uint8Array.from(out);
  }
  function hexDecode(str) {
    const out = [];
    for (let i = 0; i + 1 < str.length; i += 2) {
      const v = parseInt(str.slice(i, i + 2), 16);
      if (!/^[0-9a-fA-F]{2}$/.test(str.slice(i, i + 2))) break;
      out.push(v);
    }
    return Uint8Array.from(out);
  }
  function utf16Encode(str) {
    const out = new Uint8Array(str.length * 2);
    for (let i = 0; i < str.length; i++) { const c = str.charCodeAt(i); out[2 * i] = c & 255; out[2 * i + 1] = c >> 8; }
    return out;
  }
  function utf16Decode(b) {
    let s = "";
    for (let i = 0; i + 1 < b.length; i += 2) s += fromCharCode(b[i] | (b[i + 1] << 8));
    return s;
  }
  function encoding(enc) {
    if (enc === undefined || enc === null) return "utf8";
    const e = String(enc).toLowerCase();
    switch (e) {
      case "utf8": case "utf-8": return "utf8";
      case "hex": case "base64": case "base64url": case "ascii": return e;
      case "latin1": case "binary": return "latin1";
      case "ucs2": case "ucs-2": case "utf16le": case "utf-16le": return "utf16le";
    }
    const err = new TypeError("Unknown encoding: " + enc);
    define(err, "code", "ERR_UNKNOWN_ENCODING");
    throw err;
  }
  function encode(str, enc) {
    switch (encoding(enc)) {
      case "utf8": return utf8Encode(str);
      case "hex": return hexDecode(str);
      case "base64": case "base64url": return base64Decode(str);
      case "latin1": case "ascii": {
        const out = new Uint8Array(str.length);
        for (let i = 0; i < str.length; i++) out[i] = str.charCodeAt(i) & 255;
        return out;
      }
      case "utf16le": return utf16Encode(str);
    }
  }
  function decode(b, enc) {
    switch (encoding(enc)) {
      case "utf8": return utf8Decode(b, false);
      case "hex": return hex(b);
      case "base64": return base64Encode(b, B64, true);
      case "base64url": return base64Encode(b, B64URL, false);
      case "latin1": return latin1Decode(b);
      case "ascii": return latin1Decode(b.map((x) => x & 127));
      case "utf16le": return utf16Decode(b);
    }
  }

  class Buffer extends Uint8Array {
    static from(value, encOrOffset, length) {
      if (typeof value === "string") return Buffer.of_(encode(value, encOrOffset));
      if (value instanceof ArrayBuffer) {
        const off = encOrOffset === undefined ? 0 : Number(encOrOffset);
        return new Buffer(value, off, length === undefined ? value.byteLength - off : Number(length));
      }
      if (ArrayBuffer.isView(value)) {
        return Buffer.of_(new Uint8Array(value.buffer, value.byteOffset, value.byteLength).slice());
      }
      if (isArray(value)) return Buffer.of_(Uint8Array.from(value, (x) => Number(x) & 255));
      if (value && typeof value === "object") {
        if (value.type === "Buffer" && isArray(value.data)) return Buffer.from(value.data);
        if (typeof value.length === "number") return Buffer.of_(Uint8Array.from(value, (x) => Number(x) & 255));
        const prim = value.valueOf();
        if (prim !== value) return Buffer.from(prim, encOrOffset, length);
      }
      throw new TypeError("The first argument must be of type string or an instance of Buffer, "
        + "ArrayBuffer, or Array or an Array-like Object. Received " + typeof value);
    }
    static of_(u8) { return new Buffer(u8.buffer, u8.byteOffset, u8.length); }
    static alloc(size, fill, enc) {
      const b = new Buffer(size);
      if (fill !== undefined && fill !== 0) b.fill(fill, 0, b.length, enc);
      return b;
    }
    static allocUnsafe(size) { return new Buffer(size); }
    static allocUnsafeSlow(size) { return new Buffer(size); }
    static byteLength(value, enc) {
      if (typeof value !== "string") return value.byteLength;
      let e;
      try { e = encoding(enc); } catch (_) { e = "utf8"; }
      // Node's estimates, not the decoded length, for these
      if (e === "hex") return value.length >>> 1;
      if (e === "base64" || e === "base64url") {
        let n = value.length;
        if (n && value.charCodeAt(n - 1) === 61) n--;
        if (n > 1 && value.charCodeAt(n - 1) === 61) n--;
        return (n * 3) >>> 2;
      }
      return encode(value, e).length;
    }
    static concat(list, total) {
      if (total === undefined) total = list.reduce((n, b) => n + b.length, 0);
      const out = Buffer.alloc(total);
      let at = 0;
      for (const b of list) {
        if (at >= total) break;
        const part = b.length > total - at ? b.subarray(0, total - at) : b;
        out.set(part, at);
        at += part.length;
      }
      return out;
    }
    static isBuffer(v) { return v instanceof Buffer; }
    static isEncoding(e) { try { encoding(e); return typeof e === "string"; } catch (_) { return false; } }
    static compare(a, b) { return a.compare(b); }
    fill(value, offset = 0, end = this.length, enc) {
      if (typeof offset === "string") { enc = offset; offset = 0; end = this.length; }
      if (typeof value === "string") {
        const bytes = encode(value, enc);
        if (!bytes.length) return super.fill(0, offset, end);
        for (let i = offset, j = 0; i < end; i++, j = (j + 1) % bytes.length) this[i] = bytes[j];
        return this;
      }
      return super.fill(Number(value) & 255, offset, end);
    }
    toString(enc, start = 0, end = this.length) {
      if (this.length === 0) return "";
      return decode(this.subarray(start, end), enc);
    }
    toJSON() { return { type: "Buffer", data: Array.from(this) }; }
    equals(other) { return this.compare(other) === 0; }
    compare(other) {
      const n = Math.min(this.length, other.length);
      for (let i = 0; i < n; i++) if (this[i] !== other[i]) return this[i] < other[i] ? -1 : 1;
      return this.length === other.length ? 0 : this.length < other.length ? -1 : 1;
    }
    slice(start, end) { return this.subarray(start, end); }  // Node's slice shares memory
    write(string, offset = 0, length, enc) {
      if (typeof offset === "string") { enc = offset; offset = 0; }
      const bytes = encode(string, enc);
      const n = Math.min(bytes.length, this.length - offset, length === undefined ? Infinity : length);
      this.set(bytes.subarray(0, n), offset);
      return n;
    }
    indexOf(value, from = 0, enc) {
      const needle = typeof value === "string" ? encode(value, enc)
        : typeof value === "number" ? Uint8Array.of(value & 255) : value;
      outer: for (let i = from < 0 ? Math.max(0, this.length + from) : from; i <= this.length - needle.length; i++) {
        for (let j = 0; j < needle.length; j++) if (this[i + j] !== needle[j]) continue outer;
        return i;
      }
      return -1;
    }
    includes(value, from, enc) { return this.indexOf(value, from, enc) !== -1; }
    readUInt8(o = 0) { return this[o]; }
    readUInt16BE(o = 0) { return (this[o] << 8) | this[o + 1]; }
    readUInt16LE(o = 0) { return this[o] | (this[o + 1] << 8); }
    readUInt32BE(o = 0) { return ((this[o] << 24) | (this[o + 1] << 16) | (this[o + 2] << 8) | this[o + 3]) >>> 0; }
    readUInt32LE(o = 0) { return ((this[o + 3] << 24) | (this[o + 2] << 16) | (this[o + 1] << 8) | this[o]) >>> 0; }
    readInt32BE(o = 0) { return this.readUInt32BE(o) | 0; }
    readInt32LE(o = 0) { return this.readUInt32LE(o) | 0; }
  }
  Buffer.poolSize = 8192;
  for (const k of ["of_"]) Object.defineProperty(Buffer, k, { enumerable: false });
  define(globalThis, "Buffer", Buffer);

  function btoa(data) {
    if (arguments.length === 0) throw new TypeError("The \"data\" argument must be specified");
    const s = String(data), b = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c > 255) throw new DOMException("Invalid character", "InvalidCharacterError");
      b[i] = c;
    }
    return base64Encode(b, B64, true);
  }
  function atob(data) {
    if (arguments.length === 0) throw new TypeError("The \"data\" argument must be specified");
    let s = String(data).replace(/[\t\n\f\r ]/g, "");
    if (s.length % 4 === 0) s = s.replace(/==?$/, "");
    if (/[^A-Za-z0-9+/]/.test(s)) throw new DOMException("Invalid character", "InvalidCharacterError");
    if (s.length % 4 === 1) {
      throw new DOMException("The string to be decoded is not correctly encoded.", "InvalidCharacterError");
    }
    return latin1Decode(base64Decode(s));
  }
  define(globalThis, "btoa", btoa);
  define(globalThis, "atob", atob);

  class TextEncoder {
    get encoding() { return "utf-8"; }
    encode(input = "") { return utf8Encode(input); }
    encodeInto(src, dest) {
      const b = utf8Encode(src), n = Math.min(b.length, dest.length);
      dest.set(b.subarray(0, n));
      return { read: src.length, written: n };
    }
  }
  class TextDecoder {
    constructor(label = "utf-8", options = {}) {
      const l = String(label).trim().toLowerCase();
      if (l !== "utf-8" && l !== "utf8" && l !== "unicode-1-1-utf-8") {
        throw new RangeError("The \"" + label + "\" encoding is not supported");
      }
      define(this, "_fatal", !!options.fatal);
      define(this, "_ignoreBOM", !!options.ignoreBOM);
    }
    get encoding() { return "utf-8"; }
    get fatal() { return this._fatal; }
    get ignoreBOM() { return this._ignoreBOM; }
    decode(input) {
      if (input === undefined) return "";
      const b = input instanceof ArrayBuffer ? new Uint8Array(input)
        : new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
      const start = !this._ignoreBOM && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf ? 3 : 0;
      return utf8Decode(b.subarray(start), this._fatal);
    }
  }
  define(globalThis, "TextEncoder", TextEncoder);
  define(globalThis, "TextDecoder", TextDecoder);

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
  define(globalThis, "URL", URL);
  define(globalThis, "URLSearchParams", URLSearchParams);

  // -- structuredClone ---------------------------------------------------------------------
  function structuredClone(value) {
    if (arguments.length === 0) throw new TypeError("The \"value\" argument must be specified");
    const seen = new Map();
    function clone(v) {
      if (typeof v === "function" || typeof v === "symbol") {
        throw new DOMException(String(v) + " could not be cloned.", "DataCloneError");
      }
      if (v === null || typeof v !== "object") return v;
      if (seen.has(v)) return seen.get(v);
      let out;
      if (isArray(v)) {
        out = new Array(v.length);
        seen.set(v, out);
        for (const k of Object.keys(v)) out[k] = clone(v[k]);
        return out;
      }
      if (v instanceof Date) out = new Date(v.getTime());
      else if (v instanceof RegExp) out = new RegExp(v.source, v.flags);
      else if (v instanceof ArrayBuffer) out = v.slice(0);
      else if (ArrayBuffer.isView(v)) {
        const C = v instanceof Buffer ? Uint8Array : v.constructor;
        out = v instanceof DataView ? new DataView(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength))
          : new C(v);
      } else if (v instanceof Map) {
        out = new Map(); seen.set(v, out);
        for (const [k, x] of v) out.set(clone(k), clone(x));
        return out;
      } else if (v instanceof Set) {
        out = new Set(); seen.set(v, out);
        for (const x of v) out.add(clone(x));
        return out;
      } else if (v instanceof Error) {
        out = new (globalThis[v.name] && globalThis[v.name].prototype instanceof Error ? globalThis[v.name] : Error)(v.message);
        if (v.stack !== undefined) define(out, "stack", v.stack);
      } else if (v instanceof Promise || v instanceof WeakMap || v instanceof WeakSet) {
        throw new DOMException("#<" + v.constructor.name + "> could not be cloned.", "DataCloneError");
      } else {
        out = {};
        seen.set(v, out);
        for (const k of Object.keys(v)) out[k] = clone(v[k]);
        return out;
      }
      seen.set(v, out);
      return out;
    }
    return clone(value);
  }
  define(globalThis, "structuredClone", structuredClone);

  // -- timers: jobs run after the snippet's own jobs, in due order, without real waiting ----
  let timerSeq = 0, clock = 0;
  const timers = new Map();
  function addTimer(fn, ms, args, repeat) {
    if (typeof fn !== "function") {
      throw new TypeError("The \"callback\" argument must be of type function. Received " + typeof fn);
    }
    const id = ++timerSeq;
    const delay = Math.max(0, Number(ms) || 0);
    timers.set(id, { fn, args, due: clock + delay, delay, repeat, seq: id });
    return id;
  }
  define(globalThis, "setTimeout", (fn, ms, ...args) => addTimer(fn, ms, args, false));
  define(globalThis, "setInterval", (fn, ms, ...args) => addTimer(fn, ms, args, true));
  define(globalThis, "setImmediate", (fn, ...args) => addTimer(fn, 0, args, false));
  const clear = (id) => { timers.delete(typeof id === "object" && id ? id.id : id); };
  define(globalThis, "clearTimeout", clear);
  define(globalThis, "clearInterval", clear);
  define(globalThis, "clearImmediate", clear);
  if (typeof globalThis.queueMicrotask !== "function") {
    define(globalThis, "queueMicrotask", (fn) => { Promise.resolve().then(fn); });
  }
  // called by the executor when the job queue is empty: run the next timer (true) or say
  // there is none (false)
  define(sandbox, "timer", () => {
    let next = null;
    for (const t of timers.values()) {
      if (next === null || t.due < next.due || (t.due === next.due && t.seq < next.seq)) next = t;
    }
    if (next === null) return false;
    clock = next.due;
    if (next.repeat) { next.due = clock + Math.max(1, next.delay); next.seq = ++timerSeq; }
    else timers.delete(next.seq);
    next.fn(...next.args);
    return true;
  });

  // -- locale formatting: toLocaleString and Intl from a table of Node's own ICU output -----
  // (locale_table.json, written by tests/node/locale_table.js). What the table lacks (a
  // locale, an option set, a time zone) throws an error that names it: never a silently
  // different text.
  let table = null;
  function notSupported(what) {
    return new RangeError(what + " is not supported in this runner (snippet-sandbox)");
  }
  function localeOf(locales, api) {
    if (table === null) table = nativeParse(localeTable());
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
  define(Number.prototype, "toLocaleString", function toLocaleString(locales, options) {
    return numberFormatter(locales, options, "Number.prototype.toLocaleString").format(Number(this));
  });

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
    if (tz === undefined) return "UTC";
    const name = String(tz);
    const found = Object.keys(ZONES).find((z) => z.toLowerCase() === name.toLowerCase());
    if (!found) throw notSupported(api + ": the time zone '" + name + "'");
    return found === "Etc/UTC" || found === "GMT" || found === "Etc/GMT" || found === "Z" ? "UTC" : found;
  }
  function offsetAt(zone, t, api) {
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
    const format = (date) => {
      const t = date === undefined ? Date.now() : Number(date instanceof Date ? date.getTime() : date);
      if (t !== t) throw new RangeError("Invalid time value");
      const d = new Date(t + offsetAt(zone, t, api) * 60000);
      const H = d.getUTCHours();
      return pattern.replace(/\{([^{}]*|[{}])\}/g, (_, tok) => {
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
    return { format, resolved };
  }
  function DateTimeFormat(locales, options) {
    if (!new.target) return new DateTimeFormat(locales, options);
    define(this, "_f", dateFormatter(locales, options, "any", "date", "Intl.DateTimeFormat"));
  }
  define(DateTimeFormat, "supportedLocalesOf", supportedLocalesOf);
  Object.defineProperty(DateTimeFormat.prototype, "format", { get() { return this._f.format; }, configurable: true });
  define(DateTimeFormat.prototype, "formatToParts", function formatToParts() {
    throw notSupported("Intl.DateTimeFormat.prototype.formatToParts");
  });
  define(DateTimeFormat.prototype, "resolvedOptions", function resolvedOptions() { return Object.assign({}, this._f.resolved); });
  for (const [name, required, defaults] of [["toLocaleString", "any", "all"], ["toLocaleDateString", "date", "date"],
                                            ["toLocaleTimeString", "time", "time"]]) {
    define(Date.prototype, name, {
      [name](locales, options) {
        const t = this.getTime();
        if (t !== t) return "Invalid Date";
        return dateFormatter(locales, options, required, defaults, "Date.prototype." + name).format(t);
      },
    }[name]);
  }
  const Intl = {};
  define(Intl, "NumberFormat", NumberFormat);
  define(Intl, "DateTimeFormat", DateTimeFormat);
  define(Intl, "getCanonicalLocales", (l) => (l === undefined ? [] : (isArray(l) ? l : [l]).map(String)));
  define(globalThis, "Intl", Intl);

  // -- JSON.parse in V8's words ------------------------------------------------------------
  // QuickJS's own parser decides; only when it refuses is the text scanned again to say
  // where and why as V8 (Node 20) says it.
  function jsonError(src) {
    const WS = " \t\n\r";
    let p = 0;
    const fail = (at, message) => { throw { at, message }; };
    const ws = () => { while (p < src.length && WS.includes(src[p])) p++; };
    function string() {
      p++;
      for (;;) {
        if (p >= src.length) fail(-1, "Unterminated string in JSON at position " + p);
        const c = src.charCodeAt(p);
        if (c === 34) { p++; return; }
        if (c < 0x20) fail(-1, "Bad control character in string literal in JSON at position " + p);
        if (c === 92) {
          const e = src[p + 1];
          if (e === "u") {
            for (let k = 2; k < 6; k++) {
              if (!/[0-9a-fA-F]/.test(src[p + k] || "")) fail(-1, "Bad Unicode escape in JSON at position " + (p + k));
            }
            p += 6;
            continue;
          }
          if (e === undefined || !"\"\\/bfnrt".includes(e)) fail(-1, "Bad escaped character in JSON at position " + (p + 1));
          p += 2;
          continue;
        }
        p++;
      }
    }
    function number() {
      if (src[p] === "-") {
        p++;
        if (!/[0-9]/.test(src[p] || "")) fail(-1, "No number after minus sign in JSON at position " + p);
      }
      if (src[p] === "0") {
        p++;
        if (/[0-9]/.test(src[p] || "")) fail(p);
      } else while (/[0-9]/.test(src[p] || "")) p++;
      if (src[p] === ".") {
        p++;
        if (!/[0-9]/.test(src[p] || "")) fail(-1, "Unterminated fractional number in JSON at position " + p);
        while (/[0-9]/.test(src[p] || "")) p++;
      }
      if (src[p] === "e" || src[p] === "E") {
        p++;
        if (src[p] === "+" || src[p] === "-") p++;
        if (!/[0-9]/.test(src[p] || "")) fail(-1, "Exponent part is missing a number in JSON at position " + p);
        while (/[0-9]/.test(src[p] || "")) p++;
      }
    }
    function literal(word) {
      for (let k = 0; k < word.length; k++, p++) if (src[p] !== word[k]) fail(p);
    }
    function value() {
      ws();
      const c = src[p];
      if (c === "\"") return string();
      if (c === "-" || (c >= "0" && c <= "9")) return number();
      if (c === "t") return literal("true");
      if (c === "f") return literal("false");
      if (c === "n") return literal("null");
      if (c === "[") {
        p++; ws();
        if (src[p] === "]") { p++; return; }
        for (;;) {
          value(); ws();
          if (src[p] === ",") { p++; continue; }
          if (src[p] === "]") { p++; return; }
          fail(p, "Expected ',' or ']' after array element");
        }
      }
      if (c === "{") {
        p++; ws();
        if (src[p] === "}") { p++; return; }
        if (src[p] !== "\"") fail(p, "Expected property name or '}'");
        for (let first = true; ; first = false) {
          string(); ws();
          // V8 words only the first property's missing colon
          if (src[p] !== ":") fail(p, first ? "Expected ':' after property name" : undefined);
          p++;
          value(); ws();
          if (src[p] === ",") {
            p++; ws();
            if (src[p] !== "\"") fail(p, "Expected double-quoted property name");
            continue;
          }
          if (src[p] === "}") { p++; return; }
          fail(p, "Expected ',' or '}' after property value");
        }
      }
      fail(p);
    }
    try {
      value(); ws();
      if (p < src.length) fail(-1, "Unexpected non-whitespace character after JSON at position " + p);
      return null;
    } catch (e) {
      if (e.at === -1) return e.message;
      const at = e.at;
      if (e.message) return e.message + " in JSON at position " + at;
      if (at >= src.length) return "Unexpected end of JSON input";
      const c = src[at];
      if (c === "-" || (c >= "0" && c <= "9")) return "Unexpected number in JSON at position " + at;
      if (c === "\"") return "Unexpected string in JSON at position " + at;
      if (src === "NaN" || src === "Infinity" || src === "undefined" || src === "[object Object]") {
        return "\"" + src + "\" is not valid JSON";
      }
      let context;
      if (src.length < 21) context = "\"" + src + "\"";
      else if (at < 10) context = "\"" + src.slice(0, at + 10) + "\"...";
      else if (at < src.length - 10) context = "...\"" + src.slice(at - 10, at + 10) + "\"...";
      else context = "...\"" + src.slice(at - 10) + "\"";
      return "Unexpected token '" + c + "', " + context + " is not valid JSON";
    }
  }
  define(JSON, "parse", function parse(text, reviver) {
    try {
      return nativeParse(text, reviver);
    } catch (e) {
      if (!(e instanceof SyntaxError)) throw e;
      const message = jsonError(String(text));
      if (message === null) throw e;
      throw new SyntaxError(message);
    }
  });
})();
