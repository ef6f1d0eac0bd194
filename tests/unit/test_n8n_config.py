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
    ({**BASE, "N8N_RUNNERS_MAX_CONCURRENCY": "many"},
     "environment: N8N_RUNNERS_MAX_CONCURRENCY must be an integer, not str 'many'"),
    ({**BASE, "N8N_RUNNERS_MAX_CONCURRENCY": "0"}, "max_concurrency (N8N_RUNNERS_MAX_CONCURRENCY) must be"),
    ({**BASE, "N8N_RUNNERS_TASK_BROKER_URI": "n8n:5679"}, "task_broker_uri must be http://HOST:PORT"),
    ({**BASE, "N8N_RUNNERS_TASK_BROKER_URI": "https://n8n:5679"}, "TLS is not supported"),
    ({**BASE, "N8N_RUNNERS_STDLIB_ALLOW": "requests"}, "'requests' is not a standard-library module"),
    ({**BASE, "SANDBOX_N8N_TYPES": "ruby"}, "task_types must name javascript and/or python"),
    ({**BASE, "N8N_RUNNERS_HEALTH_CHECK_SERVER_ENABLED": "maybe"},
     "N8N_RUNNERS_HEALTH_CHECK_SERVER_ENABLED must be a boolean (true or false), not str 'maybe'"),
    ({**BASE, "N8N_RUNNERS_LAUNCHER_LOG_LEVEL": "loud"},
     "log_level (N8N_RUNNERS_LAUNCHER_LOG_LEVEL) must be debug, info, warning or error, not 'loud'"),
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


def test_a_secret_may_come_from_a_file_named_by_its_FILE_variable(tmp_path):
    (tmp_path / "token").write_text("from-a-file\n")
    (tmp_path / "n").write_text("3")
    c = N8nRunnerConfig.load(env={"N8N_RUNNERS_AUTH_TOKEN_FILE": str(tmp_path / "token"),
                                  "N8N_RUNNERS_MAX_CONCURRENCY_FILE": str(tmp_path / "n")})
    assert (c.auth_token, c.max_concurrency) == ("from-a-file", 3)


def test_the_variable_itself_wins_over_its_FILE_variant(tmp_path):
    secret = tmp_path / "token"
    secret.write_text("from-a-file")
    c = N8nRunnerConfig.load(env={"N8N_RUNNERS_AUTH_TOKEN": "direct",
                                  "N8N_RUNNERS_AUTH_TOKEN_FILE": str(secret)})
    assert c.auth_token == "direct"


def test_an_unreadable_FILE_variable_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError) as info:
        N8nRunnerConfig.load(env={"N8N_RUNNERS_AUTH_TOKEN_FILE": str(tmp_path / "missing")})
    assert str(info.value).startswith(
        f"N8N_RUNNERS_AUTH_TOKEN_FILE: cannot read {tmp_path / 'missing'}: ")


@pytest.mark.parametrize("raw,level", [("debug", "debug"), ("warn", "warning"), ("ERROR", "error")])
def test_the_launchers_log_level_variable_sets_the_log_level(raw, level):
    c = N8nRunnerConfig.load(env={**BASE, "N8N_RUNNERS_LAUNCHER_LOG_LEVEL": raw})
    assert c.log_level == level


def test_the_log_level_defaults_to_info_and_a_bad_one_is_refused():
    assert N8nRunnerConfig.load(env=BASE).log_level == "info"
    with pytest.raises(ConfigError) as info:
        N8nRunnerConfig.load(env={**BASE, "N8N_RUNNERS_LAUNCHER_LOG_LEVEL": "loud"})
    assert str(info.value) == ("log_level (N8N_RUNNERS_LAUNCHER_LOG_LEVEL) must be debug, info, "
                               "warning or error, not 'loud'")


def test_python_may_import_the_ordinary_standard_library_by_default_and_plus_adds_to_it():
    from sandbox.imports import ORDINARY_STDLIB

    assert N8nRunnerConfig.load(env=BASE).pool_config().stdlib_allow == ORDINARY_STDLIB
    added = N8nRunnerConfig.load(env={**BASE, "N8N_RUNNERS_STDLIB_ALLOW": "+os"}).pool_config()
    assert set(added.stdlib_allow) == set(ORDINARY_STDLIB) | {"os"}


