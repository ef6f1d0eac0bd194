"""Run one JavaScript snippet in QuickJS inside a child: the same contract as Python.

The engine is quickjs-ng (the ``quickjs-ng`` wheel's ``quickjs`` module). Each task gets a
fresh ``quickjs.Context``, whose world holds only the ECMAScript globals and a ``console``
whose output is collected inside JS: no ``std``, ``os``, ``print``, ``scriptArgs`` or module
loader, so ``import()`` of anything rejects.

Contract: the code is the body of ``function snippet(data)`` (``async`` when it uses
``await``); ``return`` gives the result; a returned Promise is settled by running the engine's
job queue. The function header shares the snippet's first line, so stack line numbers are the
snippet's own.

Values cross inside the child as JSON with tagged objects ``{"\\u0000": [kind, payload]}``
(bytes as latin-1 text, dates as epoch milliseconds, BigInts and non-finite numbers as
text); user keys that start with ``\\u0000`` are escaped by one more. The result then goes
through the codec like any Python value, so the wire carries msgpack bin, never base64.

=====================================  ===============================================
JavaScript value                       result
=====================================  ===============================================
undefined, null                        None
boolean, string                        bool, str
number                                 int when integral (and -0 -> 0), else float;
                                       NaN and +-Infinity as floats
BigInt                                 int (any size)
Uint8Array, ArrayBuffer, DataView      bytes
other typed arrays                     list of numbers
Date                                   aware UTC datetime; an invalid Date is an error
Array                                  list (holes become None)
Map with string keys                   dict; other key types are an error
Set                                    list
other objects                          dict of own enumerable string keys; ``toJSON`` is
                                       never called
function, Symbol, a cycle,             status ``error``, type ``UnserializableResult``,
nesting deeper than 256                with the path
=====================================  ===============================================

Bytes in ``data`` arrive as Uint8Array, datetimes as Date, ints beyond 2**53 as BigInt.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import hmac
import json
import math
import mmap
import os
import pathlib
import re
import time
import zoneinfo
from collections.abc import Callable
from typing import Any

from runtimes import calls, codec, outcome, output
from runtimes.javascript import bytecode, npm, v8_words
from runtimes.outcome import ErrorDetail, Status
from runtimes.protocol import Task

TAG = "\u0000"
LIBRARY_LINE = 20_000  # globals.js's first line (see _library); far below it are snippets' lines
# the first line of the library's modules that stand for Node's own (its Buffer, crypto, URL,
# and the npm packages n8n's runner loads): what they throw is an error of Node's realm
# there, which n8n's runner reports without the user's line (library/n8n.js)
NODE_REALM_LINE = 40_000
_NODE_REALM = frozenset({"bytes", "url", "clone", "crypto", "n8n", "n8n_paired", "luxon", "jmespath"})
MAX_STACK_BYTES = 1024 * 1024
_UTC = datetime.timezone.utc
_SAFE_INT = 2**53

# Evaluated in every fresh context before the snippet. It keeps its own references to the
# built-ins it uses, so a snippet that replaces JSON or Object.keys only spoils its own result.
# Everything the report is built of (the report, its error record, the converted value, its
# tags) is an object or array WITHOUT a prototype, made and read only through intrinsics taken
# here, before any snippet runs: JSON.stringify finds no toJSON on them, an assignment meets
# no inherited setter, and a getter the snippet puts on Object.prototype or Array.prototype
# (say on "error" or "value") is never consulted. The sandbox object is frozen. So however a
# snippet poisons the world it leaves, the report says what the snippet itself did.
PRELUDE = r"""
(() => {
  const emit = globalThis.__emit;  // the host's output buffer (runtimes.output); kept private
  delete globalThis.__emit;
  const TAG = "\u0000", MAX_DEPTH = 256, MAX_ERROR_CHARS = 65536;
  const stringify = JSON.stringify, parse = JSON.parse, keys = Object.keys;
  const isArray = Array.isArray, fromCharCode = String.fromCharCode;
  const define = Object.defineProperty, getProto = Object.getPrototypeOf;
  const create = Object.create, setProto = Object.setPrototypeOf, freeze = Object.freeze;
  const apply = Reflect.apply, Str = String, isFinite = Number.isFinite;
  const strSlice = String.prototype.slice;
  const ArrayC = Array, ErrorC = Error, InternalErrorC = InternalError, PromiseC = Promise;
  const ArrayBufferC = ArrayBuffer, Uint8ArrayC = Uint8Array, DataViewC = DataView;
  const DateC = Date, SetC = Set, MapC = Map;
  const TypedArray = getProto(Uint8Array);
  const then = PromiseC.prototype.then, getTime = DateC.prototype.getTime;
  const subarray = TypedArray.prototype.subarray;
  const typedLength = Object.getOwnPropertyDescriptor(TypedArray.prototype, "length").get;
  const setHas = SetC.prototype.has, setAdd = SetC.prototype.add, setDelete = SetC.prototype.delete;
  const state = { started: false, full: false, done: false, value: undefined,
                  error: undefined };

  // what the report is made of: no prototype, so nothing inherited is ever consulted
  function record() { return create(null); }
  function list(n) { const a = new ArrayC(n); setProto(a, null); return a; }
  function tag(kind, payload) {
    const o = record(), pair = list(2);
    pair[0] = kind;
    pair[1] = payload;
    o[TAG] = pair;
    return o;
  }
  // an error's text comes back whole up to MAX_ERROR_CHARS: the snippet chooses what it
  // throws, and its error must still fit its envelope (and its memory limit)
  function clip(text) {
    if (text.length <= MAX_ERROR_CHARS) return text;
    return apply(strSlice, text, [0, MAX_ERROR_CHARS]) + "... (" +
      (text.length - MAX_ERROR_CHARS) + " more characters)";
  }
  function error(type, message, stack, unserializable, oom) {
    const o = record();
    o.type = clip(type);
    o.message = clip(message);
    o.stack = clip(stack);
    o.unserializable = unserializable;
    if (oom) o.oom = true;
    return o;
  }

  function show(v, depth) {
    switch (typeof v) {
      case "string": return depth ? stringify(v) : v;
      case "undefined": return "undefined";
      case "bigint": return v + "n";
      case "function": return "[Function " + (v.name || "(anonymous)") + "]";
      case "symbol": return v.toString();
      case "object":
        if (v === null) return "null";
        if (v instanceof Error) return v.stack ? v.name + ": " + v.message + "\n" + v.stack : String(v);
        if (depth > 2) return isArray(v) ? "[Array]" : "[Object]";
        if (isArray(v)) return "[ " + v.map((x) => show(x, depth + 1)).join(", ") + " ]";
        if (v instanceof Uint8Array) return "Uint8Array(" + v.length + ")";
        if (v instanceof Date) return isNaN(v) ? "Invalid Date" : v.toISOString();
        try {
          return "{ " + keys(v).map((k) => k + ": " + show(v[k], depth + 1)).join(", ") + " }";
        } catch (e) { return "[Object]"; }
      default: return String(v);
    }
  }
  function writeTo(stream, args) {
    if (state.full) return;
    state.full = !emit((args.map((a) => show(a, 0)).join(" ") + "\n").toWellFormed(), stream);
  }
  const write = (...args) => writeTo(1, args);  // stdout
  const writeErr = (...args) => writeTo(2, args);  // stderr
  const console = { log: write, info: write, warn: writeErr, error: writeErr, debug: write };

  function latin1(u8) {
    let s = "";
    const n = apply(typedLength, u8, []);
    for (let i = 0; i < n; i += 8192) s += apply(fromCharCode, null, apply(subarray, u8, [i, i + 8192]));
    return s;
  }
  function fail(path, what) {
    const e = new TypeError(path + ": " + what);
    e.unserializable = true;
    throw e;
  }
  function esc(k) { return k.length && k[0] === TAG ? TAG + k : k; }
  function walk(v, path, depth, seen) {
    switch (typeof v) {
      case "undefined": return null;
      case "boolean": case "string": return v;
      case "number": return isFinite(v) ? v : tag("float", Str(v));
      case "bigint": return tag("bigint", Str(v));
      case "function": fail(path, "a function is not serializable");
      case "symbol": fail(path, "a Symbol is not serializable");
    }
    if (v === null) return null;
    if (depth >= MAX_DEPTH) fail(path, "nested deeper than " + MAX_DEPTH + " levels");
    if (apply(setHas, seen, [v])) fail(path, "circular reference");
    if (v instanceof ArrayBufferC) return tag("bytes", latin1(new Uint8ArrayC(v)));
    if (v instanceof Uint8ArrayC) return tag("bytes", latin1(v));
    if (v instanceof DataViewC) {
      return tag("bytes", latin1(new Uint8ArrayC(v.buffer, v.byteOffset, v.byteLength)));
    }
    if (v instanceof TypedArray) {
      const n = apply(typedLength, v, []), out = list(n);
      for (let i = 0; i < n; i++) out[i] = walk(v[i], path, depth + 1, seen);
      return out;
    }
    if (v instanceof DateC) {
      const t = apply(getTime, v, []);
      if (t !== t) fail(path, "an invalid Date is not serializable");
      return tag("date", t);
    }
    if (v instanceof PromiseC) fail(path, "a Promise inside the result is not serializable");
    apply(setAdd, seen, [v]);
    try {
      if (isArray(v)) {
        const n = v.length, out = list(n);
        for (let i = 0; i < n; i++) out[i] = walk(v[i], path + "[" + i + "]", depth + 1, seen);
        return out;
      }
      if (v instanceof SetC) {
        const out = list(0);
        let i = 0;
        for (const x of v) { out[i] = walk(x, path + "[" + i + "]", depth + 1, seen); i++; }
        return out;
      }
      const out = record();
      if (v instanceof MapC) {
        for (const [k, x] of v) {
          if (typeof k !== "string") fail(path, "a Map key of type " + typeof k + " is not allowed");
          out[esc(k)] = walk(x, path + "[" + stringify(k) + "]", depth + 1, seen);
        }
        return out;
      }
      const ks = keys(v);
      for (let i = 0; i < ks.length; i++) {
        const k = ks[i];
        out[esc(k)] = walk(v[k], path + "." + k, depth + 1, seen);
      }
      return out;
    } finally {
      apply(setDelete, seen, [v]);
    }
  }
  function revive(key, v) {
    if (v === null || typeof v !== "object" || isArray(v)) return v;
    const ks = keys(v);
    if (ks.length === 1 && ks[0] === TAG) {
      const [kind, payload] = v[TAG];
      if (kind === "bytes") {
        const u8 = new Uint8Array(payload.length);
        for (let i = 0; i < payload.length; i++) u8[i] = payload.charCodeAt(i);
        return u8;
      }
      if (kind === "date") return new Date(payload);
      if (kind === "bigint") return BigInt(payload);
      if (kind === "float") return Number(payload);
    }
    if (!ks.some((k) => k[0] === TAG)) return v;
    const out = {};
    for (const k of ks) out[k[0] === TAG ? k.slice(1) : k] = v[k];
    return out;
  }
  function describe(e) {
    if (e instanceof InternalErrorC && e.message === "out of memory") {
      return error("InternalError", "out of memory", "", false, true);
    }
    if (e instanceof ErrorC) {
      return error(Str(e.name), Str(e.message), Str(e.stack || ""), e.unserializable === true, false);
    }
    if (e === null) {  // how the engine throws when it cannot even allocate an Error
      return error("InternalError", "out of memory", "", false, true);
    }
    let text;
    try { text = typeof e === "string" ? e : Str(stringify(e)); } catch (_) { text = Str(e); }
    const o = error("Thrown", "", "", false, false);
    o.message = "uncaught " + typeof e + ": " + clip(text);  // the thrown text clipped, once
    return o;
  }
  function settle(ok, v) {
    if (state.done) return;
    state.done = true;
    if (ok) state.value = v; else state.error = describe(v);
  }
  const sandbox = {
    // Exercise parse, walk and stringify without touching the task's state: run in a fresh
    // child on its pristine context so copy-on-write faults happen before the task.
    warm(input) {
      show(stringify(walk(parse(input, revive), "result", 0, new SetC())), 0);
    },
    started() { return state.started; },
    // a session's next call, in the same context: a fresh report, the world as it was left
    reset() {
      state.started = state.full = state.done = false;
      state.value = state.error = undefined;
    },
    run(snippet) {
      const input = globalThis.__input;
      delete globalThis.__input;
      sandbox.start(snippet, input);
      return state.done ? sandbox.finish() : "";
    },
    start(snippet, input) {
      state.started = true;
      let r;
      try {
        r = snippet(parse(input, revive));
      } catch (e) { settle(false, e); return; }
      if (r instanceof PromiseC) apply(then, r, [(v) => settle(true, v), (e) => settle(false, e)]);
      else settle(true, r);
    },
    // the job queue is empty: run the next timer (globals.js), or report
    tick() {
      return !state.done && sandbox.timer && sandbox.timer() ? "" : sandbox.finish();
    },
    finish() {
      const report = record();
      if (!state.done) {
        report.error = error("Error", "the snippet's Promise never settled", "", false, false);
      } else if (state.error) {
        report.error = state.error;
      } else {
        try { report.value = walk(state.value, "result", 0, new SetC()); }
        catch (e) { report.error = describe(e); }
      }
      return stringify(report);
    },
  };
  // frozen once globals.js added its part (the timers): _new_context
  define(globalThis, "console", { value: console, writable: true, configurable: true });
  define(globalThis, "__sandbox", { value: sandbox });
})();
"""

# what a report of the prelude looks like, for the rehearsal
_REHEARSAL_REPORT = json.dumps({"value": {"x": [1, "v", None], "n": 1.5,
                                          "b": {"\u0000": ["bytes", "ab"]},
                                          "d": {"\u0000": ["date", 0]}}})


# A context with only the prelude evaluated, made once in the zygote and inherited by every
# child through fork: each child's copy is as fresh as a new context (no snippet ever ran in
# it), without paying ~0.7 ms of context creation and prelude parsing on the task's path.
_pristine: Any = None
_preloaded: tuple[str, ...] = ()  # library modules every context compiles when it is made
_output: output.OutputBuffer | None = None  # the running task's console output
_source = ""  # the running task's script, as evaluated (its lines and columns are the stack's)


def _new_context() -> Any:
    import quickjs

    ctx = quickjs.Context()
    ctx.set_max_stack_size(MAX_STACK_BYTES)
    ctx.add_callable("__emit", _emit)  # the prelude keeps it and removes the global
    ctx.add_callable("__random_bytes", _random_bytes)  # so does globals.js
    ctx.add_callable("__locale_table", _locale_table)  # and this, read on first use
    ctx.add_callable("__library_module", _library_module)
    ctx.add_callable("__tz_offset", _tz_offset)  # and these, for dates in any time zone
    ctx.add_callable("__digest", _digest)  # and hashing (library/crypto.js)
    ctx.add_callable("__v8_message", _v8_message)  # and V8's words for errors (v8_words)
    ctx.add_callable("__set_tz", _set_tz)  # and the process's local time zone (Date's)
    ctx.add_callable("__npm_resolve", npm.host_resolve)  # and npm packages for require()
    ctx.add_callable("__npm_read", npm.host_read)
    ctx.add_callable("__host_call", _host_call)  # and the functions the task's host offers
    # collect once made: the engine's next collection is due at half as much again as what
    # it holds after this one, so a child's first allocations do not start a collection that
    # walks (and so copies) every page of the heap it inherited
    loader = _loader()
    if loader is None:
        for script in _boot_scripts(_preloaded):
            ctx.eval(script)
        ctx.gc()
    else:
        for script in _boot_scripts(_preloaded):
            loader.run(ctx, _compiled(script))
        loader.collect(ctx)
    return ctx


# what seals a context's start: nothing can add to the sandbox object, or preload into it
_SEAL = "delete globalThis.__sandbox.preload; Object.freeze(globalThis.__sandbox)"


@functools.cache
def _boot_scripts(preloaded: tuple[str, ...]) -> tuple[str, ...]:
    """What a new context runs before any snippet, in order: the prelude, globals.js, the
    preloaded library modules, the seal."""
    modules = tuple(
        f"__sandbox.preload({json.dumps(name)}, (function (Object, Reflect) {{ return ("
        f"{_library_module(name)}\n); }}));" for name in preloaded)
    return (PRELUDE, _library(), *modules, _SEAL)


@functools.cache
def _loader() -> bytecode.Loader | None:
    import _quickjs
    import quickjs

    return bytecode.Loader.open(_quickjs.Context, quickjs.Context, _quickjs.__file__)


@functools.cache
def _compiled(script: str) -> bytes:
    """``script`` as bytecode, compiled once per process (the zygote's, inherited)."""
    import quickjs

    loader = _loader()
    assert loader is not None
    return loader.compile(quickjs.Context(), script)


@functools.cache
def _library() -> str:
    """globals.js, its first line numbered ``LIBRARY_LINE``: the engine names every script
    ``<input>``, and a frame of ours must not read as a line of the snippet."""
    text = (pathlib.Path(__file__).parent / "globals.js").read_text(encoding="utf-8")
    return "\n" * (LIBRARY_LINE - 1) + text


LIBRARY_MODULES = ("bytes", "url", "clone", "locale", "json", "crypto", "n8n", "n8n_paired", "luxon",
                   "jmespath")

# Pure-JavaScript packages of npm that n8n's Code node exposes, vendored as published at the
# versions n8n 2.41.1 pins (library/vendor/, with their licenses): the file, what precedes
# it and what follows it, so that each becomes a module of the loader (a function of the
# helpers that returns what the package exports) without a module system.
_VENDORED = {
    "luxon": ("luxon-3.7.2.min.js", "(function (h) {\n", "\nreturn luxon;\n})"),
    "jmespath": ("jmespath-0.16.0.js", "(function (h) {\nvar exports = {};\n",
                 "\nreturn exports;\n})"),
}


@functools.cache
def _library_module(name: Any) -> str:
    """The source of one of globals.js's modules (library/NAME.js, or a vendored package),
    numbered like it."""
    if name not in LIBRARY_MODULES:
        return "undefined"
    library = pathlib.Path(__file__).parent / "library"
    if name in _VENDORED:
        file, before, after = _VENDORED[name]
        text = before + (library / "vendor" / file).read_text(encoding="utf-8") + after
    else:
        text = (library / f"{name}.js").read_text(encoding="utf-8")
    return "\n" * ((NODE_REALM_LINE if name in _NODE_REALM else LIBRARY_LINE) - 1) + text


_ZONEINFO = "/usr/share/zoneinfo"  # mounted read-only in the jail (sandbox/jail/mounts.py)
_ZONE_KEY = re.compile(r"[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*")
_MS_RANGE = 253_402_300_799_000  # 9999-12-31T23:59:59Z: beyond, datetime has no year


@functools.cache
def _zone(name: str) -> zoneinfo.ZoneInfo | None:
    # only the jail's database: zoneinfo's fallback, the tzdata package, imports machinery
    # a child cannot run after its seccomp filter is installed
    if not _ZONE_KEY.fullmatch(name) or not os.path.isfile(os.path.join(_ZONEINFO, name)):
        return None
    try:
        with open(os.path.join(_ZONEINFO, name), "rb") as f:
            return zoneinfo.ZoneInfo.from_file(f, key=name)
    except (ValueError, OSError):
        return None


def _tz_offset(name: Any, ms: Any) -> float | None:
    """The offset from UTC, in minutes, of the IANA time zone ``name`` at epoch milliseconds
    ``ms``, from the host's time zone database (the jail mounts it read-only); None for a
    zone it does not know. Dates in other zones are what luxon and Intl ask it for."""
    if not isinstance(name, str) or not isinstance(ms, (int, float)) or ms != ms:
        return None
    zone = _zone(name)
    if zone is None:
        return None
    at = datetime.datetime.fromtimestamp(max(-62_135_596_800_000, min(ms, _MS_RANGE)) / 1000.0, zone)
    offset = at.utcoffset()
    return offset.total_seconds() / 60.0 if offset is not None else None


def _set_tz(name: Any) -> bool:
    """Make ``name`` (an IANA zone of the jail's database) this process's local time zone,
    as TZ makes it Node's: what ``Date`` reads (getHours, toString) follows it. The process
    is the task's own (forked for it, or a worker between tasks), so nothing outlives it
    but in a worker, which sets its zone again for every task. False for an unknown zone."""
    if not isinstance(name, str) or _zone(name) is None:
        return False
    os.environ["TZ"] = name
    time.tzset()
    return True


_DIGESTS = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sha3-256", "sha3-512")


def _host_call(name: Any, args: Any) -> str:
    """A call of a function the task's host offers (``runtimes.calls``), for the library's
    callers (n8n's helpers): "1" and the value's JSON text, "0" and the error's, or "!" and
    why no call was made."""
    if not isinstance(name, str) or not isinstance(args, str):
        return "!a host call takes a name and the JSON text of its arguments"
    try:
        ok, data = calls.call(name, args)
    except calls.Refused as exc:
        return "!" + str(exc)
    return ("1" if ok else "0") + data


def _digest(algorithm: Any, key: Any, data: Any) -> str | None:
    """The digest (an HMAC when ``key`` is text) of ``data``, bytes as latin-1 text in and
    out, for library/crypto.js's createHash and createHmac; None for an unknown algorithm."""
    if not isinstance(algorithm, str) or not isinstance(data, str):
        return None
    name = algorithm.lower().replace("sha3-", "sha3_")
    if algorithm.lower() not in _DIGESTS:
        return None
    raw = data.encode("latin-1")
    if isinstance(key, str):
        return hmac.new(key.encode("latin-1"), raw, name).digest().decode("latin-1")
    return hashlib.new(name, raw).digest().decode("latin-1")


@functools.cache
def _locale_table() -> str:
    """locale_table.json, for globals.js's locale formatting: handed over only when a task
    formats (a quarter of a megabyte in every context's heap would cost each forked child
    its copy-on-write faults)."""
    return (pathlib.Path(__file__).parent / "locale_table.json").read_text(encoding="utf-8")


def _random_bytes(n: Any) -> str:
    """``n`` bytes from the kernel as latin-1 text (crypto.getRandomValues, Math.random's seed)."""
    return os.urandom(max(0, min(int(n), 65536))).decode("latin-1")


def _take_context() -> Any:
    """The inherited pristine context, at most once per process; later calls get the one
    ``prepare_next`` made, or a new one: a task never sees another task's context."""
    global _pristine
    ctx, _pristine = _pristine, None
    return ctx if ctx is not None else _new_context()


def prepare_next() -> None:
    """Worker mode, between tasks: a fresh context (a runtime of its own: nothing of the
    previous task's heap) made now, off the next task's clock."""
    global _pristine
    _pristine = _new_context()


def preload(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Load the engine and make the pristine context in the zygote (see ``_pristine``), and
    run our own paths once here, so that what they set up lazily (the json decoder's and the
    codec's first use) is inherited by every child instead of done again in each. ``extra``
    names library modules to compile into it now rather than on a task's first use (the n8n
    runner's pools name ``n8n``, its Code node API): every child inherits them compiled, and
    a worker's next context compiles them off the task's clock. Returns the names that are
    not modules of the library, with why."""
    global _pristine, _preloaded
    _preloaded = tuple(name for name in extra if name in LIBRARY_MODULES)
    _pristine = _new_context()
    _locale_table()
    for name in LIBRARY_MODULES:
        _library_module(name)
    _warm_own_paths()
    return {name: "not a library module of the javascript runtime"
            for name in extra if name not in LIBRARY_MODULES}


def _warm_own_paths() -> None:
    report = json.loads(_REHEARSAL_REPORT, object_hook=_untag)
    data = json.dumps(_tagged(codec.decode(codec.encode({"k": [1, "v", b"", None, 2.5]}))),
                      allow_nan=False)
    out = output.OutputBuffer(64)
    out.write(data.encode())
    outcome.encode(Status.OK, "ok", value=codec.encode(report["value"]), stdout=out.getvalue())
    _header("return 1")


def rehearse() -> None:
    """In a fresh child, before its task (see ``child``): touch what the task will, so the
    copy-on-write faults land now. On the pristine context only the prelude's ``warm`` runs
    (it leaves no trace a snippet could see); our own paths (data in, report out, the codec,
    the envelope) run on canned values. No second context: building and running one cost a
    child more CPU (about 2 ms) than the faults it moved."""
    sample = json.dumps(_tagged({"k": [1, "v", b"\x00", None, 2.5]}))
    if _pristine is not None:
        _pristine.set("__warm", sample)
        _pristine.eval("__sandbox.warm(__warm); delete globalThis.__warm; "
                       "(function snippet(data) {return 1\n})")
    _warm_own_paths()


def run(task: Task, shared: mmap.mmap | None = None) -> bytes:
    """Run one task on this process's pristine context; what it prints goes to ``shared``
    (the host's output file, runtimes.output) when given. A session's calls share one
    context: what a call leaves on ``globalThis`` the next one finds."""
    global _session
    if not task.session:
        return _run(task, _take_context(), shared)
    if _session is None:
        _session = _take_context()
    else:
        _session.eval("__sandbox.reset()")
    return _run(task, _session, shared)


_session: Any = None  # a session's context, kept from call to call


def _v8_message(name: Any, message: Any, native: Any, line: Any, column: Any) -> str:
    """``message`` of an error the running task just made, in V8's words (v8_words):
    ``native`` names the built-in function that raised it, ``line`` and ``column`` are the
    position in the task's script of the frame that did (0 for none)."""
    if not isinstance(name, str) or not isinstance(message, str):
        return message if isinstance(message, str) else ""
    where = (int(line), int(column)) if isinstance(line, (int, float)) and isinstance(
        column, (int, float)) and line > 0 else None
    return v8_words.v8_message(name, message, _source, where,
                               native if isinstance(native, str) and native else None)


def _emit(text: str, stream: int = output.STDOUT) -> bool:
    """console output from the prelude: into the task's buffer (console.warn and .error on
    stderr); False once it is full."""
    if _output is None or not isinstance(text, str):
        return False
    _output.write(text.encode("utf-8", "replace"),
                  output.STDERR if stream == output.STDERR else output.STDOUT)
    return not _output.truncated


def _run(task: Task, ctx: Any, shared: mmap.mmap | None = None) -> bytes:
    import quickjs

    global _output
    code, result_cap = task.code, task.result_bytes
    started = time.perf_counter()
    out = _output = output.OutputBuffer(task.stdout_bytes, shared,
                                        separate=task.separate_stderr, streaming=task.stream)

    def finish(status: Status, message: str, **extra: Any) -> bytes:
        out.flush()  # what a task that streams printed last, before its result
        stdout, stderr = out.streams()
        return outcome.encode(
            status, message, stdout=stdout, stderr=stderr, truncated=out.truncated,
            duration_ms=(time.perf_counter() - started) * 1000.0, **extra,
        )

    try:
        data_json = json.dumps(_tagged(codec.decode(task.data)), allow_nan=False)
        # set after the prelude, so the limit binds the snippet and not our own set-up. No
        # engine time limit: it would keep console output from reaching the host's buffer
        # (the binding cannot call back into Python under one); the host's SIGKILL at the
        # wall-clock timeout and the child's CPU rlimit end a snippet that runs too long.
        ctx.set_memory_limit(task.memory_bytes)
        ctx.set("__input", data_json)
        # One eval compiles the snippet, runs it and, when it settled synchronously, reports.
        global _source
        _source = f"{_RUN}{_header(code)}{code}\n}}))"
        try:
            text = ctx.eval(_source)
        except quickjs.JSException as exc:
            if ctx.eval("__sandbox.started()"):
                raise
            error = _compile_error(str(exc), len(_RUN) + len(_header(code)))  # it did not compile
            return finish(Status.ERROR, f"{error.type}: {error.message}", error=error)
        while not text:  # a Promise: run its jobs, then the timers they set, in turn
            while ctx.execute_pending_job():
                pass
            text = ctx.eval("__sandbox.tick()")
        report = json.loads(text, object_hook=_untag)
    except quickjs.JSException as exc:
        return _engine_failure(str(exc), finish, task.memory_bytes)
    except MemoryError:
        return finish(Status.MEMORY_LIMIT, outcome.out_of_memory(task.memory_bytes))
    error = report.get("error")
    if error is not None and error.get("oom"):
        return finish(Status.MEMORY_LIMIT, outcome.out_of_memory(
            task.memory_bytes, "the engine's; a thrown null reads the same"))
    if error is not None:
        if error["unserializable"]:
            detail = ErrorDetail("UnserializableResult", error["message"], "")
            return finish(Status.ERROR, f"the result cannot be returned: {detail.message}", error=detail)
        message = _with_hint(error["type"], error["message"])
        trace = _traceback(error["type"], error["message"], error["stack"],
                           len(_RUN) + len(_header(code)))
        first = f"{error['type']}: {error['message']}"
        if message != error["message"] and trace.startswith(first):
            trace = f"{error['type']}: {message}{trace[len(first):]}"
        detail = ErrorDetail(error["type"], message, trace)
        return finish(Status.ERROR, f"{detail.type}: {detail.message}", error=detail)
    try:
        encoded = codec.encode(report["value"], max_bytes=result_cap)
    except codec.ResultTooLarge as exc:
        return finish(Status.OUTPUT_LIMIT, str(exc))
    except codec.EncodeError as exc:
        detail = ErrorDetail("UnserializableResult", str(exc), "")
        return finish(Status.ERROR, f"the result cannot be returned: {exc}", error=detail)
    return finish(Status.OK, "ok", value=encoded)


_RUN = "__sandbox.run(("  # what precedes the header on the snippet's first line
# compiled at import, in the zygote: no child pays for it on a task's clock
_AWAIT = re.compile(r"\bawait\b")
_LINE = re.compile(r"<input>:(\d+)")
_POSITION = re.compile(r"<input>:(\d+):(\d+)")


def line1_offset(code: str) -> int:
    """How many columns precede the snippet's own text on its first line (the header)."""
    return len(_RUN) + len(_header(code))


def _header(code: str) -> str:
    # Same line as the snippet's first line: no offset in line numbers. ``async`` only when
    # needed, so a synchronous snippet does not pay for a Promise and a job-queue turn.
    return "async function snippet(data) {" if _AWAIT.search(code) else "function snippet(data) {"


# What a name that Node.js or a browser has, and this runtime has not, means here: said with
# the ReferenceError, as Python's import denials say what to do.
_MISSING = {
    "require": "this runtime loads no modules, neither by require nor by import: the "
               "snippet's own code and the language's built-ins are all there is",
    "fetch": "the sandbox has no network: pass what the snippet needs in `data`",
    "XMLHttpRequest": "the sandbox has no network: pass what the snippet needs in `data`",
    "process": "there is no process here: the input is `data`, the output what the "
               "snippet returns",
}
_NOT_DEFINED = re.compile(r"'?([A-Za-z_$][\w$]*)'? is not defined")


def _with_hint(kind: str, message: str) -> str:
    """A ReferenceError for a name of ``_MISSING``, with what to do instead."""
    found = _NOT_DEFINED.fullmatch(message) if kind == "ReferenceError" else None
    hint = _MISSING.get(found.group(1)) if found else None
    return f"{message}; {hint}" if hint else message


def _engine_failure(text: str, finish: Callable[..., bytes], memory_bytes: int) -> bytes:
    """An exception that escaped to the engine: out of memory, stack overflow, ..."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    if "interrupted" in first:
        return finish(Status.TIMEOUT, "exceeded the engine's time limit")
    if first in ("", "null") or "out of memory" in first:
        return finish(Status.MEMORY_LIMIT, outcome.out_of_memory(memory_bytes, "the engine's"))
    name, _, message = first.partition(": ")
    error = ErrorDetail(name or "InternalError", message or first,
                        _traceback(name, message, text.split("\n", 1)[1] if "\n" in text else ""))
    return finish(Status.ERROR, f"{error.type}: {error.message}", error=error)


def _compile_error(text: str, offset: int) -> ErrorDetail:
    first, _, rest = text.strip().partition("\n")
    name, _, message = first.partition(": ")
    line = _LINE.search(rest)
    if line:
        message = f"{message} (line {line.group(1)})"
    return ErrorDetail(name or "SyntaxError", message,
                       f"{name}: {message}\n" + _snippet_positions(rest, offset) + "\n")


def _traceback(name: str, message: str, stack: str, offset: int = 0) -> str:
    """The stack's frames inside the snippet, named ``<snippet>`` like Python's traceback."""
    lines = stack.splitlines()
    # frames below the snippet's own are the prelude's, which called it
    last = max((i for i, line in enumerate(lines) if "at snippet (" in line), default=len(lines) - 1)
    frames = [_snippet_positions(line, offset) for line in lines[: last + 1]
              if "<input>" in line and not _in_library(line)]
    return "\n".join([f"{name}: {message}", *frames]) + "\n"


def _in_library(frame: str) -> bool:
    line = _LINE.search(frame)
    return line is not None and int(line.group(1)) >= LIBRARY_LINE


def _snippet_positions(text: str, offset: int) -> str:
    """``<input>:L:C`` as the snippet's own ``<snippet>:L:C``: the wrapper shares the snippet's
    first line, so columns on line 1 move back by its length."""
    def one(match: re.Match[str]) -> str:
        line, column = int(match.group(1)), int(match.group(2))
        if line == 1:
            column = max(1, column - offset)
        return f"<snippet>:{line}:{column}"

    return _POSITION.sub(one, text).replace("<input>", "<snippet>")


def _tagged(value: Any) -> Any:
    """A decoded ``data`` value as JSON the prelude's reviver understands."""
    if isinstance(value, bytes):
        return {TAG: ["bytes", value.decode("latin-1")]}
    if isinstance(value, datetime.datetime):
        return {TAG: ["date", value.timestamp() * 1000.0]}
    if isinstance(value, float) and not math.isfinite(value):
        return {TAG: ["float", "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")]}
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _SAFE_INT:
        return {TAG: ["bigint", str(value)]}
    if isinstance(value, list):
        return [_tagged(v) for v in value]
    if isinstance(value, dict):
        return {(TAG + k if k.startswith(TAG) else k) if isinstance(k, str) else str(k): _tagged(v)
                for k, v in value.items()}
    return value


def _untag(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and TAG in obj:
        kind, payload = obj[TAG]
        if kind == "bytes":
            return payload.encode("latin-1")
        if kind == "date":
            return datetime.datetime(1970, 1, 1, tzinfo=_UTC) + datetime.timedelta(milliseconds=payload)
        if kind == "bigint":
            return int(payload)
        if kind == "float":
            return float(payload)
    if any(k.startswith(TAG) for k in obj):
        return {k[1:] if k.startswith(TAG) else k: v for k, v in obj.items()}
    return obj
