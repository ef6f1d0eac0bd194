from __future__ import annotations

import pytest

from sandbox import ConfigError, Limits, PoolConfig
from sandbox.config import ServiceConfig, canonical_runtime


@pytest.mark.parametrize(
    "changes, fragment",
    [
        ({"timeout_s": 0}, "timeout_s"),
        ({"timeout_s": float("nan")}, "finite"),
        ({"timeout_s": "1"}, "timeout_s must be a float"),
        ({"memory_mb": 1}, "memory_mb must be between"),
        ({"memory_mb": 1.5}, "memory_mb must be an int"),
        ({"memory_mb": True}, "memory_mb"),
        ({"stdout_bytes": -1}, "stdout_bytes"),
        ({"result_bytes": 10}, "result_bytes"),
        ({"cpu": 1}, "unknown limit"),
    ],
)
def test_bad_limits_raise_config_error(changes, fragment):
    with pytest.raises(ConfigError, match=fragment):
        Limits().replace(**changes)


def test_none_keeps_defaults():
    assert Limits().replace(timeout_s=None, memory_mb=64) == Limits(memory_mb=64)


def test_integer_timeout_is_accepted():
    assert Limits(timeout_s=2).timeout_s == 2


@pytest.mark.parametrize(
    "kwargs, fragment",
    [({"size": 0}, "size"), ({"cgroup": "v3"}, "cgroup"), ({"jail_pids": 8, "size": 8}, "jail_pids")],
)
def test_bad_pool_config(kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment):
        PoolConfig(**kwargs)


def test_runtime_aliases():
    assert canonical_runtime("js") == "javascript"
    assert canonical_runtime("Python") == "python"
    assert canonical_runtime("ruby") is None


def test_pyodide_without_namespaces_is_a_named_opt_in_from_the_service_to_its_runners():
    from sandbox import cli
    from sandbox.daemon import RunnerWatcher

    config = ServiceConfig.load(env={"SANDBOX_PYODIDE_NO_NAMESPACES": "1",
                                     "SANDBOX_RUNTIMES": "python,pyodide"})
    assert config.pyodide_no_namespaces is True
    argv = RunnerWatcher(config, "ipc:///tmp/x.sock").argv(0)
    assert "--pyodide-no-namespaces" in argv and argv[argv.index("--runtimes") + 1] == "python,pyodide"
    args = cli._parser().parse_args(argv[3:])  # what the runner process parses
    assert cli._pool_config(args, size=2).pyodide.no_namespaces is True
    assert ServiceConfig().pyodide_no_namespaces is False
    assert "--pyodide-no-namespaces" not in RunnerWatcher(ServiceConfig(), "ipc:///x").argv(0)


# -- ServiceConfig: every setting type-checked, naming the setting and its source ------------


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('insecure = "false"', "insecure must be a boolean (true or false), not str 'false'"),
        ("insecure = 0", "insecure must be a boolean (true or false), not int 0"),
        ("slots = 4.5", "slots must be an integer, not float 4.5"),
        ("slots = true", "slots must be an integer, not bool True"),
        ('grace_s = "10"', "grace_s must be a number, not str '10'"),
        ("curve_dir = 7", "curve_dir must be a string, not int 7"),
        ("runtimes = [1, 2]", "runtimes must be a list of strings, not tuple (1, 2)"),
        ("bind = 7700", "bind must be a list of strings, not int 7700"),
        ("nope = 1", "unknown setting 'nope'"),
    ],
)
def test_a_setting_of_the_wrong_type_in_the_file_is_refused(tmp_path, toml, message):
    path = tmp_path / "serve.toml"
    path.write_text(toml + "\n")
    with pytest.raises(ConfigError) as info:
        ServiceConfig.load(str(path), env={})
    assert str(info.value) == f"config file {path}: {message}"


def test_settings_of_the_right_type_load_from_every_source(tmp_path):
    path = tmp_path / "serve.toml"
    path.write_text('insecure = false\ngrace_s = 3\nruntimes = "python"\nlanes = ["eval=2"]\n')
    config = ServiceConfig.load(str(path), env={"SANDBOX_SLOTS": "6", "SANDBOX_INSECURE": "no"},
                                flags={"queue_timeout_s": 4.0})
    assert (config.insecure, config.grace_s, config.runtimes, config.lanes, config.slots,
            config.queue_timeout_s) == (False, 3.0, ("python",), ("eval=2",), 6, 4.0)


@pytest.mark.parametrize(
    ("env", "message"),
    [({"SANDBOX_INSECURE": "maybe"}, "environment: insecure must be a boolean"),
     ({"SANDBOX_SLOTS": "four"}, "environment: slots must be an integer, not str 'four'")],
)
def test_an_environment_value_that_does_not_parse_is_refused(env, message):
    with pytest.raises(ConfigError, match=message):
        ServiceConfig.load(None, env=env)


def test_a_setting_built_in_code_is_type_checked_too():
    with pytest.raises(ConfigError, match="insecure must be a boolean"):
        ServiceConfig(insecure="false")
