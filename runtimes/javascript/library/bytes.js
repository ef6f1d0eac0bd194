// A module of globals.js, compiled on a task's first use of what it defines (see the
// loader there): Buffer, btoa/atob, TextEncoder/TextDecoder and the byte codecs they share.
// One function expression: it takes the loader's helpers and returns what it defines.
(function (h) {
  "use strict";
  const { define, isArray, fromCharCode, nativeParse, DOMException } = h;
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
  return { Buffer, btoa, atob, TextEncoder, TextDecoder, utf8Encode, utf8Decode, HEX };
})
