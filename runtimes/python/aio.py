"""asyncio in a child: an event loop without a self-pipe.

asyncio's selector loop makes a socketpair when it is created, to be woken from other
threads and by signals. A child may create no socket (its seccomp filter answers EPERM) and
no thread, so ``asyncio.run`` failed there; this loop has no self-pipe, which nothing in a
single-threaded child needs (``call_soon_threadsafe`` from the same thread still works: the
loop looks at its ready queue before it waits).

The zygote does not import asyncio: a jail whose allow-list leaves asyncio out must not
carry it (``sandbox/jail/stdlib_view.py`` mounts what the zygote imports). ``install``
puts a finder first on ``sys.meta_path`` that lets asyncio load as it would and then makes
this loop its default, whoever imports it (the snippet, or an allowed package).
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # importlib.abc imports tempfile, which a trimmed jail need not carry
    from importlib.machinery import ModuleSpec


def _policy() -> Any:
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

    return PipelessPolicy()


class _Loader:
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        module: ModuleType | None = self._inner.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        self._inner.exec_module(module)
        module.set_event_loop_policy(_policy())


class _AsyncioFinder:
    def find_spec(self, fullname: str, path: Any, target: Any = None
                  ) -> ModuleSpec | None:
        if fullname != "asyncio":
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec: ModuleSpec | None = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _Loader(spec.loader)  # type: ignore[assignment]  # a loader by its methods
                return spec
        return None


def install() -> None:
    """In the zygote: asyncio, when something imports it, runs on the pipeless loop."""
    if "asyncio" in sys.modules:
        sys.modules["asyncio"].set_event_loop_policy(_policy())
    elif not any(isinstance(f, _AsyncioFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _AsyncioFinder())
