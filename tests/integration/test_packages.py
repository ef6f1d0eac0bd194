"""Third-party packages: installed once into their own environment, mounted read-only."""

from __future__ import annotations

import os
import re
import shutil
import tempfile


import pytest

from sandbox import PoolConfig, Sandbox, Status
from sandbox.jail import packages
from sandbox.errors import ConfigError


@pytest.fixture(scope="module")
def env():
    # a directory the jail's user (nobody, when we are root) can reach: not under pytest's
    # 0700 tmp root
    root = tempfile.mkdtemp(prefix="sandbox-packages-test-")
    os.chmod(root, 0o755)
    directory = os.path.join(root, "packages")
    # small, pure Python, from PyPI (dateutil looks the user up and reads time zones)
    packages.install(["six", "python-dateutil"], directory, quiet=True)
    yield directory
    shutil.rmtree(root, ignore_errors=True)


def test_a_package_installed_and_used_from_a_snippet(env):
    config = PoolConfig(size=1, external_allow=("six",), packages_dir=env, preload=("six",))
    with Sandbox(config) as sb:
        r = sb.run("python", "import six\nreturn [six.PY3, six.__file__]")
        assert r.status is Status.OK, r.message
        assert r.value[0] is True and r.value[1].startswith("/sandbox/packages/")


def test_dateutil_parses_and_finds_time_zones(env):
    """Ordinary library code that looks the user up and reads the zone database runs."""
    config = PoolConfig(size=1, external_allow=("dateutil",), packages_dir=env)
    with Sandbox(config) as sb:
        r = sb.run("python", "from dateutil import parser\nimport dateutil.tz\n"
                             "d = parser.parse('2026-12-01T10:00:00+01:00')\n"
                             "return [d.isoformat(), dateutil.tz.gettz('Europe/Paris') is not None]")
        assert (r.status, r.value) == (Status.OK, ["2026-12-01T10:00:00+01:00", True]), r.message


def test_an_installed_package_is_still_subject_to_the_allow_list(env):
    with Sandbox(PoolConfig(size=1, packages_dir=env)) as sb:
        r = sb.run("python", "import six")
        assert r.status is Status.ERROR and "external_allow" in r.error.message


def test_the_environment_is_read_only_in_the_jail(env):
    config = PoolConfig(size=1, stdlib_allow=("*",), external_allow=("*",), packages_dir=env)
    with Sandbox(config) as sb:
        r = sb.run("python", "open('/sandbox/packages/six.py', 'a').write('x')")
        assert r.status is Status.ERROR and r.error.type in ("PermissionError", "OSError")


def test_ensure_reinstalls_only_when_the_specs_change(env):
    assert packages.installed_specs(env) == ["python-dateutil", "six"]
    assert packages.ensure(["six ", "python-dateutil"], env) is False  # same list, other spacing


def test_a_failed_install_keeps_the_previous_environment(env):
    with pytest.raises(ConfigError, match="pip could not install"):
        packages.install(["this-package-does-not-exist-snippet-sandbox==0.0.0"], env, quiet=True)
    assert packages.installed_specs(env) == ["python-dateutil", "six"]
    assert os.path.exists(os.path.join(env, "six.py"))


def test_a_preload_that_fails_does_not_stop_the_pool():
    with Sandbox(PoolConfig(size=1, preload=("no_such_module_here",))) as sb:
        assert sb.run("python", "return 1").value == 1


def test_a_missing_environment_is_a_clear_error(tmp_path):
    from sandbox.errors import JailError

    with pytest.raises(JailError, match="does not exist"):
        Sandbox(PoolConfig(size=1, packages_dir=str(tmp_path / "nope")))


@pytest.mark.skipif(os.geteuid() != 0, reason="as root, the jail's user is nobody")
def test_an_environment_nobody_can_reach_is_a_clear_error(env, tmp_path):
    from sandbox.errors import JailError

    hidden = tmp_path / "private"
    hidden.mkdir(mode=0o700)
    shutil.copytree(env, hidden / "packages")
    with pytest.raises(JailError, match="not searchable by others"):
        Sandbox(PoolConfig(size=1, packages_dir=str(hidden / "packages")))


def test_packages_install_adds_and_remove_takes_away(tmp_path):
    """[14.10] There was no `packages remove`, and `install` replaced what was there."""
    import subprocess
    import sys

    directory = str(tmp_path / "env")

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "sandbox", "packages", *args,
                               "--packages-dir", directory], capture_output=True, text=True,
                              timeout=600, stdin=subprocess.DEVNULL)

    assert cli("install", "six").returncode == 0
    assert cli("install", "python-dateutil").returncode == 0
    assert packages.installed_specs(directory) == ["python-dateutil", "six"]
    removed = cli("remove", "Six")
    assert removed.returncode == 0, removed.stderr
    assert packages.installed_specs(directory) == ["python-dateutil"]
    missing = cli("remove", "numpy")
    assert (missing.returncode, missing.stderr) == (
        1, f"sandbox: {directory} holds no numpy (it holds: python-dateutil)\n")
    listed = cli("list")  # [25.9] with versions, and what python-dateutil pulls in (six or
    lines = listed.stdout.splitlines()  # tzdata, by its release)
    shapes = [re.sub(r"^  ([a-z0-9-]+) [0-9][^ ]*", lambda m: "  python-dateutil V" if m.group(1)
                     == "python-dateutil" else "  DEP V", line) for line in lines[1:]]
    assert (listed.returncode, lines[0], shapes[0], set(shapes[1:])) == (
        0, f"{directory}:", "  python-dateutil V", {"  DEP V (pulled in by python-dateutil)"})
