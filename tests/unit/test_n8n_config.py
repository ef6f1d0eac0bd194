"""``sandbox n8n-runner`` settings: n8n's variable names, flags over them, clear errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sandbox.errors import ConfigError
from sandbox.n8n.config import N8nRunnerConfig

BASE = {"N8N_RUNNERS_AUTH_TOKEN": "t"}


def test_n8ns_variables_configure_the_runner():
    c = N8nRunnerConfig.load(env={
        **BASE, "N8N_RUNNERS_TASK_BROKER_URI": "http://n8n:5679", "N8N_RUNNERS_MAX_CONCURRENCY": "7",
        "N8N_RUNNERS_TASK_TIMEOUT": "42", "N8N_RUNNERS_AUTO_SHUTDOWN_TIMEOUT": "15",
        "N8N_RUNNERS_HEALTH_CHECK_SERVER_ENABLED": "true", "N8N_RUNNERS_HEALTH_CHECK_SERVER_PORT": "5999",
        "N8N_RUNNERS_STDLIB_ALLOW": "json, math", "N8N_RUNNERS_EXTERNAL_ALLOW": "",
        "SANDBOX_N8N_MEMORY_MB": "512"})
    assert (c.task_broker_uri, c.max_concurrency, c.task_timeout_s, c.auto_shutdown_timeout_s) == (
        "http://n8n:5679", 7, 42.0, 15.0)
    assert c.health_check_server_enabled is True and c.health_check_server_port == 5999
    assert c.stdlib_allow == ("json", "math") and c.external_allow == ()
    assert c.host_port == ("n8n", 5679)
    limits, pool = c.limits(), c.pool_config()
    assert (limits.timeout_s, limits.memory_mb, pool.size) == (42.0, 512, 7)


def test_isolation_is_a_fresh_process_per_task_unless_worker_is_asked_for():
    assert N8nRunnerConfig.load(env=BASE).isolation == "process"
    assert N8nRunnerConfig.load(env={**BASE, "SANDBOX_N8N_ISOLATION": "worker"}).isolation == "worker"


def test_flags_win_over_the_environment():
    c = N8nRunnerConfig.load(env={**BASE, "N8N_RUNNERS_MAX_CONCURRENCY": "7"},
                             flags={"max_concurrency": "2", "memory_mb": None})
    assert c.max_concurrency == 2 and c.memory_mb == 256


@pytest.mark.parametrize("env,message", [
    ({}, "set N8N_RUNNERS_AUTH_TOKEN (--auth-token)"),
    ({**BASE, "N8N_RUNNERS_MAX_CONCURRENCY": "many"}, "N8N_RUNNERS_MAX_CONCURRENCY: bad value 'many'"),
    ({**BASE, "N8N_RUNNERS_MAX_CONCURRENCY": "0"}, "max_concurrency (N8N_RUNNERS_MAX_CONCURRENCY) must be"),
    ({**BASE, "N8N_RUNNERS_TASK_BROKER_URI": "n8n:5679"}, "task_broker_uri must be http://HOST:PORT"),
    ({**BASE, "N8N_RUNNERS_TASK_BROKER_URI": "https://n8n:5679"}, "TLS is not supported"),
    ({**BASE, "N8N_RUNNERS_STDLIB_ALLOW": "requests"}, "'requests' is not a standard-library module"),
    ({**BASE, "SANDBOX_N8N_TYPES": "ruby"}, "task_types must name javascript and/or python"),
    ({**BASE, "N8N_RUNNERS_HEALTH_CHECK_SERVER_ENABLED": "maybe"}, "bad value 'maybe'"),
    ({**BASE, "SANDBOX_N8N_ISOLATION": "thread"},
     "isolation (SANDBOX_N8N_ISOLATION) must be one of process, worker, not 'thread'"),
])
def test_a_bad_setting_is_one_clear_error(env, message):
    with pytest.raises(ConfigError) as info:
        N8nRunnerConfig.load(env=env)
    assert message in str(info.value)


def test_the_cli_reports_a_bad_setting_on_one_line_with_exit_code_2():
    proc = subprocess.run([sys.executable, "-m", "sandbox", "n8n-runner", "--max-concurrency", "0"],
                          capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "N8N_RUNNERS_AUTH_TOKEN": "t"})
    assert proc.returncode == 2
    assert proc.stderr == ("sandbox n8n-runner: max_concurrency (N8N_RUNNERS_MAX_CONCURRENCY) must "
                           "be a positive integer, not 0\n")


def test_n8ns_javascript_variables_reach_the_code_node_options():
    cfg = N8nRunnerConfig.load({**BASE, "NODE_FUNCTION_ALLOW_BUILTIN": "crypto, url",
                                "NODE_FUNCTION_ALLOW_EXTERNAL": "*", "GENERIC_TIMEZONE": "Europe/Berlin"})
    options = cfg.javascript_options()
    assert (options.allow_builtin, options.allow_external, options.timezone) == (
        ("crypto", "url"), ("*",), "Europe/Berlin")
    assert options.as_task()["modules"] == {"builtin": ["crypto", "url"], "external": "*"}


def test_the_time_zone_defaults_to_n8ns():
    assert N8nRunnerConfig.load(BASE).javascript_options().timezone == "America/New_York"


def test_an_unknown_time_zone_is_refused_naming_the_variable():
    with pytest.raises(ConfigError, match="GENERIC_TIMEZONE"):
        N8nRunnerConfig.load({**BASE, "GENERIC_TIMEZONE": "Mars/Base"})


def test_tz_is_javascripts_local_zone_and_is_checked():
    assert N8nRunnerConfig.load({**BASE, "TZ": "Europe/Paris"}).javascript_options().as_task()["tz"] \
        == "Europe/Paris"
    assert "tz" not in N8nRunnerConfig.load(BASE).javascript_options().as_task()
    with pytest.raises(ConfigError, match="TZ"):
        N8nRunnerConfig.load({**BASE, "TZ": "Nowhere/Land"})
