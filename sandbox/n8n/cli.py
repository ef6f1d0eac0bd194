"""``sandbox n8n-runner``: a drop-in external task runner for n8n 2.x.

    N8N_RUNNERS_TASK_BROKER_URI=http://n8n:5679 N8N_RUNNERS_AUTH_TOKEN=secret sandbox n8n-runner

Every setting is n8n's environment variable or the flag of the same name (``config.py``).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import Any

from sandbox.errors import ConfigError
from sandbox.n8n.config import N8nRunnerConfig

_FLAGS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("--task-broker-uri", "task_broker_uri", {"metavar": "URI", "help": "n8n's task broker, http://HOST:PORT"}),
    ("--auth-token", "auth_token", {"metavar": "TOKEN", "help": "n8n's N8N_RUNNERS_AUTH_TOKEN"}),
    ("--grant-token", "grant_token", {"metavar": "GRANT", "help": "a single-use grant from n8n's launcher"}),
    ("--max-concurrency", "max_concurrency", {"metavar": "N", "help": "tasks at once (default 5)"}),
    ("--task-timeout", "task_timeout_s", {"metavar": "SECONDS", "help": "per task (default 300)"}),
    ("--auto-shutdown-timeout", "auto_shutdown_timeout_s",
     {"metavar": "SECONDS", "help": "exit after this long without a task (0: never)"}),
    ("--health-check-server-enabled", "health_check_server_enabled",
     {"metavar": "BOOL", "help": "serve GET /healthz"}),
    ("--health-check-server-host", "health_check_server_host", {"metavar": "HOST"}),
    ("--health-check-server-port", "health_check_server_port", {"metavar": "PORT"}),
    ("--stdlib-allow", "stdlib_allow", {"metavar": "MODULES", "help": 'python: standard-library '
                                        'modules, comma-separated, "*" for all (default: a safe set)'}),
    ("--external-allow", "external_allow", {"metavar": "MODULES", "help": "python: third-party modules"}),
    ("--max-payload", "max_payload_bytes", {"metavar": "BYTES", "help": "largest WebSocket message"}),
    ("--memory", "memory_mb", {"metavar": "MB", "help": "memory per task (default 256)"}),
    ("--types", "task_types", {"metavar": "TYPES", "help": "task types to serve: python,javascript"}),
    ("--packages-dir", "packages_dir", {"metavar": "DIR", "help": "python packages environment "
                                        "(`sandbox packages install`)"}),
    ("--preload", "preload", {"metavar": "MODULES", "help": "modules the python zygote imports"}),
    ("--allow-builtin", "allow_builtin", {"metavar": "MODULES", "help": "javascript: built-in "
                                          'modules require() may load, "*" for all (n8n\'s '
                                          "NODE_FUNCTION_ALLOW_BUILTIN; this runner has crypto, "
                                          "buffer, url)"}),
    ("--allow-external", "allow_external", {"metavar": "MODULES", "help": "javascript: npm "
                                            "modules require() may load (NODE_FUNCTION_ALLOW_EXTERNAL)"}),
    ("--timezone", "timezone", {"metavar": "ZONE", "help": "n8n's GENERIC_TIMEZONE: $now, $today "
                                "and luxon's default zone (default America/New_York, as n8n)"}),
    ("--tz", "tz", {"metavar": "ZONE", "help": "javascript: Date's local time zone, as TZ is "
                    "Node's (default: UTC)"}),
    ("--name", "name", {"metavar": "NAME", "help": "the runner's name in n8n"}),
    ("--isolation", "isolation", {"metavar": "MODE", "help": "process (default: a fresh process "
                                  "per task) or worker (warm workers, one workflow each)"}),
)


def add_parser(sub: Any) -> None:
    rn = sub.add_parser("n8n-runner", help="serve n8n's Code nodes (external task runner mode)")
    for flag, dest, extra in _FLAGS:
        rn.add_argument(flag, dest=dest, default=None, **extra)
    rn.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))


def run(args: argparse.Namespace) -> int:
    """Build the runner from env and flags and serve until SIGTERM/SIGINT or auto-shutdown.
    A bad setting is one line on stderr and exit code 2, like the other commands."""
    from sandbox.host.allocator import keep_large_blocks
    from sandbox.n8n.backend import PoolsBackend
    from sandbox.n8n.shell import Shell

    try:
        config = N8nRunnerConfig.load(flags={dest: getattr(args, dest) for _, dest, _ in _FLAGS})
    except ConfigError as exc:
        print(f"sandbox n8n-runner: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    keep_large_blocks()
    shell = Shell(config, PoolsBackend(config.pool_config(), runtimes=config.task_types,
                                         isolation=config.isolation))
    signal.signal(signal.SIGTERM, lambda *_: shell.request_stop())
    signal.signal(signal.SIGINT, lambda *_: shell.request_stop())
    return shell.serve()
