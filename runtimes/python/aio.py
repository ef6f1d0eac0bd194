"""asyncio in a child: an event loop without a self-pipe.

asyncio's selector loop makes a socketpair when it is created, to be woken from other
threads and by signals. A child may create no socket (its seccomp filter answers EPERM) and
no thread, so ``asyncio.run`` failed there; this loop has no self-pipe, which nothing in a
single-threaded child needs (``call_soon_threadsafe`` from the same thread still works: the
loop looks at its ready queue before it waits). Installed as the default policy by the
zygote (``executor.preload``), so every child inherits it.
"""

from __future__ import annotations

import asyncio


class PipelessLoop(asyncio.SelectorEventLoop):
    def _make_self_pipe(self) -> None:
        self._ssock = self._csock = None

    def _close_self_pipe(self) -> None:
        pass

    def _write_to_self(self) -> None:
        pass


class PipelessPolicy(asyncio.DefaultEventLoopPolicy):
    _loop_factory = PipelessLoop


def install() -> None:
    asyncio.set_event_loop_policy(PipelessPolicy())
