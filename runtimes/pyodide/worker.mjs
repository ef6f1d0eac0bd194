// The Pyodide worker: one Node.js process, jailed, that loads Pyodide once and then runs
// tasks one at a time from its channel (a stream socket it inherited as fd `channel`).
//
// Steps (the point after which nothing of the host is reachable from Python is marked):
//   1. cap the WebAssembly memory Pyodide will create (engine-enforced maximum, plus a
//      per-task growth budget checked on every grow)
//   2. load Pyodide from the read-only distribution, `js` being an empty object
//   3. copy our Python (runtimes/, msgpack's pure-Python part) into Pyodide's in-memory FS,
//      import runtimes.pyodide.guest, rehearse, snapshot the interpreter's state
//   4. start the watchdog thread (wall-clock timeout through Pyodide's interrupt buffer)
//   5. lock down: strip the Pyodide API and the host globals (process, require, Buffer,
//      fetch, timers, WebAssembly, ...), make the file system read-only but a fresh /tmp
//      --- from here on Python can reach no host capability through js / pyodide.ffi ---
//   6. say ready (the worker_ready frame), then: read a task frame, run it, put the state
//      back, write the result frame. Whether another task comes is the host's call (its
//      pool retires a worker after any outcome but ok/error, or when the envelope says
//      `retire`): it closes the channel, and the worker exits.
// Node runs with --disallow-code-generation-from-strings, so a JS function reached from
// Python (`constructor.constructor`) cannot turn a string into code (CVE-2025-68668's path).
import fs from "node:fs";
import CommonJS from "node:module";
import { Worker } from "node:worker_threads";

const config = JSON.parse(process.argv[2]);
const channel = config.channel;
const readSync = fs.readSync;
const writeSync = fs.writeSync;
const exit = process.exit.bind(process);
// Diagnostics on stderr, off unless asked (in the jail stderr is /dev/null anyway).
const debug = config.debug ? (text) => writeSync(2, `pyodide worker: ${text}\n`) : () => {};
const EXIT_FATAL = 71; // Pyodide itself failed: the host reports the task as crashed
const EXIT_BAD_FRAME = 65;
const MAX_TASK_BYTES = 64 * 1024 * 1024;
const PAGE = 65536;

// -- 1. the WebAssembly memory cap ------------------------------------------------------------
const capBytes = config.wasm_max_mb * 1024 * 1024;
const NativeMemory = WebAssembly.Memory;
const nativeGrow = NativeMemory.prototype.grow;
let heap = null;
let growLimit = capBytes; // bytes the heap may reach; lowered to a task's budget while it runs
// whether a grow was refused during the running task: the allocation that asked for it failed,
// and CPython compiled to WebAssembly does not always turn that into a MemoryError (some of its
// C paths then return an error without an exception: a SystemError, or one underneath the
// executor). The task ran out of its memory either way (guest.finish, guest.exhausted).
let refused = false;

function guardedGrow(delta) {
  if (heap.buffer.byteLength + delta * PAGE > growLimit) {
    refused = true;
    throw new RangeError("WebAssembly memory budget of the task exhausted");
  }
  return nativeGrow.call(heap, delta);
}

function CappedMemory(descriptor) {
  if (descriptor && !descriptor.shared) {
    const pages = Math.floor(capBytes / PAGE);
    const memory = new NativeMemory({ ...descriptor, maximum: Math.min(descriptor.maximum ?? pages, pages) });
    if (heap === null) {
      heap = memory;
      Object.defineProperty(memory, "grow", { value: guardedGrow });
    }
    return memory;
  }
  return new NativeMemory(descriptor);
}
CappedMemory.prototype = NativeMemory.prototype;
WebAssembly.Memory = CappedMemory;

// -- 2. load Pyodide --------------------------------------------------------------------------
const deny = () => {
  throw new Error("not available in the sandbox");
};
const jsModule = Object.create(null); // what `import js` gives Python
jsModule.setTimeout = deny; // pyodide.webloop imports these two at start
jsModule.clearTimeout = deny;

// Emscripten's NODEFS reads open(2) flags through process.binding("constants"), which
// Node's permission model refuses: the same numbers come from fs.constants.
const nativeBinding = process.binding;
process.binding = (name) => {
  if (name === "constants") return { fs: fs.constants };
  return nativeBinding.call(process, name);
};
const { loadPyodide } = await import(config.dist + "/pyodide.mjs");
const pyodide = await loadPyodide({
  indexURL: config.dist + "/",
  lockFileURL: config.lock_file || config.dist + "/pyodide-lock.json",
  packageCacheDir: config.packages_dir || config.dist,
  jsglobals: jsModule,
  env: { HOME: "/tmp" },
  stdin: () => null,
  stdout: () => {},
  stderr: () => {},
});
if (config.load_packages && config.load_packages.length) {
  await pyodide.loadPackage(config.load_packages, { messageCallback: debug, errorCallback: debug });
}
WebAssembly.Memory = NativeMemory;
process.binding = nativeBinding;
const FS = pyodide.FS;
const MEMFS = FS.filesystems.MEMFS;

