"""``sandbox n8n-runner`` settings: n8n's own environment names, each also a flag.

Environment first, flags win. n8n's names where n8n has one (a docker-compose file written
for n8n's runner works unchanged); ours (``SANDBOX_N8N_*``) for what n8n's runners lack. The
fields are a schema of the project's one settings mechanism (``sandbox.config``: typed text,
its messages, a warning naming the closest setting for a mistyped ``SANDBOX_N8N_*``); the
flags and their help are made from it.

=================================  ============================  ==============================
setting                            environment                   flag
=================================  ============================  ==============================
task_broker_uri                    N8N_RUNNERS_TASK_BROKER_URI   --task-broker-uri
auth_token                         N8N_RUNNERS_AUTH_TOKEN        --auth-token
grant_token (single use)           N8N_RUNNERS_GRANT_TOKEN       --grant-token
max_concurrency                    N8N_RUNNERS_MAX_CONCURRENCY   --max-concurrency
task_timeout_s                     N8N_RUNNERS_TASK_TIMEOUT      --task-timeout
auto_shutdown_timeout_s (0 = off)  N8N_RUNNERS_AUTO_SHUTDOWN_    --auto-shutdown-timeout
                                   TIMEOUT
graceful_shutdown_timeout_s (30)   N8N_RUNNERS_GRACEFUL_         --graceful-shutdown-timeout
                                   SHUTDOWN_TIMEOUT
shutdown_force_kill_margin_s (10)  N8N_RUNNERS_SHUTDOWN_FORCE_   --shutdown-force-kill-margin
                                   KILL_MARGIN
health_check_server_enabled        N8N_RUNNERS_HEALTH_CHECK_     --health-check-server-enabled
                                   SERVER_ENABLED
health_check_server_host / _port   ..._HOST / ..._PORT           --health-check-server-host/port
stdlib_allow                       N8N_RUNNERS_STDLIB_ALLOW      --stdlib-allow
external_allow                     N8N_RUNNERS_EXTERNAL_ALLOW    --external-allow
allow_transitive_imports (false)   N8N_RUNNERS_ALLOW_TRANSITIVE_ --allow-transitive-imports
                                   IMPORTS
max_payload_bytes                  N8N_RUNNERS_MAX_PAYLOAD       --max-payload
memory_mb                          SANDBOX_N8N_MEMORY_MB         --memory
task_types                         SANDBOX_N8N_TYPES             --types
packages_dir / preload             SANDBOX_N8N_PACKAGES_DIR/...  --packages-dir / --preload
js_packages_dir                    SANDBOX_N8N_JS_PACKAGES_DIR   --js-packages-dir
allow_builtin                      NODE_FUNCTION_ALLOW_BUILTIN   --allow-builtin
allow_external                     NODE_FUNCTION_ALLOW_EXTERNAL  --allow-external
timezone (America/New_York)        GENERIC_TIMEZONE              --timezone
tz (a task's local time; UTC)      TZ                            --tz
name                               SANDBOX_N8N_NAME              --name
isolation (process or worker)      SANDBOX_N8N_ISOLATION         --isolation
log_level (debug/info/warn/error)  N8N_RUNNERS_LAUNCHER_LOG_     --log-level
                                   LEVEL
log_format (text/json)             SANDBOX_N8N_LOG_FORMAT        --log-format
=================================  ============================  ==============================

Every variable may instead name a file that holds its value, as n8n's own settings do:
``N8N_RUNNERS_AUTH_TOKEN_FILE=/run/secrets/token`` (a Docker or Kubernetes secret). The
variable itself wins when both are set; the file's trailing newline is not part of the value.

One difference from n8n: with no ``N8N_RUNNERS_STDLIB_ALLOW`` a Python task may import the
ordinary standard library (``ORDINARY_STDLIB`` in ``sandbox/imports.py``: zoneinfo, sqlite3,
asyncio, ...; the kernel layers hold the rest), where n8n's runner allows none. ``+name``
adds to that list.

``isolation``: "process" (the default) runs every task in a fresh jailed process;
"worker" lets a warm jailed worker run the Code node tasks of one workflow, each with fresh
interpreter state (README, "Worker mode"), and never a task of another workflow.
"""

from __future__ import annotations

