"""Run untrusted Python and JavaScript snippets in pre-forked nsjail sandboxes (Python also
in WebAssembly: the pyodide runtime).

The public surface is what ``__all__`` lists; everything else is internal.
"""

import importlib.util as _util
import os as _os


def _check_parts() -> None:
    """The wheel installs this package's parts (``broker``, ``runtimes``, ``seccomp``) as
    top-level packages beside it: the jail mounts ``runtimes`` by that name. A module of the
    same name found first (a host app's own ``broker``, libseccomp's ``seccomp`` binding) would
    be imported in their place; say so now, by name, instead of failing somewhere later."""
    home = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
    for name in ("runtimes", "broker", "seccomp"):
        spec = _util.find_spec(name)
        origin = spec.origin if spec is not None else None
        where = _os.path.dirname(_os.path.dirname(_os.path.abspath(origin))) if origin else None
        if where != home:
            raise ImportError(
                f"snippet-sandbox needs its own top-level package {name!r} (installed in "
                f"{home}), but {origin or 'nothing'} is found first on sys.path: rename or "
                f"move that module, or install snippet-sandbox in a virtualenv of its own",
                name=name)


_check_parts()

from runtimes.outcome import Status  # noqa: E402
from sandbox.config import Limits, PoolConfig, PyodideConfig  # noqa: E402
from sandbox.errors import (  # noqa: E402
    ClosedError, ConfigError, JailError, SandboxError, SessionError, TaskFailed)
from sandbox.host.local import Sandbox, Session  # noqa: E402
from sandbox.result import ErrorInfo, Result  # noqa: E402

__all__ = [
    "AsyncClient",
    "Client",
    "ClosedError",
    "ConfigError",
    "CurveClient",
    "ErrorInfo",
    "JailError",
    "Limits",
    "PoolConfig",
    "PyodideConfig",
    "Result",
    "Sandbox",
    "SandboxError",
    "Session",
    "SessionError",
    "Status",
    "TaskFailed",
]


def __getattr__(name: str) -> object:
    # the clients pull in ZeroMQ and the broker: loaded when asked for, not for Sandbox users
    if name in ("Client", "AsyncClient", "CurveClient"):
        from sandbox import client

        return getattr(client, name)
    raise AttributeError(f"module 'sandbox' has no attribute {name!r}")