// -- 3. our Python, inside --------------------------------------------------------------------
function copyTree(hostDir, guestDir) {
  FS.mkdirTree(guestDir);
  for (const entry of fs.readdirSync(hostDir, { withFileTypes: true })) {
    const host = hostDir + "/" + entry.name;
    if (entry.isDirectory()) {
      if (entry.name !== "__pycache__") copyTree(host, guestDir + "/" + entry.name);
    } else if (entry.name.endsWith(".py")) {
      FS.writeFile(guestDir + "/" + entry.name, fs.readFileSync(host));
    }
  }
}
copyTree(config.runtimes, "/sandbox/runtimes");
copyTree(config.msgpack, "/sandbox/lib/msgpack");
// The Pyodide API must be out of Python's reach before the guest snapshots sys.modules.
pyodide.unregisterJsModule("pyodide_js");
// Pyodide puts its home directory (here /tmp, writable) on sys.path: take it off.
pyodide.runPython(
  "import sys\nsys.modules.pop('pyodide_js', None)\n" +
    "sys.path[:] = ['/sandbox', '/sandbox/lib'] + [p for p in sys.path if p not in ('', '/tmp', '/home/pyodide')]",
);
const guest = pyodide.pyimport("runtimes.pyodide.guest");
const prepare = guest.prepare;
const execute = guest.execute;
const finish = guest.finish;
const timedOut = guest.timed_out;
const exhausted = guest.exhausted;
const readyProxy = guest.boot(config.preload || []);
const ready = readyProxy.toJs();
readyProxy.destroy();

// -- 4. the watchdog ----------------------------------------------------------------------------
const words = new Int32Array(new SharedArrayBuffer(4 * 4));
pyodide.setInterruptBuffer(words); // Python polls words[0]
const watchdog = new Worker(new URL("./watchdog.mjs", import.meta.url), {
  workerData: { words: words.buffer },
  resourceLimits: { maxOldGenerationSizeMb: 8, maxYoungGenerationSizeMb: 2 },
  stdout: false,
  stderr: false,
});
watchdog.unref();

// -- 5. lock down -------------------------------------------------------------------------------
const nativeMount = FS.mount.bind(FS);
const nativeUnmount = FS.unmount.bind(FS);
function readOnly(path) {
  const node = FS.lookupPath(path, { follow: false }).node;
  if (FS.isLink(node.mode)) return;
  if (FS.isDir(node.mode)) {
    for (const name of FS.readdir(path)) {
      if (name === "." || name === "..") continue;
      const child = path === "/" ? "/" + name : path + "/" + name;
      if (child === "/dev" || child === "/proc" || child === "/tmp") continue;
      readOnly(child);
    }
    FS.chmod(path, 0o555);
  } else if (FS.isFile(node.mode)) {
    FS.chmod(path, 0o444);
  }
}
readOnly("/");
const eperm = () => {
  throw new FS.ErrnoError(63); // EPERM: modes and times stay as they are
};
for (const name of ["chmod", "fchmod", "lchmod", "chown", "fchown", "lchown", "utime"]) {
  FS[name] = eperm;
}
for (const name of Object.keys(FS.filesystems)) {
  if (name !== "MEMFS") delete FS.filesystems[name]; // NODEFS and friends reach the host
}
const bootStreams = new Set(FS.streams.map((stream, fd) => (stream ? fd : -1)).filter((fd) => fd >= 0));

function freshTmp() {
  try {
    nativeUnmount("/tmp");
  } catch {
    // not mounted yet
  }
  nativeMount(MEMFS, {}, "/tmp");
}
freshTmp();

function closeStrayStreams() {
  FS.streams.forEach((stream, fd) => {
    if (stream && !bootStreams.has(fd)) {
      try {
        FS.close(stream);
      } catch {
        // already gone
      }
    }
  });
}

