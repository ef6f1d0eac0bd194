from __future__ import annotations

import pytest

from sandbox import ConfigError, Limits, PoolConfig
from sandbox.config import canonical_runtime


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
