"""``python -m benchmarks.flood``: a broker's resident memory under a flood of refused frames.

A broker (its own process, as ``sandbox serve`` runs one) is measured idle, then while one
client sends it frames under the socket's cap that decoding refuses (60 MB each by default:
a map that breaks off, a submit whose code is over the string cap, one whose data is over
its cap), each answered before the next is sent, and again after the flood. The goal: it
stays within 2x its idle RSS, because a refused frame is freed once it is answered.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time

import msgpack
import zmq

from broker import protocol as p

_BROKER = """
import sys, threading
from broker.core import BrokerConfig
from broker.server import BrokerServer
server = BrokerServer([sys.argv[1]], BrokerConfig(), runner_endpoints=[sys.argv[2]])
print("up", flush=True)
server.serve(threading.Event())
"""


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def refused_frames(size: int) -> list[bytes]:
    """Frames of about ``size`` bytes that the broker refuses, each for another reason."""
    return [b"\x81\xa1v\x01" + b"\xc1" * size,
            msgpack.packb({"v": 1, "t": "submit", "id": "big", "runtime": "python",
                           "code": "x" * size, "data": b""}),
            msgpack.packb({"v": 1, "t": "submit", "id": "big", "runtime": "python",
                           "code": "", "data": b"\0" * size})]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.flood",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=16, help="refused frames to send")
    parser.add_argument("--mb", type=int, default=60, help="size of each, in MB")
    parser.add_argument("--settle-s", type=float, default=5.0,
                        help="how long after the flood the last measure is taken")
    args = parser.parse_args(argv)
    size = args.mb * 1024 * 1024
    if size > p.MAX_FRAME_BYTES:
        parser.error(f"a frame over {p.MAX_FRAME_BYTES} bytes is cut by the socket, unread")
    with tempfile.TemporaryDirectory() as tmp:
        endpoint = f"ipc://{tmp}/broker.sock"
        proc = subprocess.Popen([sys.executable, "-c", _BROKER, endpoint,
                                 f"ipc://{tmp}/runners.sock"], stdout=subprocess.PIPE, text=True)
        sock: zmq.Socket = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "up"
            sock.connect(endpoint)
            sock.send(p.encode(p.Ping()))
            sock.recv()
            idle = rss_mb(proc.pid)
            frames, peak = refused_frames(size), idle
            for i in range(args.frames):
                sock.send(frames[i % len(frames)])
                answer = p.decode(sock.recv())
                assert isinstance(answer, p.Rejected), answer
                peak = max(peak, rss_mb(proc.pid))
            time.sleep(args.settle_s)
            after = rss_mb(proc.pid)
        finally:
            sock.close()
            proc.terminate()
            proc.wait()
    print(f"broker RSS idle {idle:.0f} MB; after each of {args.frames} refused frames of "
          f"{args.mb} MB at most {peak:.0f} MB ({peak / idle:.2f}x idle); {args.settle_s:g} s "
          f"later {after:.0f} MB ({after / idle:.2f}x idle)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