// pyodide.asm.js is a CommonJS module: its own `require` (not the global) stays in reach of
// functions Python can call (os.system -> child_process, socket -> ws, ...). Every require
// goes through the loader's _load: from now on it refuses.
CommonJS._load = function refuse(request) {
  throw new Error(`require(${JSON.stringify(String(request))}) is not available in the sandbox`);
};
delete jsModule.setTimeout; // webloop holds the stubs; `js` itself is left empty
delete jsModule.clearTimeout;
for (const key of Reflect.ownKeys(pyodide)) {
  try {
    delete pyodide[key];
  } catch {
    // non-configurable: nothing to take
  }
}
// ECMAScript's own globals, and the two text codecs Pyodide calls while converting strings.
const KEEP = new Set([
  "Object", "Function", "Array", "Number", "parseFloat", "parseInt", "Infinity", "NaN",
  "undefined", "Boolean", "String", "Symbol", "Date", "Promise", "RegExp", "Error",
  "AggregateError", "EvalError", "RangeError", "ReferenceError", "SyntaxError", "TypeError",
  "URIError", "globalThis", "JSON", "Math", "Intl", "ArrayBuffer", "Uint8Array", "Int8Array",
  "Uint16Array", "Int16Array", "Uint32Array", "Int32Array", "Float32Array", "Float64Array",
  "Uint8ClampedArray", "BigUint64Array", "BigInt64Array", "DataView", "Map", "BigInt", "Set",
  "WeakMap", "WeakSet", "Proxy", "Reflect", "FinalizationRegistry", "WeakRef",
  "decodeURI", "decodeURIComponent", "encodeURI", "encodeURIComponent", "escape", "unescape",
  "eval", "isFinite", "isNaN", "SharedArrayBuffer", "Atomics", "TextDecoder", "TextEncoder",
]);
// Python's clocks read performance.now (monotonic) and Date.now, os.urandom reads
// crypto.getRandomValues: only those two functions survive, bound, on frozen objects.
const now = performance.now.bind(performance);
const clock = Object.freeze(Object.assign(Object.create(null), { now }));
const getRandomValues = crypto.getRandomValues.bind(crypto);
const entropy = Object.freeze(Object.assign(Object.create(null), { getRandomValues }));
const silent = Object.freeze(Object.assign(Object.create(null), {
  log() {}, info() {}, warn() {}, error() {}, debug() {}, trace() {},
}));
for (const key of Reflect.ownKeys(globalThis)) {
  if (typeof key === "string" && KEEP.has(key)) continue;
  try {
    delete globalThis[key];
  } catch {
    // non-configurable
  }
}
globalThis.console = silent; // Pyodide reports fatal errors through console.error
globalThis.performance = clock;
globalThis.crypto = entropy;

// -- 6. serve -----------------------------------------------------------------------------------
function readExact(n) {
  const buf = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    let k;
    try {
      k = readSync(channel, buf, got, n - got, null);
    } catch (e) {
      if (e.code === "EINTR" || e.code === "EAGAIN") continue;
      throw e;
    }
    if (k === 0) return null;
    got += k;
  }
  return buf;
}

function writeFrame(body) {
  const frame = new Uint8Array(4 + body.length);
  new DataView(frame.buffer).setUint32(0, body.length);
  frame.set(body, 4);
  let sent = 0;
  while (sent < frame.length) {
    try {
      sent += writeSync(channel, frame, sent, frame.length - sent);
    } catch (e) {
      if (e.code === "EINTR" || e.code === "EAGAIN") continue;
      throw e;
    }
  }
}

function fromPython(value) {
  // the guest hands back JS values (to_js); a PyProxy would be a guest bug, converted anyway
  if (value && typeof value.toJs === "function") {
    const converted = value.toJs();
    value.destroy();
    return converted;
  }
  return value;
}

writeFrame(ready);
let seq = 1;
for (;;) {
  const header = readExact(4);
  if (header === null) exit(0); // the host closed the channel: retired
  const size = new DataView(header.buffer).getUint32(0);
  if (size > MAX_TASK_BYTES) exit(EXIT_BAD_FRAME);
  const body = readExact(size);
  if (body === null) exit(0);
  let envelope;
  let fired = false;
  try {
    const plan = fromPython(prepare(body));
    const timeoutMs = plan[0];
    growLimit = Math.min(heap.buffer.byteLength + plan[1], capBytes);
    refused = false;
    seq += 2;
    Atomics.store(words, 0, 0);
    Atomics.store(words, 2, Math.max(1, timeoutMs));
    Atomics.store(words, 1, seq);
    Atomics.notify(words, 1);
    let failure = null;
    try {
      execute();
      growLimit = capBytes;
      // the state put back: still on the task's clock, no longer on its memory
      envelope = fromPython(finish(refused));
    } catch (e) {
      failure = e;
    }
    fired = Atomics.compareExchange(words, 1, seq, seq + 1) !== seq;
    Atomics.notify(words, 1);
    growLimit = capBytes;
    if (fired) {
      // Python may still be unwinding the interrupt: clear it before asking for the envelope
      Atomics.store(words, 0, 0);
      envelope = fromPython(timedOut(timeoutMs));
    } else if (failure !== null && refused) {
      // the interpreter failed underneath the executor after its memory ran out: the task's
      // memory_limit, and this worker retires (its state was not put back)
      envelope = fromPython(exhausted());
    } else if (failure !== null) {
      throw failure;
    }
  } catch (e) {
    debug(String(e && e.stack ? e.stack : e));
    exit(EXIT_FATAL); // Pyodide failed underneath the executor (a fatal error, a bad frame)
  }
  closeStrayStreams();
  freshTmp();
  writeFrame(envelope);
}
