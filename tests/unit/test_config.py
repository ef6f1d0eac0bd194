from __future__ import annotations

import dataclasses

import pytest

from broker.core import BrokerConfig
from sandbox import ConfigError, Limits, PoolConfig
from sandbox.config import SETTINGS, ServiceConfig, check_endpoint, unknown_env
from sandbox.registry import canonical as canonical_runtime


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
    from sandbox.service.daemon import RunnerWatcher

    config = ServiceConfig.load(env={"SANDBOX_PYODIDE_NO_NAMESPACES": "1",
                                     "SANDBOX_PYODIDE_PACKAGES_DIR": "/srv/wheels",
                                     "SANDBOX_RUNTIMES": "python,pyodide"})
    argv = RunnerWatcher(config, "ipc:///tmp/x.sock").argv(0)
    runner = ServiceConfig.from_json(argv[argv.index("--settings") + 1])  # what it reads
    assert runner.runtimes == ("python", "pyodide")
    pool = runner.pool()
    assert (pool.pyodide.no_namespaces, pool.pyodide.packages_dir) == (True, "/srv/wheels")
    assert ServiceConfig().pool().pyodide.no_namespaces is False


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
    [({"SANDBOX_INSECURE": "maybe"}, "environment: SANDBOX_INSECURE must be a boolean"),
     ({"SANDBOX_SLOTS": "four"}, "environment: SANDBOX_SLOTS must be an integer, not str 'four'")],
)
def test_an_environment_value_that_does_not_parse_is_refused(env, message):
    with pytest.raises(ConfigError, match=message):
        ServiceConfig.load(None, env=env)


def test_a_setting_built_in_code_is_type_checked_too():
    with pytest.raises(ConfigError, match="insecure must be a boolean"):
        ServiceConfig(insecure="false")


# -- one schema: every name derived from it (issue 14, item 9) ----------------------------------


def test_every_setting_has_one_name_in_the_file_the_environment_and_the_flags():
    """[14.9] `--queue-timeout` set queue_timeout_s, `--grace` grace_s, `--lane` lanes...:
    each name is now the setting's own, in every source."""
    for s in SETTINGS.values():
        assert (s.env, s.flag) == ("SANDBOX_" + s.name.upper(), "--" + s.name.replace("_", "-"))
    assert [SETTINGS[n].flag for n in ("queue_timeout_s", "grace_s", "heartbeat_s", "lanes",
                                       "groups", "packages", "max_queued")] == [
        "--queue-timeout-s", "--grace-s", "--heartbeat-s", "--lanes", "--groups", "--packages",
        "--max-queued"]


def test_the_queue_cap_has_the_broker_cores_name():
    """[14.9] queue_max in the settings, max_queued in the broker's core."""
    assert "max_queued" in SETTINGS and "queue_max" not in SETTINGS
    assert {f.name for f in dataclasses.fields(BrokerConfig)} >= {
        n for n in SETTINGS if n.startswith("max_")}


def test_an_old_name_in_the_file_or_the_environment_is_refused_naming_the_new_one(tmp_path):
    path = tmp_path / "serve.toml"
    path.write_text("queue_max = 5\n")
    with pytest.raises(ConfigError) as info:
        ServiceConfig.load(str(path), env={})
    assert str(info.value) == f"config file {path}: queue_max is now max_queued"
    with pytest.raises(ConfigError) as info:
        ServiceConfig.load(None, env={"SANDBOX_QUEUE_MAX": "5"})
    assert str(info.value) == "environment: SANDBOX_QUEUE_MAX is now SANDBOX_MAX_QUEUED"


def test_unknown_sandbox_variables_are_warned_about_with_the_closest_setting():
    """[14.9] SANDBOX_SLOTZ was ignored without a word (while an unknown TOML key is
    refused). The n8n runner's own variables and the test suite's are not settings here."""
    env = {"SANDBOX_SLOTZ": "8", "SANDBOX_SLOTS": "2", "SANDBOX_N8N_MEMORY_MB": "64",
           "SANDBOX_TEST_HOST_SECRET": "x", "PATH": "/bin"}
    assert unknown_env(env) == [
        "SANDBOX_SLOTZ is not a setting and is ignored (did you mean SANDBOX_SLOTS?)"]


