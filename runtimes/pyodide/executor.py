"""The pyodide runtime as the zygote sees it: nothing to preload, a worker to exec per child.

The zygote imports ``runtimes.<runtime>.executor`` for every runtime. For ``pyodide`` there
is no interpreter in the zygote to warm up (Python runs in WebAssembly, in the Node.js
worker); instead each spawned child becomes a worker through ``child_main``, which the
zygote calls in place of ``runtimes.child.main``. ``configure`` receives the ``init``
message, whose ``worker`` field says how (``runtimes.protocol.WorkerSpec``). Tasks never
run here: the worker reads them from its channel itself (``worker.mjs``, ``guest.py``).
"""

from __future__ import annotations

import socket
from typing import Any

from runtimes import protocol
from runtimes.pyodide import launch

_spec: protocol.WorkerSpec | None = None


def configure(init: protocol.Init) -> None:
    global _spec
    _spec = init.worker


def preload(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Nothing to import in the zygote: the worker imports the operator's preloads itself."""
    return {name: "preload applies to the python runtime" for name in extra}


def rehearse() -> None:
    """The worker rehearses inside Pyodide (``guest.boot``) before it says ready."""


def prepare_next() -> None:
    """The worker puts the interpreter's state back itself after each task."""


def child_main(channel: socket.socket, setup: Any, output_fd: int = -1) -> None:
    """The zygote's child, as a worker (the runtime has no shared output file: -1)."""
    launch.main(channel, setup, _spec)
