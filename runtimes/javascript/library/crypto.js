// A module of globals.js: what ``require('crypto')`` gives where the operator allows that
// built-in (the n8n runner's NODE_FUNCTION_ALLOW_BUILTIN): Node's hashing, HMAC and random
// API over the host's hashlib (the executor's __digest) and the kernel's entropy. What Node's
// module has beyond this (ciphers, keys, sign, webcrypto) throws an error naming it.
// One function expression: it takes the loader's helpers and returns what it defines.
(function (h) {
  "use strict";
  const { Buffer } = h.load("bytes");
  const ALGORITHMS = ["md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sha3-256", "sha3-512"];
  function bytesOf(data, encoding, what) {
    if (typeof data === "string") return Buffer.from(data, encoding || "utf8");
    if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (data instanceof ArrayBuffer) return Buffer.from(data);
    const err = new TypeError("The \"" + what + "\" argument must be of type string or an instance of "
      + "Buffer, TypedArray, or DataView. Received " + (data === null ? "null" : typeof data));
    err.code = "ERR_INVALID_ARG_TYPE";
    throw err;
  }
  function finish(raw, encoding) {
    const out = Buffer.from(raw, "latin1");
    return encoding === undefined || encoding === "buffer" ? out : out.toString(encoding);
  }
  class Hash {
    constructor(algorithm, key) {
      const name = String(algorithm).toLowerCase();
      if (!ALGORITHMS.includes(name)) {
        throw key === undefined ? new Error("Digest method not supported")
          : new Error("Invalid digest: " + algorithm);
      }
      this._name = name;
      this._key = key === undefined ? undefined : bytesOf(key, "utf8", "key").toString("latin1");
      this._parts = [];
      this._done = false;
    }
    update(data, encoding) {
      if (this._done) throw new Error(this._key === undefined ? "Digest already called" : "Digest already called");
      this._parts.push(bytesOf(data, encoding, "data"));
      return this;
    }
    digest(encoding) {
      if (this._done) throw new Error("Digest already called");
      this._done = true;
      const data = Buffer.concat(this._parts).toString("latin1");
      return finish(h.digest(this._name, this._key === undefined ? null : this._key, data), encoding);
    }
    copy() {
      const c = Object.create(Object.getPrototypeOf(this));
      Object.assign(c, this, { _parts: this._parts.slice() });
      return c;
    }
  }
  function randomBytes(n, callback) {
    if (typeof n !== "number" || !(n >= 0) || n > 2147483647) {
      throw new RangeError("The value of \"size\" is out of range. It must be >= 0 && <= 2147483647. Received " + n);
    }
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i += 65536) out.set(h.entropy(Math.min(65536, n - i)), i);
    if (typeof callback === "function") { Promise.resolve().then(() => callback(null, out)); return undefined; }
    return out;
  }
  function randomInt(min, max, callback) {
    if (max === undefined || typeof max === "function") { callback = max; max = min; min = 0; }
    const range = max - min;
    if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max) || range <= 0) {
      throw new RangeError("The value of \"max\" is out of range. It must be greater than the value of \"min\" (" + min + "). Received " + max);
    }
    const b = h.entropy(6);
    let x = 0;
    for (let i = 0; i < 6; i++) x = x * 256 + b[i];
    const v = min + (x % range);
    if (typeof callback === "function") { Promise.resolve().then(() => callback(null, v)); return undefined; }
    return v;
  }
  function randomUUID() {
    const b = h.entropy(16);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const x = Buffer.from(b).toString("hex");
    return x.slice(0, 8) + "-" + x.slice(8, 12) + "-" + x.slice(12, 16) + "-" + x.slice(16, 20) + "-" + x.slice(20);
  }
  function timingSafeEqual(a, b) {
    const x = bytesOf(a, undefined, "buf1"), y = bytesOf(b, undefined, "buf2");
    if (x.length !== y.length) {
      const err = new RangeError("Input buffers must have the same byte length");
      err.code = "ERR_CRYPTO_TIMING_SAFE_EQUAL_LENGTH";
      throw err;
    }
    let d = 0;
    for (let i = 0; i < x.length; i++) d |= x[i] ^ y[i];
    return d === 0;
  }
  const api = {
    createHash: (algorithm) => new Hash(algorithm),
    createHmac: (algorithm, key) => new Hash(algorithm, key === undefined ? "" : key),
    hash: (algorithm, data, encoding = "hex") => new Hash(algorithm).update(data).digest(encoding),
    getHashes: () => ALGORITHMS.slice(),
    randomBytes, randomInt, randomUUID, timingSafeEqual,
    getRandomValues: (view) => {
      new Uint8Array(view.buffer, view.byteOffset, view.byteLength).set(h.entropy(view.byteLength));
      return view;
    },
  };
  // the rest of Node's module: named, never silently missing
  const crypto = new Proxy(api, {
    get(target, prop) {
      if (typeof prop === "symbol" || prop in target || prop === "then" || prop === "default") {
        return prop === "default" ? crypto : target[prop];
      }
      return function unavailable() {
        throw new Error("crypto." + prop + " is not available in this runner (snippet-sandbox): "
                        + "its crypto module has hashing, HMAC and random values");
      };
    },
  });
  return { crypto };
})
