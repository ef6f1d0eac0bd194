"""Pure-Python packages for the pyodide runtime: wheels from PyPI, py-compiled, locked,
loaded offline by Pyodide's own loadPackage from a read-only mount."""

from __future__ import annotations

import json
import os
import shutil
import tempfile

import pytest

from sandbox import PoolConfig, PyodideConfig, Sandbox, Status
from sandbox.pyodide import packages as pyodide_packages
from sandbox.errors import ConfigError

pytestmark = pytest.mark.jail


@pytest.fixture(scope="module")
def env():
    # reachable by the jail's user (nobody, when we are root): not under pytest's 0700 tmp
    root = tempfile.mkdtemp(prefix="sandbox-pyodide-packages-test-")
    os.chmod(root, 0o755)
    directory = os.path.join(root, "env")
    pyodide_packages.install(["six"], directory, quiet=True)
    yield directory
    shutil.rmtree(root, ignore_errors=True)


def test_the_environment_holds_py_compiled_wheels_and_a_lock_file(env):
    with open(os.path.join(env, "pyodide-lock.json")) as f:
        lock = json.load(f)
    assert sorted(lock["packages"]) == ["six"]
    entry = lock["packages"]["six"]
    assert entry["file_name"].endswith("-cp311-none-any.whl")  # py-compiled for 3.11
    assert os.path.isfile(os.path.join(env, entry["file_name"]))
    assert lock["info"]["version"] == "0.25.1"
    assert pyodide_packages.installed(env)["specs"] == ["six"]


def test_a_package_is_loaded_offline_and_imported_from_bytecode(env):
    config = PoolConfig(size=1, external_allow=("six",), pyodide=PyodideConfig(packages_dir=env))
    with Sandbox(config, runtimes=("pyodide",)) as sb:
        r = sb.run("pyodide", "import six\nreturn [six.PY3, six.__file__]")
        assert r.status is Status.OK, r.message
        assert r.value == [True, "/lib/python3.11/site-packages/six.pyc"]
        r = sb.run("pyodide", "open('/lib/python3.11/site-packages/six.pyc', 'ab').write(b'x')")
        assert r.status is Status.ERROR
        assert r.error.type == "PermissionError"


def test_an_installed_package_is_still_subject_to_the_allow_list(env):
    config = PoolConfig(size=1, pyodide=PyodideConfig(packages_dir=env))
    with Sandbox(config, runtimes=("pyodide",)) as sb:
        r = sb.run("pyodide", "import six")
        assert r.status is Status.ERROR
        assert r.error.type == "ImportDenied"
        assert "external_allow" in r.error.message


def test_a_package_with_compiled_parts_only_is_a_clear_error(env):
    with pytest.raises(ConfigError, match="no pure-Python wheels"):
        pyodide_packages.install(["numpy"], env, quiet=True)
    assert pyodide_packages.installed(env)["specs"] == ["six"]  # the previous one stays


def test_a_directory_without_an_environment_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="no pyodide packages environment"):
        pyodide_packages.worker_settings(str(tmp_path), "/sandbox/pyodide-packages")