import os
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from broker.protocol import ISOLATIONS
from sandbox.config import (
    LOG_FORMATS,
    LOG_LEVELS,
    MAX_RESULT_BYTES,
    N8N,
    Limits,
    MiB,
    PoolConfig,
    read_sources,
    schema,
    schema_field,
    unknown_env,
)
from sandbox.errors import ConfigError
from sandbox.imports import ORDINARY_STDLIB, resolve
from sandbox.n8n.javascript_node import DEFAULT_TIMEZONE, CodeOptions
from sandbox.n8n.protocol import TASK_TYPES

ENV_PREFIX = "SANDBOX_N8N_"
#: A value read from a file (``*_FILE``) is at most this long: a secret, not a document.
MAX_FILE_VALUE_BYTES = 64 * 1024
#: n8n's launcher says "warn" where the logging module says "warning"
_LEVEL_ALIASES = {"warn": "warning"}


def _n8n(default: Any, help: str, env: str, flag: str, metavar: str) -> Any:
    return schema_field(default, help, on=(N8N,), env=env, flag=flag, metavar=metavar)


@dataclass(frozen=True)
class N8nRunnerConfig:
    task_broker_uri: str = _n8n("http://127.0.0.1:5679", "n8n's task broker, http://HOST:PORT",
                                "N8N_RUNNERS_TASK_BROKER_URI", "--task-broker-uri", "URI")
    auth_token: str = _n8n("", "n8n's shared secret", "N8N_RUNNERS_AUTH_TOKEN", "--auth-token",
                           "TOKEN")
    grant_token: str = _n8n("", "a single-use grant from n8n's launcher",
                            "N8N_RUNNERS_GRANT_TOKEN", "--grant-token", "GRANT")
    max_concurrency: int = _n8n(5, "tasks at once", "N8N_RUNNERS_MAX_CONCURRENCY",
                                "--max-concurrency", "N")
    # n8n 2.x's default N8N_RUNNERS_TASK_TIMEOUT
    task_timeout_s: float = _n8n(300.0, "per task, in seconds", "N8N_RUNNERS_TASK_TIMEOUT",
                                 "--task-timeout", "SECONDS")
    auto_shutdown_timeout_s: float = _n8n(
        0.0, "exit after this long without a task (0: never)",
        "N8N_RUNNERS_AUTO_SHUTDOWN_TIMEOUT", "--auto-shutdown-timeout", "SECONDS")
    # SIGTERM: serve on this long (or until n8n drains), then let running tasks finish for
    # the margin more (n8n's runners' defaults)
    graceful_shutdown_timeout_s: float = _n8n(
        30.0, "on SIGTERM, keep serving this long or until n8n drains",
        "N8N_RUNNERS_GRACEFUL_SHUTDOWN_TIMEOUT", "--graceful-shutdown-timeout", "SECONDS")
    shutdown_force_kill_margin_s: float = _n8n(
        10.0, "then let running tasks finish this long before they are stopped",
        "N8N_RUNNERS_SHUTDOWN_FORCE_KILL_MARGIN", "--shutdown-force-kill-margin", "SECONDS")
    health_check_server_enabled: bool = _n8n(
        False, "serve /healthz, /livez, /readyz and /metrics",
        "N8N_RUNNERS_HEALTH_CHECK_SERVER_ENABLED", "--health-check-server-enabled", "BOOL")
    health_check_server_host: str = _n8n(
        "127.0.0.1", "the health check server's address", "N8N_RUNNERS_HEALTH_CHECK_SERVER_HOST",
        "--health-check-server-host", "HOST")
    health_check_server_port: int = _n8n(
        5681, "the health check server's port", "N8N_RUNNERS_HEALTH_CHECK_SERVER_PORT",
        "--health-check-server-port", "PORT")
    stdlib_allow: tuple[str, ...] = _n8n(  # () = the ordinary standard library
        (), 'python: standard-library modules, "*" for all, +name adds to the default (the '
            'ordinary standard library)',
        "N8N_RUNNERS_STDLIB_ALLOW", "--stdlib-allow", "MODULES")
    external_allow: tuple[str, ...] = _n8n((), "python: third-party modules",
                                           "N8N_RUNNERS_EXTERNAL_ALLOW", "--external-allow",
                                           "MODULES")
    allow_transitive_imports: bool = _n8n(  # n8n's default
        False, "python: an allowed package's own importlib imports skip the lists",
        "N8N_RUNNERS_ALLOW_TRANSITIVE_IMPORTS", "--allow-transitive-imports", "BOOL")
    allow_builtin: tuple[str, ...] = _n8n(
        (), 'javascript: built-in modules require() may load, "*" for all (this runner has '
            'crypto, buffer, url)', "NODE_FUNCTION_ALLOW_BUILTIN", "--allow-builtin", "MODULES")
    allow_external: tuple[str, ...] = _n8n(
        (), "javascript: npm modules require() may load", "NODE_FUNCTION_ALLOW_EXTERNAL",
        "--allow-external", "MODULES")
    # n8n's instance zone: $now, $today and luxon's default zone (JavaScript)
    timezone: str = _n8n(DEFAULT_TIMEZONE, "n8n's zone: $now, $today and luxon's default zone",
                         "GENERIC_TIMEZONE", "--timezone", "ZONE")
    # the local time zone of the task's process, as TZ is n8n's runner's: JavaScript's Date and
    # toLocale* without a timeZone, Python's datetime.now() and time.localtime() ("": UTC)
    tz: str = _n8n("", "the local time zone of a task (Date, datetime.now()); default UTC",
                   "TZ", "--tz", "ZONE")
    max_payload_bytes: int = _n8n(1024 * MiB, "the largest WebSocket message",  # n8n's default
                                  "N8N_RUNNERS_MAX_PAYLOAD", "--max-payload", "BYTES")
    memory_mb: int = _n8n(256, "memory per task", "SANDBOX_N8N_MEMORY_MB", "--memory", "MB")
    task_types: tuple[str, ...] = _n8n(TASK_TYPES, "task types to serve",
                                       "SANDBOX_N8N_TYPES", "--types", "TYPES")
    packages_dir: str = _n8n("", "python packages environment (`sandbox packages install`)",
                             "SANDBOX_N8N_PACKAGES_DIR", "--packages-dir", "DIR")
    js_packages_dir: str = _n8n("", "npm packages require() loads, mounted read-only "
                                "(`sandbox packages install --runtime javascript`)",
                                "SANDBOX_N8N_JS_PACKAGES_DIR", "--js-packages-dir", "DIR")
    preload: tuple[str, ...] = _n8n((), "modules the python zygote imports",
                                    "SANDBOX_N8N_PRELOAD", "--preload", "MODULES")
    name: str = _n8n("snippet-sandbox", "the runner's name in n8n", "SANDBOX_N8N_NAME",
                     "--name", "NAME")
    isolation: str = _n8n("process", "process (a fresh process per task) or worker (warm "
                          "workers, one workflow each)", "SANDBOX_N8N_ISOLATION", "--isolation",
                          "MODE")
    log_level: str = _n8n("info", "the least severe log lines written to stderr (warn is "
                          "warning)", "N8N_RUNNERS_LAUNCHER_LOG_LEVEL", "--log-level",
                          "|".join(LOG_LEVELS))
    log_format: str = _n8n("text", "log lines as text or as one JSON object each",
                           "SANDBOX_N8N_LOG_FORMAT", "--log-format", "|".join(LOG_FORMATS))

    def __post_init__(self) -> None:
        parts = urlsplit(self.task_broker_uri)
        if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
            raise ConfigError(f"task_broker_uri must be http://HOST:PORT, not {self.task_broker_uri!r}")
        if parts.scheme in ("https", "wss"):
            raise ConfigError("task_broker_uri: TLS is not supported; run the runner beside n8n "
                              "(its broker listens on a private address)")
        if not self.auth_token and not self.grant_token:
            raise ConfigError("set N8N_RUNNERS_AUTH_TOKEN (--auth-token), n8n's shared secret, "
                              "or a grant in N8N_RUNNERS_GRANT_TOKEN")
        for name in ("max_concurrency", "health_check_server_port", "max_payload_bytes", "memory_mb"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} ({SETTINGS[name].env}) must be a positive integer, "
                                  f"not {value!r}")
        if self.max_concurrency > 256:
            raise ConfigError("max_concurrency must be at most 256")
        for name in ("task_timeout_s", "auto_shutdown_timeout_s", "graceful_shutdown_timeout_s",
                     "shutdown_force_kill_margin_s"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"{name} ({SETTINGS[name].env}) must be a number of seconds >= 0")
        if self.isolation not in ISOLATIONS:
            raise ConfigError(f"isolation ({SETTINGS['isolation'].env}) must be one of "
                              f"{', '.join(ISOLATIONS)}, not {self.isolation!r}")
        for name, allowed in (("log_level", LOG_LEVELS), ("log_format", LOG_FORMATS)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} ({SETTINGS[name].env}) must be "
                                  f"{', '.join(allowed[:-1])} or {allowed[-1]}, "
                                  f"not {getattr(self, name)!r}")
        bad = [t for t in self.task_types if t not in TASK_TYPES]
        if bad or not self.task_types:
            raise ConfigError(f"task_types must name {' and/or '.join(TASK_TYPES)}, not {bad}")
        for name in ("timezone", "tz"):
            zone = getattr(self, name)
            if name == "tz" and not zone:
                continue
            try:
                zoneinfo.ZoneInfo(zone.lstrip(":"))
            except (ValueError, OSError, zoneinfo.ZoneInfoNotFoundError) as exc:
                raise ConfigError(f"{name} ({SETTINGS[name].env}) must be an IANA time zone such "
                                  f"as Europe/Berlin, not {zone!r}") from exc
        self.limits()  # the limits are valid too
        self.pool_config()

    @property
    def host_port(self) -> tuple[str, int]:
        parts = urlsplit(self.task_broker_uri)
        return parts.hostname or "127.0.0.1", parts.port or 80

    def limits(self) -> Limits:
        return Limits(timeout_s=float(self.task_timeout_s or 3600), memory_mb=self.memory_mb,
                      result_bytes=min(self.max_payload_bytes, MAX_RESULT_BYTES))

    def javascript_options(self) -> CodeOptions:
        return CodeOptions(allow_builtin=self.allow_builtin, allow_external=self.allow_external,
                           timezone=self.timezone, tz=self.tz.lstrip(":"))

    def pool_config(self) -> PoolConfig:
        stdlib = tuple(sorted(resolve(self.stdlib_allow, ORDINARY_STDLIB, "stdlib_allow")))
        return PoolConfig(size=self.max_concurrency, stdlib_allow=stdlib,
                          external_allow=self.external_allow,
                          allow_transitive_imports=self.allow_transitive_imports,
                          timezone=self.tz.lstrip(":"),
                          packages_dir=self.packages_dir or None, preload=self.preload,
                          js_packages_dir=self.js_packages_dir or None,
                          default_limits=self.limits(),
                          jail_pids=max(256, 2 * self.max_concurrency + 8))

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None,
             flags: Mapping[str, Any] | None = None) -> N8nRunnerConfig:
        """Environment (n8n's names, or a ``*_FILE`` variable naming a file that holds the
        value) first, then flags; every value type-checked."""
        source = os.environ if env is None else env
        found = {s.env: value for s in SETTINGS.values()
                 if (value := _read(source, s.env)) is not None}
        level = SETTINGS["log_level"].env
        if level in found:
            found[level] = _level(found[level])
        given = dict(flags or {})
        if isinstance(given.get("log_level"), str):
            given["log_level"] = _level(given["log_level"])
        return cls(**read_sources(SETTINGS, N8N, found, given))  # type: ignore[arg-type]


