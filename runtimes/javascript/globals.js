// Globals that snippets reach for and QuickJS lacks (Node's and the web's: Buffer, URL,
// TextEncoder, btoa, crypto, structuredClone, setTimeout, locale formatting), and V8's
// wording where QuickJS's differs (JSON.parse). Pure ECMAScript over what the engine has: no
// capability beyond the host's random bytes and the library's own sources (host callables,
// kept private here). This file is evaluated once in the zygote's pristine context
// (executor.py); what fewer tasks use lives in library/*.js, compiled on a task's first use
// of it, so that the pristine heap, which every forked child touches, stays small. The
// executor numbers the library's lines from LIBRARY_LINE so its frames never read as a
// snippet's.
(() => {
  "use strict";
  const randomBytes = globalThis.__random_bytes, localeTable = globalThis.__locale_table;
  const moduleSource = globalThis.__library_module;
  const tzOffset = globalThis.__tz_offset, digest = globalThis.__digest;
  const v8Message = globalThis.__v8_message, setTz = globalThis.__set_tz;
  const npmResolve = globalThis.__npm_resolve, npmRead = globalThis.__npm_read;
  const hostCall = globalThis.__host_call;
  delete globalThis.__host_call;
  delete globalThis.__npm_resolve;
  delete globalThis.__npm_read;
  delete globalThis.__v8_message;
  delete globalThis.__set_tz;
  delete globalThis.__random_bytes;
  delete globalThis.__locale_table;
  delete globalThis.__library_module;
  delete globalThis.__tz_offset;
  delete globalThis.__digest;
  const evaluate = globalThis.eval;  // kept: a snippet may replace the global one
  const sandbox = globalThis.__sandbox;
  const fromCharCode = String.fromCharCode, isArray = Array.isArray;
  const nativeParse = JSON.parse;
  const defineProperty = Object.defineProperty, ownKeys = Reflect.ownKeys;
  const ownDescriptor = Object.getOwnPropertyDescriptor;
  function define(obj, name, value) {
    defineProperty(obj, name, { value, writable: true, configurable: true, enumerable: false });
  }
  // Object and Reflect as they are now, for the library's modules and npm packages to see
  // as theirs (load): n8n's Code node replaces some of their functions for the user's code,
  // as n8n's vm wrapper does in its context (library/n8n.js), while what n8n runs in its own
  // realm there (luxon, Buffer, its modules) keeps the real ones
  const ObjectC = Object, construct = Reflect.construct, RealReflect = {};
  const RealObject = function Object(value) {
    return new.target === undefined || new.target === RealObject ? ObjectC(value)
      : construct(ObjectC, arguments, new.target);
  };
  for (const k of ownKeys(ObjectC)) {
    if (k !== "length" && k !== "name") defineProperty(RealObject, k, ownDescriptor(ObjectC, k));
  }
  for (const k of ownKeys(Reflect)) defineProperty(RealReflect, k, ownDescriptor(Reflect, k));

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
      let h = "";
      for (let i = 0; i < 16; i++) h += (b[i] < 16 ? "0" : "") + b[i].toString(16);
      return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20)
        + "-" + h.slice(20);
    },
  };
  define(globalThis, "crypto", crypto);

  // -- the library's modules, compiled on first use --------------------------------------
  const modules = {};
  const helpers = { define, isArray, fromCharCode, nativeParse, DOMException, localeTable, load,
                    tzOffset, digest, entropy, v8Message, setTz, localZone: "UTC",
                    npmResolve, npmRead, evaluate, Object: RealObject, Reflect: RealReflect,
                    hostCall };
  function load(name, factory) {
    // the module's `Object` and `Reflect` are the real ones (RealObject); its first line is
    // blank (executor._library_module), so its lines keep their numbers. `factory`: the
    // same wrapper compiled ahead (preload)
    if (!modules[name]) {
      modules[name] = (factory || evaluate("(function (Object, Reflect) { return ("
                                           + moduleSource(name) + "\n); })"))(
        RealObject, RealReflect)(helpers);
    }
    return modules[name];
  }
  function lazyGlobal(name, module) {
    defineProperty(globalThis, name, {
      configurable: true, enumerable: false,
      get() { const v = load(module)[name]; define(globalThis, name, v); return v; },
      set(v) { define(globalThis, name, v); },
    });
  }
  for (const name of ["Buffer", "btoa", "atob", "TextEncoder", "TextDecoder"]) lazyGlobal(name, "bytes");
  for (const name of ["URL", "URLSearchParams"]) lazyGlobal(name, "url");
  lazyGlobal("structuredClone", "clone");
  lazyGlobal("Intl", "locale");
  lazyGlobal("__n8nRun", "n8n");  // n8n's Code node API (sandbox/n8n/javascript_node.py)
  // the executor compiles a module ahead of time in the zygote when its pools ask for it;
  // gone before any snippet runs (executor._SEAL)
  define(sandbox, "preload", (name, factory) => { load(name, factory); });
  define(Number.prototype, "toLocaleString", function toLocaleString(locales, options) {
    return load("locale").numberFormatter(locales, options, "Number.prototype.toLocaleString").format(Number(this));
  });
  for (const [name, required, defaults] of [["toLocaleString", "any", "all"], ["toLocaleDateString", "date", "date"],
                                            ["toLocaleTimeString", "time", "time"]]) {
    define(Date.prototype, name, {
      [name](locales, options) {
        const t = this.getTime();
        if (t !== t) return "Invalid Date";
        return load("locale").dateFormatter(locales, options, required, defaults, "Date.prototype." + name).format(t);
      },
    }[name]);
  }

  // string comparison in a locale's order, and case mapping where a locale changes it
  define(String.prototype, "localeCompare", function localeCompare(that, locales, options) {
    if (this === null || this === undefined) {
      throw new TypeError("String.prototype.localeCompare called on null or undefined");
    }
    return load("locale").collator(locales, options, "String.prototype.localeCompare").compare(String(this), String(that));
  });
  const upper = String.prototype.toUpperCase, lower = String.prototype.toLowerCase;
  const turkic = (locales) => /^(tr|az)(\b|[-_])/i.test(String((Array.isArray(locales) ? locales[0] : locales) ?? ""));
  define(String.prototype, "toLocaleUpperCase", function toLocaleUpperCase(locales) {
    const s = String(this);
    return upper.call(turkic(locales) ? s.replace(/i/g, "\u0130") : s);
  });
  define(String.prototype, "toLocaleLowerCase", function toLocaleLowerCase(locales) {
    const s = String(this);
    return lower.call(turkic(locales) ? s.replace(/I/g, "\u0131").replace(/\u0130/g, "i") : s);
  });
  // V8 names the zone after the offset (the jail's zone is UTC: no TZ inside it)
  for (const name of ["toString", "toTimeString"]) {
    const native = Date.prototype[name];
    define(Date.prototype, name, {
      [name]() {
        const s = native.call(this);
        return / GMT\+0000$/.test(s) ? s + " (Coordinated Universal Time)" : s;
      },
    }[name]);
  }

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

  define(JSON, "parse", function parse(text, reviver) {
    try {
      return nativeParse(text, reviver);
    } catch (e) {
      if (!(e instanceof SyntaxError)) throw e;
      const message = load("json").jsonError(String(text));
      if (message === null) throw e;
      throw new SyntaxError(message);
    }
  });
})();
