// A module of globals.js, compiled on a task's first use of what it defines (see the
// loader there): structuredClone.
// One function expression: it takes the loader's helpers and returns what it defines.
(function (h) {
  "use strict";
  const { define, isArray, fromCharCode, nativeParse, DOMException } = h;
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
        const C = v instanceof Uint8Array ? Uint8Array : v.constructor;  // a Buffer clones to one, as in V8
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
  return { structuredClone };
})