def test_transitive_imports_are_checked_unless_n8ns_variable_allows_them():
    assert N8nRunnerConfig.load(env=BASE).pool_config().import_policy().transitive is False
    allowed = N8nRunnerConfig.load(env={**BASE, "N8N_RUNNERS_ALLOW_TRANSITIVE_IMPORTS": "true"})
    assert allowed.pool_config().import_policy().imports.transitive is True


@pytest.mark.parametrize("env,zone", [
    ({"GENERIC_TIMEZONE": "Europe/Berlin", "TZ": "Asia/Tokyo"}, "Asia/Tokyo"),
    ({"TZ": ":America/New_York"}, "America/New_York"),
    ({"GENERIC_TIMEZONE": "Europe/Berlin"}, ""),
    ({}, ""),
])
def test_a_tasks_local_time_zone_is_tz_as_n8ns_runners_process_has_it(env, zone):
    """TZ is the runner process's zone in n8n (Python's datetime.now(), JavaScript's Date);
    GENERIC_TIMEZONE is n8n's instance zone, luxon's ($now, $today)."""
    assert N8nRunnerConfig.load(env={**BASE, **env}).pool_config().timezone == zone


def test_the_settings_are_read_by_the_projects_one_mechanism():
    """[25.10] n8n/config.py had a second parser of typed text (its own bools, numbers,
    lists and messages): its fields are now a schema of sandbox.config's."""
    from sandbox import config
    from sandbox.n8n import config as n8n_config

    assert not hasattr(n8n_config, "_typed")
    assert n8n_config.SETTINGS == config.schema(N8nRunnerConfig)
    assert [(s.env, s.flag, s.kind) for s in n8n_config.SETTINGS.values()][:4] == [
        ("N8N_RUNNERS_TASK_BROKER_URI", "--task-broker-uri", "str"),
        ("N8N_RUNNERS_AUTH_TOKEN", "--auth-token", "str"),
        ("N8N_RUNNERS_GRANT_TOKEN", "--grant-token", "str"),
        ("N8N_RUNNERS_MAX_CONCURRENCY", "--max-concurrency", "int")]


def test_a_mistyped_sandbox_n8n_variable_is_warned_about_naming_the_closest():
    """[25.10] SANDBOX_N8N_* variables were skipped by the typo check of SANDBOX_* ones and
    read by nobody else: SANDBOX_N8N_MEMROY_MB=1024 was ignored without a word."""
    proc = subprocess.run([sys.executable, "-m", "sandbox", "n8n-runner", "--max-concurrency", "0"],
                          capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "N8N_RUNNERS_AUTH_TOKEN": "t",
                               "SANDBOX_N8N_MEMROY_MB": "1024"})
    assert (proc.returncode, proc.stderr.splitlines()) == (2, [
        "sandbox n8n-runner: warning: SANDBOX_N8N_MEMROY_MB is not a setting and is ignored "
        "(did you mean SANDBOX_N8N_MEMORY_MB?)",
        "sandbox n8n-runner: max_concurrency (N8N_RUNNERS_MAX_CONCURRENCY) must be a positive "
        "integer, not 0"])


def test_the_help_names_each_variable_and_default():
    proc = subprocess.run([sys.executable, "-m", "sandbox", "n8n-runner", "--help"],
                          capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"})
    assert proc.returncode == 0
    assert [line.strip() for line in proc.stdout.splitlines() if "TIMEOUT]" in line
            or "MAX_CONCURRENCY]" in line] == [
        "--max-concurrency N   tasks at once; default: 5 [N8N_RUNNERS_MAX_CONCURRENCY]",
        "per task, in seconds; default: 300 s [N8N_RUNNERS_TASK_TIMEOUT]",
        "exit after this long without a task (0: never); default: 0 s "
        "[N8N_RUNNERS_AUTO_SHUTDOWN_TIMEOUT]",
        "on SIGTERM, keep serving this long or until n8n drains; default: 30 s "
        "[N8N_RUNNERS_GRACEFUL_SHUTDOWN_TIMEOUT]"]


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
