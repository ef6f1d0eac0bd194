// n8n's JavaScript Code node API, in QuickJS, as far as it can be built from the data n8n
// sends: a module of globals.js (the global ``__n8nRun``). Trusted code shipped with the
// runtime; the n8n runner's zygote compiles it ahead of time (its pools preload it, so every
// child inherits it), elsewhere a task's first use compiles it. The n8n runner's snippet
// (sandbox/n8n/javascript_node.py) is ``return __n8nRun(data, async function
// VmCodeWrapper() {<user code>\n});``: the user's lines keep their own numbers, and this
// module's lines are numbered from the library's (LIBRARY_LINE), past any user line.
// ``data`` is two JSON texts: what the host worked out of the task (its settings, small) and
// n8n's data response as n8n sent it (the items, the run data: parsed here once, without a
// reviver, as n8n's runner parses it); ``taskData`` joins them as javascript_node.job did.
(function (h) {
  const nativeParse = h.nativeParse, isArray = Array.isArray, keys = Object.keys;
  const object = (v) => v !== null && typeof v === "object" && !isArray(v);
  // taken now, before any user code could replace Object.prototype.hasOwnProperty
  const hasOwn = Function.prototype.call.bind(Object.prototype.hasOwnProperty);
  function taskData(task, frame) {
    const r = frame.data || {};
    const main = (r.inputData || {}).main || [[]];
    const items = new Array(task.start).fill(null);
    for (const it of (main.length ? main[0] : null) || []) items.push(it);
    const workflow = r.workflow || {};
    const nodes = (workflow.nodes || []).filter(object);
    const result = (r.runExecutionData || {}).resultData || {};
    const additional = r.additionalData || {};
    const workflowNodes = {};
    for (const n of nodes) workflowNodes[n.name ?? null] = { parameters: n.parameters || {} };
    task.items = items;
    task.node.parameters = (r.node || {}).parameters || {};
    task.workflowNodes = workflowNodes;
    task.connections = workflow.connections || {};
    task.pinData = workflow.pinData || {};
    task.nodeNames = nodes.map((n) => n.name ?? null);
    task.staticData = workflow.staticData || {};
    task.runData = result.runData || {};
    task.customData = result.metadata || {};
    task.connectionInputSource = r.connectionInputSource || {};
    task.variables = additional.variables || {};
    task.env.values = (r.envProviderState || {}).env || {};
    // n8n's data proxy: the workflow's own time zone, else the instance's (GENERIC_TIMEZONE)
    const zone = (workflow.settings || {}).timezone;
    if (typeof zone === "string" && zone && zone !== "DEFAULT") task.timezone = zone;
    return task;
  }
  const NPM_ROOT = "/sandbox/npm";  // runtimes/javascript/npm.py's ROOT
  // Node's built-in modules (node:module's builtinModules, Node 24): what require() checks
  // against NODE_FUNCTION_ALLOW_BUILTIN rather than NODE_FUNCTION_ALLOW_EXTERNAL
  const NODE_BUILTINS = new Set(("assert buffer child_process cluster console constants crypto dgram "
    + "diagnostics_channel dns domain events fs http http2 https inspector module net os path "
    + "perf_hooks process punycode querystring readline repl stream string_decoder sys timers "
    + "tls trace_events tty url util v8 vm wasi worker_threads zlib assert/strict dns/promises "
    + "fs/promises path/posix path/win32 readline/promises stream/consumers stream/promises "
    + "stream/web timers/promises util/types async_hooks").split(" "));
  // luxon asks Intl for the offsets of IANA zones; this runtime's Intl knows few zones, the
  // host's time zone database (the executor's __tz_offset) knows them all: its zones use that
  function zoned(lx) {
    if (lx.__zoned) return lx;
    const IANAZone = lx.IANAZone;
    IANAZone.isValidZone = (zone) => typeof zone === "string" && zone !== "" && h.tzOffset(zone, 0) !== null;
    Object.defineProperty(IANAZone.prototype, "offset", {
      configurable: true, writable: true,
      value: function offset(ts) {
        const o = this.valid ? h.tzOffset(this.name, Number(ts)) : null;
        return o === null ? NaN : o;
      },
    });
    Object.defineProperty(lx, "__zoned", { value: true });
    return lx;
  }
  // the executor's: lines from here on are the library's modules that stand for Node's
  // (its NODE_REALM_LINE), rather than the language's own built-ins
  const NODE_REALM_LINE = 40000;
  const NATIVE_ERRORS = new Set(["Error", "TypeError", "RangeError", "SyntaxError", "ReferenceError",
                                 "URIError", "EvalError", "AggregateError", "InternalError"]);
  // n8n 2.41's EXPOSED_RPC_METHODS and UNSUPPORTED_HELPER_FUNCTIONS (@n8n/task-runner)
  const RPC_HELPERS = new Set(["assertBinaryData", "getBinaryDataBuffer", "prepareBinaryData",
    "setBinaryDataBuffer", "binaryToString", "httpRequest", "request"]);
  const HELPER_NAMES = ["assertBinaryData", "getBinaryDataBuffer", "prepareBinaryData",
    "setBinaryDataBuffer", "binaryToString", "httpRequest", "request",
    "httpRequestWithAuthentication", "requestWithAuthenticationPaginated", "copyBinaryFile",
    "createReadStream", "getBinaryStream", "binaryToBuffer", "getBinaryMetadata",
    "getStoragePath", "getBinaryPath", "writeContentToFile", "copyInputItems", "returnJsonArray",
    "normalizeItems", "getSSHClient", "createDeferredPromise", "constructExecutionMetaData"];
  const NOT_IN_N8N = ["URL", "URLSearchParams", "structuredClone", "crypto", "queueMicrotask",
                      "DOMException"];
  function __n8nRun(texts, user) {
    const data = taskData(nativeParse(texts[0]), nativeParse(texts[1]));
    // the runner's TZ, as Node's: Date's local time (GENERIC_TIMEZONE is luxon's, below)
    if (data.tz && h.setTz(data.tz)) h.localZone = data.tz;
    const stringify = JSON.stringify, isArray = Array.isArray, keys = Object.keys;
    const nodeName = data.node.name;
    const logs = [];
    const each = data.each;
    const input = data.items;  // sparse in each-item mode: the chunk at its absolute indexes
    const runData = data.runData || {};
    const known = new Set(data.nodeNames || []);
    const customData = Object.assign({}, data.customData || {});
    const staticBefore = stringify(data.staticData || {});
    const staticData = JSON.parse(staticBefore);

    // n8n's own errors (its data proxy's, its env provider's) come from n8n's realm: its runner
    // passes them on as they are, without the user's line (see errorOf)
    const hostErrors = new WeakSet(), userErrors = new WeakSet();

    // Each error made while the code runs gets V8's words and V8's stack (its first row
    // "Name: message"), as in n8n's runner: code that catches an error reads there what it
    // reads here. The engine calls this as it makes the error (quickjs-ng's V8-compatible
    // Error.prepareStackTrace); the words come from the executor (v8_words), which has the
    // task's source for the expressions V8 names.
    Error.prepareStackTrace = v8Stack;  // an accessor of the engine's: assigned, not defined
    function v8Stack(e, sites) {
      try {
        let frames = sites.map((c) => [c.getFunctionName() || "", c.getLineNumber() || 0,
                                       c.getColumnNumber() || 0, !!c.isNative()]);
        // V8 leaves out the frames of the constructor the error was made for (new.target)
        const ctor = e !== null && typeof e === "object" && e.constructor ? e.constructor.name : "";
        if (ctor && !NATIVE_ERRORS.has(ctor)) while (frames.length && frames[0][0] === ctor) frames.shift();
        const top = frames[0];
        if (top && typeof e.message === "string" && !hostErrors.has(e)) {
          const native = top[3] ? top[0] : null;
          // a RegExp's words name its pattern: the caller's line has it
          const at = !top[3] ? top : (native === "RegExp" && frames[1] && !frames[1][3] ? frames[1] : null);
          const message = h.v8Message(String(e.name), e.message, native, at ? at[1] : 0, at ? at[2] : 0);
          if (message !== e.message) e.message = message;
        }
        const rows = [String(e.name) + (e.message ? ": " + e.message : "")];
        for (const [fn, line, col, native] of frames) {
          const where = native ? "native" : "<input>:" + line + ":" + col;
          rows.push("    at " + (fn ? fn + " (" + where + ")" : where));
        }
        return rows.join("\n");
      } catch (_) {
        return String(e && e.name) + ": " + String(e && e.message);
      }
    }
    function hostError(message) {
      const e = new Error(message);
      hostErrors.add(e);
      return e;
    }
    function notAvailable(what, why) {
      const e = new Error(what + " is not available in this runner (snippet-sandbox)"
                          + (why ? ": " + why : ""));
      hostErrors.add(e);
      return e;
    }
    // Something this runner cannot provide: reading a property gives another such stand-in
    // (helpers.httpRequest), calling or constructing one throws an error naming it.
    function missing(what, why) {
      return new Proxy(function () {}, {
        get(_, prop) {
          if (prop === Symbol.toPrimitive) return () => "[" + what + " (not available)]";
          if (typeof prop === "symbol" || prop === "then") return undefined;
          return missing(what + "." + prop, why);
        },
        apply() { throw notAvailable(what, why); },
        construct() { throw notAvailable(what, why); },
      });
    }
    // this.helpers as n8n's runner builds it: n8n's helper functions, each a call into n8n
    // (the host's call, runtimes/calls.py: the runner forwards it as n8n's rpc), and those
    // n8n does not offer to Code nodes throwing its UnsupportedFunctionError's words
    function rpc(name) {
      return async function (...args) {
        const text = String(h.hostCall(name, stringify(args)));
        const body = text.slice(1), value = body === "" || text[0] === "!" ? undefined : nativeParse(body);
        if (text[0] === "1") return serializedBuffer(value) ? h.load("bytes").Buffer.from(value.data) : value;
        if (text[0] === "0") throw typeof value === "string" ? new Error(value) : value;
        throw hostError(body);
      };
    }
    function serializedBuffer(v) {  // n8n-core's isSerializedBuffer
      return typeof v === "object" && v !== null && v.type === "Buffer" && isArray(v.data);
    }
    function unsupported(name) {
      return function () { throw hostError(`The function "${name}" is not supported in the Code Node`); };
    }
    const HELPERS = {};
    for (const name of HELPER_NAMES) {
      HELPERS[name] = RPC_HELPERS.has(name) ? rpc("helpers." + name) : unsupported("helpers." + name);
    }
    function show(v) {
      if (typeof v === "string") return "'" + v + "'";
      if (v === undefined) return "undefined";
      const seen = new Set();
      try {
        return stringify(v, function (k, x) {
          if (typeof x === "bigint") return x.toString();
          if (x !== null && typeof x === "object") {
            if (seen.has(x)) return "[Circular Reference]";
            seen.add(x);
          }
          return x;
        });
      } catch (e) { return String(v); }
    }
    const noop = () => {};
    const console = {
      log: (...args) => { logs.push(args.map(show)); },
      info: noop, warn: noop, error: noop, debug: noop, trace: noop, dir: noop, table: noop,
      time: noop, timeEnd: noop, timeLog: noop, assert: noop, count: noop, countReset: noop,
      group: noop, groupEnd: noop, groupCollapsed: noop, clear: noop,
    };

    function outputOf(name, runIndex) {
      const runs = runData[name];
      if (!runs || !runs.length) return null;
      const run = runs[runIndex === undefined ? runs.length - 1 : runIndex];
      if (!run) return null;
      return { run, items: (run.data && run.data.main && run.data.main[0]) || [] };
    }
    // $('Node').item, .itemMatching(i) and .pairedItem(i), as n8n-workflow resolves them:
    // library/n8n_paired.js, compiled on a task's first use of them
    let paired;
    const pairedItemOf = (target, method, ownIndex) => (paired || (paired = h.load("n8n_paired")({
      data, runData, nodeName, input, hostError, outputOf, object, hasOwn,
    })))(target, method, ownIndex);

    function nodeApi(name, index) {
      if (typeof name !== "string") throw new TypeError("$() takes a node name");
      if (known.size && !known.has(name)) throw hostError("Referenced node doesn't exist");
      const executed = () => {
        const out = outputOf(name);
        if (!out) throw hostError("Node '" + name + "' hasn't been executed");
        return out.items;
      };
      return {
        get isExecuted() { return !!outputOf(name); },
        all: (branch, runIndex) => {
          if (runIndex !== undefined) { const o = outputOf(name, runIndex); return o ? o.items : []; }
          return executed();
        },
        first: () => executed()[0],
        last: () => { const xs = executed(); return xs[xs.length - 1]; },
        get item() { return pairedItemOf(name, "item", index)(); },
        get itemMatching() { return pairedItemOf(name, "itemMatching", index); },
        get pairedItem() { return pairedItemOf(name, "pairedItem", index); },
        get params() {
          const n = (data.workflowNodes || {})[name];
          return n ? n.parameters : {};
        },
        get context() { throw notAvailable("$('" + name + "').context"); },
      };
    }

    const env = data.env || {};
    const $env = env.blocked
      ? new Proxy({}, { get(_, prop) {
          if (typeof prop === "symbol") return undefined;
          throw hostError("access to env vars denied");
        } })
      : Object.assign({}, env.values || {});
    const $workflow = { id: data.workflow.id, name: data.workflow.name, active: !!data.workflow.active };
    const $execution = {
      id: data.executionId,
      mode: data.workflowMode === "manual" ? "test" : "production",
      resumeUrl: data.resumeUrl,
      customData: {
        set(k, v) { customData[String(k)] = String(v); },
        setAll(obj) { for (const k of keys(obj || {})) customData[k] = String(obj[k]); },
        get(k) { return customData[k]; },
        getAll() { return Object.assign({}, customData); },
      },
    };
    function $getWorkflowStaticData(type) {
      if (type !== "global" && type !== "node") {
        throw hostError("The type '" + type + "' is not known: use 'global' or 'node'");
      }
      const key = type === "global" ? "global" : "node:" + nodeName;
      if (!staticData[key] || typeof staticData[key] !== "object") staticData[key] = {};
      return staticData[key];
    }
    const prev = ((data.connectionInputSource || {}).main || [])[0];
    const $prevNode = prev ? { name: prev.previousNode, outputIndex: prev.previousNodeOutput || 0,
                               runIndex: prev.previousNodeRun || 0 } : {};
    // require() as n8n's runner resolves it: a built-in module under
    // NODE_FUNCTION_ALLOW_BUILTIN, another under NODE_FUNCTION_ALLOW_EXTERNAL ("*": any),
    // the request as written ("node:crypto" is not "crypto"); a refusal is the user's error
    // at the user's line, as n8n words it
    const modules = data.modules || { builtin: [], external: [] };
    const allowed = (list, name) => list === "*" || (isArray(list) && list.includes(name));
    function require(request) {
      const name = String(request);
      const builtin = NODE_BUILTINS.has(name.replace(/^node:/, "")) || name.startsWith("node:");
      if (!allowed(builtin ? modules.builtin : modules.external, name)) {
        const e = new Error("Module '" + name + "' is disallowed");
        userErrors.add(e);  // n8n's runner makes it an ExecutionError: the user's line
        throw e;
      }
      return builtin ? builtinModule(name, "require('" + name + "')") : npmModule(name, NPM_ROOT);
    }
    function builtinModule(name, what) {
      const base = name.replace(/^node:/, "");
      if (base === "crypto") return h.load("crypto").crypto;
      if (base === "buffer") return { Buffer: h.load("bytes").Buffer };
      if (base === "url") {
        const url = h.load("url");
        return { URL: url.URL, URLSearchParams: url.URLSearchParams };
      }
      throw notAvailable(what, "the built-in modules of this runner are crypto, buffer and url");
    }
    // npm packages the operator installed (`sandbox packages install --runtime javascript`),
    // mounted read-only at NPM_ROOT: CommonJS as Node loads it (runtimes/javascript/npm.py
    // resolves), one cache per task; inside a package, require() reaches the package's own
    // dependencies and this runner's built-in modules (Node's loader does not ask n8n's lists)
    const npmCache = {};
    function npmModule(request, fromDir) {
      const file = h.npmResolve(request, fromDir);
      if (file === null || file === undefined) {
        const e = new Error("Cannot find module '" + request + "'"
                            + (fromDir === NPM_ROOT ? " (it is not installed in this runner's "
                               + "npm packages: `sandbox packages install --runtime javascript`)"
                               : " from '" + fromDir + "'"));
        hostErrors.add(e);
        throw e;
      }
      if (npmCache[file]) return npmCache[file].exports;
      const source = h.npmRead(file);
      if (source === null || source === undefined) throw hostError("Cannot read module '" + file + "'");
      const module = { exports: {}, id: file, filename: file, loaded: false, children: [] };
      npmCache[file] = module;
      if (/\.json$/.test(file)) {
        module.exports = h.nativeParse(source);
      } else {
        const dir = file.slice(0, file.lastIndexOf("/")) || "/";
        const inner = function require(r) {
          const nm = String(r);
          if (nm.startsWith("node:") || (NODE_BUILTINS.has(nm) && !nm.startsWith("."))) {
            return builtinModule(nm, "the Node module '" + nm + "' (required by " + file + ")");
          }
          return npmModule(nm, dir);
        };
        inner.resolve = (r) => h.npmResolve(String(r), dir);
        inner.cache = npmCache;
        const body = source.startsWith("#!") ? "//" + source : source;
        // with the real Object and Reflect, as Node loads it in n8n's own realm (vmWrapper)
        const fn = h.evaluate("(function (exports, require, module, __filename, __dirname, "
                              + "Object, Reflect) {" + body + "\n})");
        try {
          fn.call(module.exports, module.exports, inner, module, file, dir, h.Object, h.Reflect);
        } catch (e) {
          delete npmCache[file];
          throw e;
        }
      }
      module.loaded = true;
      return module.exports;
    }

    function executed(name, outputIndex, runIndex) {
      if (known.size && !known.has(name)) throw hostError("Referenced node doesn't exist");
      const runs = runData[name];
      if (!runs || !runs.length) throw hostError("Node '" + name + "' hasn't been executed");
      const run = runs[runIndex === undefined || runIndex === -1 ? runs.length - 1 : runIndex];
      if (!run) throw hostError("Run " + runIndex + " of node \"" + name + "\" not found");
      const main = (run.data && run.data.main) || [];
      return main[outputIndex || 0] || [];
    }
    // $binary as n8n's data proxy gives it (nodeDataGetter): each file's metadata without its
    // data, {} for an item without files, in both modes; undefined where there is no input
    // item, as when the code reads $binary alone (n8n then asks for no input: data_request)
    function binaryOf(it) {
      if (!it) return undefined;
      const out = {};
      for (const k of keys(it.binary || {})) {
        out[k] = {};
        for (const p in it.binary[k]) if (p !== "data") out[k][p] = it.binary[k][p];
      }
      return out;
    }

    // The names n8n's runner puts on its vm context for the item at `index`: globals of the
    // context there, so here too (bind), and the user's code may declare its own `items`.
    function context(index) {
      const current = input[index];
      const items = input.slice(data.start);  // the chunk, or all items
      const $input = {
        all: () => items,
        first: () => items[0],
        last: () => items[items.length - 1],
        get item() { return current; },  // "Run Once for All Items": the first item, as in n8n
        get params() { return data.node.parameters || {}; },
        get context() { throw notAvailable("$input.context"); },
      };
      const $ = (name) => nodeApi(name, index);
      const $node = new Proxy({}, { get(_, name) {
        if (typeof name !== "string") return undefined;
        const out = outputOf(name);
        if (out && index >= out.items.length && out.items.length) {
          throw hostError('"' + name + '" node has ' + out.items.length + " item(s) but you're "
                          + "trying to access item " + index);
        }
        const it = out ? out.items[index] : undefined;
        return { json: it ? it.json : {}, binary: it ? it.binary : undefined,
                 parameter: ((data.workflowNodes || {})[name] || {}).parameters || {},
                 runIndex: out ? (runData[name].length - 1) : -1 };
      } });
      const names = {
        $input, $json: current ? current.json : undefined, $binary: binaryOf(current),
        $itemIndex: each ? index : 0, $, $node, $workflow, $execution, $getWorkflowStaticData,
        $env, $prevNode, $runIndex: data.runIndex || 0,
        $mode: data.workflowMode, $parameter: data.node.parameters || {}, $vars: data.variables || {},
        require,
        helpers: HELPERS,
        $jmespath: (value, expression) => h.load("jmespath").search(value, expression),
        $evaluateExpression: missing("$evaluateExpression"), $fromAI: missing("$fromAI"),
        // legacy, still in n8n 2.x: the data proxy of another item, and a node's output items
        $item: (i) => context(i),
        $items: (name, outputIndex, runIndex) => (name === undefined ? input.filter((x) => x)
                                                 : executed(name, outputIndex, runIndex)),
        console,
      };
      if (each) names.item = current; else names.items = items;
      return names;
    }
    // n8n's vm context has the language's built-ins and the few Node globals its runner
    // passes (Buffer, timers, btoa/atob, TextEncoder/TextDecoder): code that reaches for
    // another web global fails there ("URL is not defined"), so it does here too
    for (const name of NOT_IN_N8N) delete globalThis[name];
    function bind(names) {
      for (const k of keys(names)) globalThis[k] = names[k];
    }
    // luxon, as n8n gives it: DateTime, Duration, Interval, and $now/$today as DateTimes in
    // n8n's time zone (GENERIC_TIMEZONE); made on first use, so a task that reads no date
    // pays nothing for them
    for (const [name, make] of [["DateTime", () => luxon().DateTime], ["Duration", () => luxon().Duration],
                                ["Interval", () => luxon().Interval],
                                ["$now", () => luxon().DateTime.now()],
                                ["$today", () => luxon().DateTime.now().set(
                                  { hour: 0, minute: 0, second: 0, millisecond: 0 })]]) {
      Object.defineProperty(globalThis, name, {
        configurable: true, enumerable: false,
        get() { const v = make(); Object.defineProperty(globalThis, name, { value: v, writable: true, configurable: true }); return v; },
        set(v) { Object.defineProperty(globalThis, name, { value: v, writable: true, configurable: true }); },
      });
    }
    function luxon() {
      const lx = zoned(h.load("luxon"));
      if (data.timezone && lx.Settings.defaultZone.name !== data.timezone) {
        lx.Settings.defaultZone = data.timezone;
      }
      return lx;
    }

    // What n8n's runner makes of an error (its ExecutionError: the message row of the stack,
    // the line of the user's frame) is worked out by the host, which has the user's code to
    // word QuickJS's messages as V8 does: here the raw parts.
    function errorOf(e) {
      if (e instanceof InternalError && e.message === "out of memory") {
        throw e;  // the engine's memory limit: the sandbox reports it
      }
      // the engine throws null when it cannot even allocate its out-of-memory error: the
      // host tells that from a `throw null` of the code (javascript_node.finish)
      if (e === null) return { kind: "null" };
      if (e instanceof Error && hostErrors.has(e)) return { kind: "host", message: String(e.message) };
      if (e instanceof Error) {
        const frames = [];
        for (const l of String(e.stack || "").split("\n")) {
          const m = /at (?:(\S+) \()?(?:<input>:(\d+):(\d+)|(native))/.exec(l);
          if (m) frames.push([m[1] || "", m[2] ? Number(m[2]) : 0, m[3] ? Number(m[3]) : 0]);
        }
        // an error of the library's modules that stand for Node's (Buffer, crypto, luxon,
        // ...) is an error of n8n's own realm there: passed on as it is, without a line
        const first = frames.find((f) => f[1] > 0);
        if (first && first[1] >= NODE_REALM_LINE && !userErrors.has(e)) {
          return { kind: "host", message: String(e.message) };
        }
        return { kind: "error", name: String(e.name), message: String(e.message), frames };
      }
      if (e !== null && typeof e === "object" && typeof e.message === "string") {
        return { kind: "errorlike", message: e.message,
                 stack: typeof e.stack === "string" ? e.stack : null };
      }
      // anything else n8n's runner words as JSON.stringify of it ('"text"', '404', 'null')
      let text = null;
      try { text = stringify(e); } catch (_) { text = null; }
      return { kind: "value", text: typeof text === "string" ? text : null };
    }

    // What n8n's runner sends of an item's result in "Run Once for Each Item" mode (its
    // extractJsonData): n8n itself validates and normalises what it gets (its Code node's
    // result-validation), so the result goes as the code returned it.
    function jsonOf(r) {
      if (r === null || (typeof r !== "object" && typeof r !== "function")) return r;
      if ("json" in r) return r.json;
      if ("binary" in r) return r.json ?? {};
      return r;
    }
    // n8n's runner sends its answer with JSON.stringify, BigInt written as text (n8n-workflow
    // gives BigInt a toJSON); a value JSON cannot carry (a cycle) fails the task with no text
    function send(result, failed) {
      try {
        return { result: stringify(result, (k, v) => (typeof v === "bigint" ? v.toString() : v)),
                 failed };
      } catch (e) {
        // the runner fails the task whatever "continue on fail" says: n8n gets no result
        return { error: { kind: "value", text: null }, unsent: true };
      }
    }

    // What n8n's vm wrapper (its runner's createVmExecutableCode) does before the user's code:
    // its context's Object and Reflect read no prototype (a fresh object each time), set none
    // (false) and define no property (a fresh object); `global` is globalThis, `module` holds
    // `exports`. Our library's modules and npm packages keep the real functions (globals.js's
    // load gives them its RealObject), as what n8n runs in its own realm does. Not taken
    // over: its freezing of the constructors (npm packages share them here, and some assign
    // Error.stackTraceLimit) and its Error.prepareStackTrace (the engine's hook: v8Stack).
    function vmWrapper() {
      const G = globalThis, O = G.Object, R = G.Reflect;
      G.global = G;
      G.module = { exports: {} };
      O.getPrototypeOf = () => ({});
      R.getPrototypeOf = () => ({});
      O.setPrototypeOf = () => false;
      R.setPrototypeOf = () => false;
      O.defineProperty = () => ({});
      O.defineProperties = () => ({});
    }

    async function main() {
      vmWrapper();
      const result = [], failed = [];
      if (each) {
        for (let index = data.start; index < data.start + data.count; index++) {
          try {
            bind(context(index));
            const r = await user();
            if (!r) continue;  // null skips the item, and so does any falsy value (as in n8n)
            const item = { json: jsonOf(r), pairedItem: { item: index } };
            if (r.binary) item.binary = r.binary;
            result.push(item);
          } catch (e) {
            const error = errorOf(e);
            if (!data.continueOnFail) return { error };
            failed.push([result.length, error]);
            result.push({ json: { error: null }, pairedItem: { item: index } });
          }
        }
        return send(result, failed);
      }
      try {
        bind(context(0));
        const r = await user();
        // undefined is no result (JSON drops it): n8n then says the code returns no items
        return send(r === null ? [] : r, failed);
      } catch (e) {
        const error = errorOf(e);
        if (!data.continueOnFail) return { error };
        return { result: stringify([{ json: { error: null } }]), failed: [[0, error]] };
      }
    }

    return main().then((answer) => {
      answer.logs = logs;
      answer.customData = customData;
      // a bucket made by $getWorkflowStaticData and left empty is no change (as in n8n)
      const before = JSON.parse(staticBefore);
      for (const k of keys(staticData)) {
        if (!(k in before) && staticData[k] && typeof staticData[k] === "object"
            && !keys(staticData[k]).length) delete staticData[k];
      }
      if (stringify(staticData) !== staticBefore) answer.staticData = staticData;
      return answer;
    });
  }
  return { __n8nRun };
})