def test_a_command_reads_only_its_own_settings_and_ignores_the_others_in_the_file(tmp_path):
    path = tmp_path / "host.toml"
    path.write_text('bind = ["ipc:///tmp/x.sock"]\nstdlib_allow = ["+os"]\nslots = 7\n')
    config = ServiceConfig.load(str(path), env={"SANDBOX_HTTP": "bad"}, command="exec")
    assert (config.bind, config.stdlib_allow, config.slots, config.http) == (
        (), ("+os",), 4, "127.0.0.1:9464")


def test_list_flags_add_up_and_split_by_their_separator():
    config = ServiceConfig.load(None, env={"SANDBOX_PACKAGES": "pandas>=2,<3 requests"},
                                flags={"groups": ["gpu,cpu", "big"], "lanes": ["eval=2"]})
    assert config.groups == ("gpu", "cpu", "big")
    assert config.packages == ("pandas>=2,<3", "requests")  # a spec may hold commas
    assert config.lanes == ("eval=2",)


def test_a_flag_of_the_wrong_type_names_the_flag():
    with pytest.raises(ConfigError) as info:
        ServiceConfig.load(None, env={}, flags={"slots": "four"})
    assert str(info.value) == "--slots must be an integer, not str 'four'"


def test_settings_round_trip_through_the_json_serve_hands_its_runners():
    config = ServiceConfig(slots=3, groups=("gpu",), stdlib_allow=("+os",), cgroup="off",
                           preload=("json",), heartbeat_s=0.5, runners=2)
    back = ServiceConfig.from_json(config.to_json("runner"))
    for s in SETTINGS.values():
        expected = getattr(config, s.name) if "runner" in s.on else s.default
        assert getattr(back, s.name) == expected, s.name


def test_the_pool_gets_the_cgroup_settings():
    pool = ServiceConfig(cgroup="off", cgroup_root="/sbx", slots=2).pool()
    assert (pool.cgroup, pool.cgroup_root, pool.size) == ("off", "/sbx", 2)
    with pytest.raises(ConfigError, match="cgroup must be auto, v1, v2 or off, not 'on'"):
        ServiceConfig(cgroup="on")


@pytest.mark.parametrize("endpoint", ["foo", "tcp://host", "tcp://:7700", "tcp://h:port",
                                      "udp://h:1", "ipc://"])
def test_what_is_not_an_endpoint_is_said_before_zeromq_says_invalid_argument(endpoint):
    with pytest.raises(ConfigError, match="is not an endpoint: ipc://PATH or tcp://HOST:PORT"):
        check_endpoint(endpoint)


def test_http_must_be_host_and_port():
    with pytest.raises(ConfigError, match="http 'foo' must be HOST:PORT"):
        ServiceConfig(http="foo")


def test_the_readme_lists_every_setting_with_its_three_names():
    """[14.9] The README said the names agree; it now shows each one, derived as the code
    derives it."""
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for s in SETTINGS.values():
        assert f"| `{s.name}` | `{s.env}` | `{s.flag}` |" in readme, s.name


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"result_bytes": 5}, "result_bytes must be between 1 KiB and 64 MiB, not 5 bytes"),
        ({"stdout_bytes": 9 * 1024 * 1024},
         "stdout_bytes must be between 0 bytes and 8 MiB, not 9 MiB"),
        ({"timeout_s": 99999}, "timeout_s must be between 1 ms and 3600 s, not 99999 s"),
        ({"memory_mb": 1}, "memory_mb must be between 16 MB and 65536 MB, not 1 MB"),
    ],
)
def test_a_range_is_said_in_whole_numbers_with_units(changes, message):
    with pytest.raises(ConfigError) as caught:
        Limits().replace(**changes)
    assert str(caught.value) == message
