"""Run untrusted Python and JavaScript snippets in pre-forked nsjail sandboxes (Python also
in WebAssembly: the pyodide runtime).

The public surface is what ``__all__`` lists; everything else is internal.
"""

from runtimes.outcome import Status
from sandbox.config import Limits, PoolConfig, PyodideConfig
from sandbox.errors import ClosedError, ConfigError, JailError, SandboxError
from sandbox.host.local import Sandbox
from sandbox.result import ErrorInfo, Result

__all__ = [
    "AsyncClient",
    "Client",
    "ClosedError",
    "ConfigError",
    "ErrorInfo",
    "JailError",
    "Limits",
    "PoolConfig",
    "PyodideConfig",
    "Result",
    "Sandbox",
    "SandboxError",
    "Status",
]


def __getattr__(name: str) -> object:
    # the clients pull in ZeroMQ and the broker: loaded when asked for, not for Sandbox users
    if name in ("Client", "AsyncClient"):
        from sandbox import client

        return getattr(client, name)
    raise AttributeError(f"module 'sandbox' has no attribute {name!r}")
