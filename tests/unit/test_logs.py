"""How the programs log: the settings, and the two formats of a line."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest

from sandbox.config import ServiceConfig
from sandbox.errors import ConfigError
from sandbox.service import logs


@pytest.fixture
def restore_root_logger():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_the_level_and_format_are_settings_of_the_file_the_environment_and_the_flags(tmp_path):
    config = tmp_path / "serve.toml"
    config.write_text('log_level = "warning"\nlog_format = "json"\n')
    assert ServiceConfig.load(str(config), env={}).log_level == "warning"
    assert ServiceConfig.load(env={"SANDBOX_LOG_LEVEL": "debug"}).log_level == "debug"
    loaded = ServiceConfig.load(env={}, flags={"log_level": "error", "log_format": "json"},
                                command="runner")
    assert (loaded.log_level, loaded.log_format) == ("error", "json")
    assert ServiceConfig.load(env={}).log_level == "info"


def test_an_unknown_level_is_refused_naming_the_levels():
    with pytest.raises(ConfigError) as caught:
        ServiceConfig(log_level="loud")
    assert str(caught.value) == "log_level must be debug, info, warning or error, not 'loud'"


def test_a_text_line_has_the_time_and_the_level(restore_root_logger):
    out = io.StringIO()
    logs.configure("info", "text", out)
    logging.getLogger("sandbox.test").info("runner %s registered", "a")
    logging.getLogger("sandbox.test").debug("not shown at info")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO sandbox\.test: runner a "
                        r"registered\n", out.getvalue())


def test_a_json_line_is_one_object(restore_root_logger):
    out = io.StringIO()
    logs.configure("warning", "json", out)
    logging.getLogger("sandbox.test").info("not shown at warning")
    logging.getLogger("sandbox.test").warning("jail %s ended", "python")
    line = json.loads(out.getvalue())
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line.pop("time"))
    assert line == {"level": "WARNING", "logger": "sandbox.test", "message": "jail python ended"}
