"""A host that denies namespaces (as a default Docker container does), simulated by a
seccomp filter on the whole test process tree (``denied_namespaces.py``): the jailed
runtimes cannot start and say why; the pyodide runtime runs with the layers that remain,
behind PyodideConfig(no_namespaces=True); the host check says which runtimes work here."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.jail

HELPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "denied_namespaces.py")


def run_scenario(name: str) -> dict:
    done = subprocess.run([sys.executable, HELPER, name], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def denied() -> dict:
    return run_scenario("jailed_runtimes")


@pytest.fixture(scope="module")
def pyodide_without_namespaces() -> dict:
    return run_scenario("pyodide_without_namespaces")


def test_the_python_jail_cannot_start_and_says_why(denied):
    assert "did not start" in denied["python"]
    assert "Operation not permitted" in denied["python"]


def test_the_python_jail_names_the_runtime_that_can_run_here(denied):
    assert "the python runtime cannot run without them (pyodide can" in denied["python"]


def test_pyodide_names_the_setting_and_what_it_gives_up(denied):
    message = denied["pyodide"]
    assert "denies the namespaces" in message and "EPERM" in message
    assert "no_namespaces=True" in message and "--pyodide-no-namespaces" in message
    assert "network" in message and "file system" in message


def test_the_host_check_says_which_runtimes_work_here_and_why_not(denied):
    lines = denied["hostcheck"]
    assert [line.split(":")[0] for line in lines] == ["python", "javascript", "pyodide"]
    assert lines[0].startswith("python: cannot run (this host denies namespaces, which its jail "
                               "needs: unshare")
    assert lines[2].startswith("pyodide: cannot run (this host denies namespaces: unshare")
    assert "--pyodide-no-namespaces" in lines[2]
    opted = denied["hostcheck_opted_in"]
    assert opted[2].startswith("pyodide: works (without namespaces, as configured: it gives up")


def test_pyodide_runs_without_namespaces(pyodide_without_namespaces):
    assert pyodide_without_namespaces["ok"] == ["ok", None]


@pytest.mark.parametrize("snippet, outcome", [
    ("process", ["error", "ImportError"]),  # CVE-2025-68668
    ("function", ["error", "JsException"]),  # code from strings
    ("system", ["error", "PermissionError"]),
    ("socket", ["error", "OSError"]),
    ("host_file", ["error", "FileNotFoundError"]),  # Pyodide's file system, not the host's
    ("timeout", ["timeout", None]),
    ("memory", ["memory_limit", None]),
])
def test_cant_escape_without_namespaces(pyodide_without_namespaces, snippet, outcome):
    assert pyodide_without_namespaces[snippet] == outcome


def test_the_worker_keeps_its_seccomp_filters_and_runs_as_nobody(pyodide_without_namespaces):
    worker = pyodide_without_namespaces["worker"]
    assert worker["comm"] == "node"
    assert worker["NoNewPrivs"] == "1"
    assert worker["Seccomp"] == "2"
    # the simulated host's filter, nsjail's jail-wide policy, the worker filter
    assert worker["Seccomp_filters"] == "3"
    if os.geteuid() == 0:
        assert worker["Uid"].split()[0] == "65534"