def _level(raw: str) -> str:
    value = raw.strip().lower()
    return _LEVEL_ALIASES.get(value, value)


def _read(source: Mapping[str, str], var: str) -> str | None:
    """A variable's value: itself when set, else the content of the file ``{var}_FILE`` names
    (as n8n reads its settings), else None."""
    if source.get(var, "") != "":
        return source[var]
    path = source.get(f"{var}_FILE", "")
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_VALUE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{var}_FILE: cannot read {path}: {exc.strerror or exc}") from exc
    if len(data) > MAX_FILE_VALUE_BYTES:
        raise ConfigError(f"{var}_FILE: {path} is larger than {MAX_FILE_VALUE_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{var}_FILE: {path} is not UTF-8 text") from exc
    value = text.rstrip("\r\n")
    return value if value != "" else None


SETTINGS = schema(N8nRunnerConfig)


def unknown(env: Mapping[str, str] | None = None) -> list[str]:
    """A warning for each ``SANDBOX_N8N_*`` variable that is none of these settings."""
    source = os.environ if env is None else env
    known = {s.env for s in SETTINGS.values()}
    # a ``*_FILE`` variable of a setting is that setting (``_read``)
    plain = {k: v for k, v in source.items()
             if not (k.endswith("_FILE") and k.removesuffix("_FILE") in known)}
    return unknown_env(plain, SETTINGS, prefix=ENV_PREFIX, skip=())
