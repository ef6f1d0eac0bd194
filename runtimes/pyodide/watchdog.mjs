// The wall-clock watchdog of a Pyodide worker: a thread of its own, since the main thread is
// busy running Python synchronously while a task runs.
//
// Shared words (Int32Array over a SharedArrayBuffer, see worker.mjs):
//   [0] Pyodide's interrupt buffer: 2 (SIGINT) makes Python raise KeyboardInterrupt
//   [1] the task sequence: odd while a task runs; -seq once this thread fired for it
//   [2] the running task's timeout in milliseconds
// The main thread starts a task by storing an odd sequence and notifying; it ends it with a
// compare-and-exchange from that sequence, so exactly one of the two sides wins the race at
// the deadline, and a fired interrupt always belongs to the task it was meant for.
import { workerData } from "node:worker_threads";

const SIGINT = 2;
const words = new Int32Array(workerData.words);

for (;;) {
  const seq = Atomics.load(words, 1);
  if (seq <= 0 || seq % 2 === 0) {
    Atomics.wait(words, 1, seq); // idle (or fired): wait for the next task
    continue;
  }
  const timeoutMs = Atomics.load(words, 2);
  if (Atomics.wait(words, 1, seq, timeoutMs) === "timed-out") {
    if (Atomics.compareExchange(words, 1, seq, -seq) === seq) {
      Atomics.store(words, 0, SIGINT);
    }
  }
}
