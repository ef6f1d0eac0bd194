"""Streaming: how long a snippet's ``print`` takes to reach a client while the task still runs
(issue 23's goal: the first chunk at an HTTP client within 5 ms of its ``print``, p50).

    python -m benchmarks.streaming [--calls 200] [--warmup 20]

One `sandbox serve` with one runner and the HTTP API. The snippet reads the wall clock, prints
it, and sleeps a little (so the task is still running when its output arrives); the client
reads the clock when the first chunk arrives: the difference is the latency of the whole path
(child -> runner -> broker -> the API's client -> uvicorn -> the HTTP client), on one machine
and one clock (CLOCK_REALTIME is not namespaced: the jail reads the host's). The same task
through the daemon's ZeroMQ client (``on_output``), alternating call by call, is beside it:
the part of the latency that is HTTP's own.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable

import httpx

from benchmarks.http_api import ApiDaemon
from benchmarks.stats import summarize
from sandbox.client import Client
from sandbox.result import OutputChunk

CODE = "import time\nprint(repr(time.time()))\ntime.sleep(0.02)\nreturn 1"


def http_first_chunk(http: httpx.Client, url: str) -> Callable[[], float]:
    """One streaming task over HTTP: ms from its print to its first event here."""
    body = json.dumps({"runtime": "python", "code": CODE, "stream": True}).encode()
    headers = {"content-type": "application/json"}

    def call() -> float:
        latency = None
        with http.stream("POST", f"{url}/v1/tasks", content=body, headers=headers) as reply:
            if reply.status_code != 200:
                raise RuntimeError(f"http: {reply.status_code} {reply.read()[:200]!r}")
            event = ""
            for line in reply.iter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and event == "stdout" and latency is None:
                    arrived = time.time()
                    printed = float(json.loads(line.removeprefix("data: "))["text"])
                    latency = (arrived - printed) * 1000.0
        if latency is None:
            raise RuntimeError("http: no output event")
        return latency
    return call


def zmq_first_chunk(client: Client) -> Callable[[], float]:
    def call() -> float:
        seen: list[float] = []

        def first(chunk: OutputChunk) -> None:
            if not seen:
                seen.append((time.time() - float(chunk.text)) * 1000.0)

        r = client.run("python", CODE, on_output=first)
        if not (r.ok and seen):
            raise RuntimeError(f"zeromq: {r.status.value} {r.message}")
        return seen[0]
    return call


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.streaming")
    parser.add_argument("--calls", type=int, default=200, help="timed calls per side")
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sbx-bench-", dir="/tmp") as directory:
        daemon = ApiDaemon(directory, 2)
        try:
            with Client(daemon.endpoint, queue_timeout_s=60) as client, \
                    httpx.Client(timeout=60) as http:
                sides = {"http_sse": http_first_chunk(http, daemon.url),
                         "zeromq_callback": zmq_first_chunk(client)}
                for _ in range(args.warmup):
                    for call in sides.values():
                        call()
                samples: dict[str, list[float]] = {name: [] for name in sides}
                for _ in range(args.calls):
                    for name, call in sides.items():
                        samples[name].append(call())
        finally:
            daemon.close()
    report: dict[str, object] = {
        f"print_to_first_chunk_{name}": summarize(s) for name, s in samples.items()}
    p50 = summarize(samples["http_sse"])["p50_ms"]
    report["http_p50_within_5_ms"] = p50 <= 5.0
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
