"""The transport floor: a bare pyzmq 3-hop echo, client -> ROUTER/ROUTER -> worker -> back.

``python -m benchmarks.echo broker|worker ENDPOINT_DIR`` runs one side as its own process,
as the daemon's broker and runner are; ``EchoFloor`` starts both and gives a client call.
No encoding beyond what the service also does (one msgpack map each way).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable

import msgpack
import zmq


def _broker(directory: str) -> None:
    ctx: zmq.Context = zmq.Context.instance()
    front = ctx.socket(zmq.ROUTER)
    front.bind(f"ipc://{directory}/front.sock")
    back = ctx.socket(zmq.ROUTER)
    back.bind(f"ipc://{directory}/back.sock")
    poller = zmq.Poller()
    poller.register(front, zmq.POLLIN)
    poller.register(back, zmq.POLLIN)
    worker = None
    while True:
        events = dict(poller.poll())
        if back in events:
            ident, body = back.recv_multipart()
            if body == b"ready":
                worker = ident
                continue
            msg = msgpack.unpackb(body)
            front.send_multipart([msg["client"], msgpack.packb({"id": msg["id"], "r": msg["r"]})])
        if front in events:
            client, body = front.recv_multipart()
            msg = msgpack.unpackb(body)
            if worker is not None:
                back.send_multipart([worker, msgpack.packb({"client": client, "id": msg["id"],
                                                            "r": msg["code"]})])


def _worker(directory: str) -> None:
    sock: zmq.Socket = zmq.Context.instance().socket(zmq.DEALER)
    sock.connect(f"ipc://{directory}/back.sock")
    sock.send(b"ready")
    while True:
        sock.send(sock.recv())  # the "task" comes back as its own result


class EchoFloor:
    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.procs = [
            subprocess.Popen([sys.executable, "-m", "benchmarks.echo", role, directory],
                             stdin=subprocess.DEVNULL)
            for role in ("broker", "worker")
        ]
        self.sock: zmq.Socket = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(f"ipc://{directory}/front.sock")
        self._n = 0
        end = time.monotonic() + 10
        while True:  # until a round trip works: both sides are up
            self.sock.send(msgpack.packb({"id": 0, "code": "return 6 * 7"}))
            if self.sock.poll(200):
                self.sock.recv()
                break
            if time.monotonic() > end:
                self.close()
                raise RuntimeError("the pyzmq echo floor did not start")

    def call(self) -> Callable[[], None]:
        def run() -> None:
            self._n += 1
            self.sock.send(msgpack.packb({"id": self._n, "code": "return 6 * 7"}))
            while msgpack.unpackb(self.sock.recv())["id"] != self._n:
                pass  # a late reply to a start-up probe

        return run

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def close(self) -> None:
        self.sock.close(linger=0)
        for proc in self.procs:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    role, directory = sys.argv[1], sys.argv[2]
    os.makedirs(directory, exist_ok=True)
    {"broker": _broker, "worker": _worker}[role](directory)
