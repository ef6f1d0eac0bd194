"""A trivial task through the HTTP API beside the same task through the daemon's ZeroMQ
client, in the same run against the same `sandbox serve` (issue 23's goal: the HTTP p50 at
most 1.5x the ZeroMQ p50), and the throughput of both at 16 clients.

    python -m benchmarks.http_api [--calls 300] [--clients 16] [--seconds 3]

The calls alternate (one ZeroMQ, one HTTP, ...), so that drift on this shared machine falls
on both alike; each side keeps its connection (the ZeroMQ client's socket, an HTTP
keep-alive connection), as a host would.
"""

from __future__ import annotations

import argparse
import json
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable

import httpx

from benchmarks.harness import _sweep, timed
from benchmarks.stats import summarize
from sandbox.client import Client

CODE = "return 6 * 7"
START_S = 120.0


class ApiDaemon:
    """`sandbox serve` with one runner and the HTTP API on a free loopback port."""

    def __init__(self, directory: str, slots: int) -> None:
        self.endpoint = f"ipc://{directory}/sandbox.sock"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sandbox", "serve", "--bind", self.endpoint, "--http", "",
             "--runners", "1", "--slots", str(slots), "--runtimes", "python",
             "--api-bind", "127.0.0.1:0"],
            stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        lines: queue.Queue[str] = queue.Queue()

        def read() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                lines.put(line)
            lines.put("")

        threading.Thread(target=read, daemon=True).start()
        end = time.monotonic() + START_S
        try:
            while True:
                line = lines.get(timeout=max(0.0, end - time.monotonic()))
                if not line:
                    raise RuntimeError("sandbox serve ended before its API served")
                if ", api http://" in line:
                    self.url = line.rpartition(", api ")[2].strip()
                    break
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def zmq_call(client: Client) -> Callable[[], None]:
    def call() -> None:
        r = client.run("python", CODE)
        if not (r.ok and r.value == 42):
            raise RuntimeError(f"zeromq: {r.status.value} {r.message}")
    return call


def http_call(http: httpx.Client, url: str) -> Callable[[], None]:
    body = json.dumps({"runtime": "python", "code": CODE}).encode()
    headers = {"content-type": "application/json"}

    def call() -> None:
        reply = http.post(f"{url}/v1/tasks", content=body, headers=headers)
        if reply.status_code != 200 or reply.json()["result"] != 42:
            raise RuntimeError(f"http: {reply.status_code} {reply.text[:200]}")
    return call


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.http_api")
    parser.add_argument("--calls", type=int, default=300, help="timed calls per side")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--clients", type=int, default=16, help="for the throughput sweep")
    parser.add_argument("--seconds", type=float, default=3.0, help="each sweep's length (0: none)")
    parser.add_argument("--slots", type=int, default=4)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sbx-bench-", dir="/tmp") as directory:
        daemon = ApiDaemon(directory, args.slots)
        try:
            with Client(daemon.endpoint, queue_timeout_s=60) as client, \
                    httpx.Client(timeout=60) as http:
                sides = {"zeromq": zmq_call(client), "http": http_call(http, daemon.url)}
                for _ in range(args.warmup):  # the pool warm, the connections open
                    for call in sides.values():
                        call()
                samples: dict[str, list[float]] = {name: [] for name in sides}
                for _ in range(args.calls):
                    for name, call in sides.items():
                        samples[name].append(timed(call))
                report: dict[str, object] = {name: summarize(s) for name, s in samples.items()}
                zmq_p50 = summarize(samples["zeromq"])["p50_ms"]
                http_p50 = summarize(samples["http"])["p50_ms"]
                report["http_over_zeromq_p50"] = round(http_p50 / zmq_p50, 3)
                if args.seconds > 0:
                    local = threading.local()

                    def http_threaded() -> None:
                        if not hasattr(local, "http"):
                            local.http = httpx.Client(timeout=60)
                        http_call(local.http, daemon.url)()

                    for name, call in (("zeromq", sides["zeromq"]), ("http", http_threaded)):
                        done, wall = _sweep(call, args.clients, args.seconds)
                        report[f"{name}_per_s_at_{args.clients}"] = round(done / wall, 1)
        finally:
            daemon.close()
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
