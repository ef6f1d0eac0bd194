"""How long `sandbox serve` takes to stop on SIGTERM while its runner starts a jail (issue
25 item 9: 5.5 s for a daemon serving pyodide), and once it is idle.

    python -m benchmarks.serve_stop [--runtimes pyodide] [--after-s 3] [--runs 3]

Each run starts a daemon on tcp:// (insecure, loopback), sends SIGTERM ``--after-s`` seconds
after its runner said it starts its jails (``--after-s idle``: once the runner registered),
and times SIGTERM to exit; the median and each run are printed. The daemon's own log says
whether its runner stopped (``runner local-0 stopped``) or was killed.
"""

from __future__ import annotations

import argparse
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def one(runtimes: str, after: str) -> tuple[float, bool]:
    """Seconds from SIGTERM to exit, and whether the runner stopped by itself."""
    argv = [sys.executable, "-m", "sandbox", "serve", "--bind", f"tcp://127.0.0.1:{_free_port()}",
            "--insecure", "--http", "", "--runtimes", runtimes, "--slots", "1"]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    cue = "registered:" if after == "idle" else "starting: jails"
    end = time.monotonic() + 300
    while not any(cue in line for line in lines):
        if proc.poll() is not None or time.monotonic() > end:
            raise SystemExit(f"the daemon did not get there: {''.join(lines)}")
        time.sleep(0.02)
    if after != "idle":
        time.sleep(float(after))
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    took = time.monotonic() - start
    reader.join(timeout=10)
    return took, any("local-0 stopped" in line for line in lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runtimes", default="pyodide")
    ap.add_argument("--after-s", default="3", help='seconds after the jails start, or "idle"')
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    runs = [one(args.runtimes, args.after_s) for _ in range(args.runs)]
    times = [t for t, _ in runs]
    print(f"serve --runtimes {args.runtimes}, SIGTERM after {args.after_s}: median "
          f"{statistics.median(times):.3f} s to stop; runs "
          + ", ".join(f"{t:.3f} s ({'stopped' if ok else 'KILLED'})" for t, ok in runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
