"""``sandbox n8n-runner`` settings: n8n's own environment names, each also a flag.

Environment first, flags win. n8n's names where n8n has one (a docker-compose file written
for n8n's runner works unchanged); ours (``SANDBOX_N8N_*``) for what n8n's runners lack.

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
health_check_server_enabled        N8N_RUNNERS_HEALTH_CHECK_     --health-check-server-enabled
                                   SERVER_ENABLED
health_check_server_host / _port   ..._HOST / ..._PORT           --health-check-server-host/port
stdlib_allow                       N8N_RUNNERS_STDLIB_ALLOW      --stdlib-allow
external_allow                     N8N_RUNNERS_EXTERNAL_ALLOW    --external-allow
max_payload_bytes                  N8N_RUNNERS_MAX_PAYLOAD       --max-payload
memory_mb                          SANDBOX_N8N_MEMORY_MB         --memory
task_types                         SANDBOX_N8N_TYPES             --types
packages_dir / preload             SANDBOX_N8N_PACKAGES_DIR/...  --packages-dir / --preload
allow_builtin                      NODE_FUNCTION_ALLOW_BUILTIN   --allow-builtin
allow_external                     NODE_FUNCTION_ALLOW_EXTERNAL  --allow-external
timezone                           GENERIC_TIMEZONE              --timezone
tz (JavaScript's Date)             TZ                            --tz
name                               SANDBOX_N8N_NAME              --name
isolation (process or worker)      SANDBOX_N8N_ISOLATION         --isolation
=================================  ============================  ==============================

One difference from n8n: with no ``N8N_RUNNERS_STDLIB_ALLOW`` a Python task may import our
curated safe standard-library set (``sandbox/imports.py``), where n8n's runner allows none.

``isolation``: "process" (the default) runs every task in a fresh jailed process;
"worker" lets a warm jailed worker run the Code node tasks of one workflow, each with fresh
interpreter state (README, "Worker mode"), and never a task of another workflow.
"""

from __future__ import annotations

import os
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlsplit

from sandbox.config import MAX_RESULT_BYTES, MiB, Limits, PoolConfig
from sandbox.errors import ConfigError
from sandbox.n8n.javascript_node import DEFAULT_TIMEZONE, CodeOptions
from sandbox.n8n.protocol import TASK_TYPES
from broker.protocol import ISOLATIONS

ENV = {
    "task_broker_uri": "N8N_RUNNERS_TASK_BROKER_URI",
    "auth_token": "N8N_RUNNERS_AUTH_TOKEN",
    "grant_token": "N8N_RUNNERS_GRANT_TOKEN",
    "max_concurrency": "N8N_RUNNERS_MAX_CONCURRENCY",
    "task_timeout_s": "N8N_RUNNERS_TASK_TIMEOUT",
    "auto_shutdown_timeout_s": "N8N_RUNNERS_AUTO_SHUTDOWN_TIMEOUT",
    "health_check_server_enabled": "N8N_RUNNERS_HEALTH_CHECK_SERVER_ENABLED",
    "health_check_server_host": "N8N_RUNNERS_HEALTH_CHECK_SERVER_HOST",
    "health_check_server_port": "N8N_RUNNERS_HEALTH_CHECK_SERVER_PORT",
    "stdlib_allow": "N8N_RUNNERS_STDLIB_ALLOW",
    "external_allow": "N8N_RUNNERS_EXTERNAL_ALLOW",
    "max_payload_bytes": "N8N_RUNNERS_MAX_PAYLOAD",
    "memory_mb": "SANDBOX_N8N_MEMORY_MB",
    "task_types": "SANDBOX_N8N_TYPES",
    "packages_dir": "SANDBOX_N8N_PACKAGES_DIR",
    "preload": "SANDBOX_N8N_PRELOAD",
    "name": "SANDBOX_N8N_NAME",
    "isolation": "SANDBOX_N8N_ISOLATION",
    "allow_builtin": "NODE_FUNCTION_ALLOW_BUILTIN",
    "allow_external": "NODE_FUNCTION_ALLOW_EXTERNAL",
    "timezone": "GENERIC_TIMEZONE",
    "tz": "TZ",
}


@dataclass(frozen=True)
class N8nRunnerConfig:
    task_broker_uri: str = "http://127.0.0.1:5679"
    auth_token: str = ""
    grant_token: str = ""
    max_concurrency: int = 5
    task_timeout_s: float = 300.0  # n8n 2.x's default N8N_RUNNERS_TASK_TIMEOUT
    auto_shutdown_timeout_s: float = 0.0
    health_check_server_enabled: bool = False
    health_check_server_host: str = "127.0.0.1"
    health_check_server_port: int = 5681
    stdlib_allow: tuple[str, ...] = ()  # () = our curated SAFE_STDLIB
    external_allow: tuple[str, ...] = ()
    max_payload_bytes: int = 1024 * MiB  # n8n's N8N_RUNNERS_MAX_PAYLOAD default
    memory_mb: int = 256
    task_types: tuple[str, ...] = TASK_TYPES
    packages_dir: str = ""
    preload: tuple[str, ...] = ()
    name: str = "snippet-sandbox"
    isolation: str = "process"
    allow_builtin: tuple[str, ...] = ()  # modules require() may load; "*": any
    allow_external: tuple[str, ...] = ()
    timezone: str = DEFAULT_TIMEZONE
    tz: str = ""  # Date's local time zone in JavaScript, as TZ is a Node process's ("": UTC)

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
                raise ConfigError(f"{name} ({ENV[name]}) must be a positive integer, not {value!r}")
        if self.max_concurrency > 256:
            raise ConfigError("max_concurrency must be at most 256")
        for name in ("task_timeout_s", "auto_shutdown_timeout_s"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"{name} ({ENV[name]}) must be a number of seconds >= 0")
        if self.isolation not in ISOLATIONS:
            raise ConfigError(f"isolation ({ENV['isolation']}) must be one of "
                              f"{', '.join(ISOLATIONS)}, not {self.isolation!r}")
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
                raise ConfigError(f"{name} ({ENV[name]}) must be an IANA time zone such as "
                                  f"Europe/Berlin, not {zone!r}") from exc
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
        return PoolConfig(size=self.max_concurrency, stdlib_allow=self.stdlib_allow,
                          external_allow=self.external_allow,
                          packages_dir=self.packages_dir or None, preload=self.preload,
                          default_limits=self.limits(),
                          jail_pids=max(256, 2 * self.max_concurrency + 8))

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None,
             flags: Mapping[str, Any] | None = None) -> N8nRunnerConfig:
        """Environment (n8n's names) first, then flags; every value type-checked."""
        source = os.environ if env is None else env
        values: dict[str, Any] = {}
        kinds = {f.name: f.default for f in fields(cls)}
        for name, var in ENV.items():
            if source.get(var, "") != "":
                values[name] = _typed(name, source[var], kinds[name], var)
        for name, value in (flags or {}).items():
            if value is not None:
                values[name] = (_typed(name, value, kinds[name], f"--{name}")
                                if isinstance(value, str) else value)
        return cls(**values)


def _typed(name: str, raw: str, default: Any, source: str) -> Any:
    try:
        if isinstance(default, bool):
            if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(raw)
            return raw.lower() in ("1", "true", "yes")
        if isinstance(default, tuple):
            return tuple(x.strip() for x in raw.split(",") if x.strip())
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{source}: bad value {raw!r} for {name}") from exc
    return raw
