"""``sandbox n8n-runner``: a drop-in external task runner for n8n 2.x.

    N8N_RUNNERS_TASK_BROKER_URI=http://n8n:5679 N8N_RUNNERS_AUTH_TOKEN=secret sandbox n8n-runner

Every setting is n8n's environment variable or the flag of the same name; both, and each
flag's help, come from the settings' schema (``config.py``).
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any

from sandbox.config import Setting, amount
from sandbox.errors import ConfigError
from sandbox.n8n.config import SETTINGS, N8nRunnerConfig, unknown


def add_parser(sub: Any) -> None:
    rn = sub.add_parser("n8n-runner", help="serve n8n's Code nodes (external task runner mode)")
    for s in SETTINGS.values():
        shown = _shown(s)
        default = f"; default: {shown}" if shown else ""
        rn.add_argument(s.flag, dest=s.name, default=None, metavar=s.metavar,
                        help=f"{s.help}{default} [{s.env}]")


def _shown(s: Setting) -> str:
    if isinstance(s.default, bool):
        return str(s.default).lower()
    if isinstance(s.default, (int, float)):
        return amount(s.default, s.name)
    return ",".join(s.default) if isinstance(s.default, tuple) else str(s.default)


def run(args: argparse.Namespace) -> int:
    """Build the runner from env and flags and serve until SIGTERM/SIGINT or auto-shutdown.
    A bad setting is one line on stderr and exit code 2, like the other commands."""
    from sandbox.host.allocator import keep_large_blocks
    from sandbox.n8n.backend import PoolsBackend
    from sandbox.n8n.shell import Shell
    from sandbox.service import logs

    for note in unknown():
        print(f"sandbox n8n-runner: warning: {note}", file=sys.stderr)
    try:
        config = N8nRunnerConfig.load(flags={name: getattr(args, name) for name in SETTINGS})
    except ConfigError as exc:
        print(f"sandbox n8n-runner: {exc}", file=sys.stderr)
        return 2
    logs.configure(config.log_level, config.log_format)
    keep_large_blocks()
    try:
        shell = Shell(config, PoolsBackend(config.pool_config(), runtimes=config.task_types,
                                             isolation=config.isolation))
    except ConfigError as exc:  # the health check server's address is taken
        print(f"sandbox n8n-runner: {exc}", file=sys.stderr)
        return 1
    # the first SIGTERM/SIGINT shuts down gracefully (n8n's contract); a second one at once
    signal.signal(signal.SIGTERM, lambda *_: shell.request_shutdown())
    signal.signal(signal.SIGINT, lambda *_: shell.request_shutdown())
    return shell.serve()
