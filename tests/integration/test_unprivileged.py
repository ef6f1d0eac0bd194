"""Running as a user without root (issue 14, item 5), tried for real as ``nobody``.

The interpreter must be one that user can run with this package installed:
``SANDBOX_TEST_UNPRIVILEGED_PYTHON`` if set, else ``sys.executable`` if nobody can run it,
else a virtualenv made for this session in /tmp from the system's ``/usr/bin/python3``, with
the package installed from a copy of this source tree (as a wheel would install it). Where
none of these works, or there is no ``runuser``, or the tests do not run as root (who alone
can become nobody), the tests are skipped with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = "/usr/bin/python3"
_python: list[str] = []  # the interpreter the module's fixture found or made


def _as_nobody(*argv: str, code: str = "", home: str = "/tmp") -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", "nobody", "--", "env", "-i", "PATH=/usr/bin:/bin",
                           f"HOME={home}", *argv], input=code, capture_output=True, text=True,
                          timeout=120, cwd="/")  # the installed package, not a source tree here


def _runs_for_nobody(python: str) -> str:
    """Why nobody cannot import this package with ``python``, or ""."""
    probe = _as_nobody(python, "-c", "import sandbox")
    return "" if probe.returncode == 0 else probe.stderr.strip()[-200:]


def _venv_for_nobody(where: str) -> str:
    """A virtualenv nobody can run, with this package installed from a copy of the source
    (the tree itself stays as it is: setuptools builds in place)."""
    source = os.path.join(where, "src")
    os.makedirs(source)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source)
    for name in ("sandbox", "broker", "runtimes", "seccomp", "benchmarks"):
        shutil.copytree(ROOT / name, os.path.join(source, name),
                        ignore=shutil.ignore_patterns("__pycache__", "results"))
    venv = os.path.join(where, "venv")
    subprocess.run([SYSTEM_PYTHON, "-m", "venv", venv], check=True, capture_output=True,
                   timeout=120)
    subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q", source], check=True,
                   capture_output=True, timeout=600)
    for top, dirs, files in os.walk(where):
        for name in dirs + files:
            path = os.path.join(top, name)
            if os.path.islink(path):
                continue
            mode = os.stat(path).st_mode
            if name in dirs:
                mode |= 0o055  # others may enter and list
            else:
                mode |= 0o044 | (0o011 if mode & 0o100 else 0)  # read, and run what runs
            os.chmod(path, mode)
    os.chmod(where, 0o755)
    return os.path.join(venv, "bin", "python")


@pytest.fixture(scope="module")
def home() -> Iterator[str]:
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("needs root and runuser to become nobody")
    made = None
    python = os.environ.get("SANDBOX_TEST_UNPRIVILEGED_PYTHON", "")
    if not python:
        python = sys.executable
        if _runs_for_nobody(python) and os.path.exists(SYSTEM_PYTHON):
            made = tempfile.mkdtemp(prefix="sbx-unprivileged-", dir="/tmp")
            try:
                python = _venv_for_nobody(made)
            except (OSError, subprocess.SubprocessError) as exc:
                shutil.rmtree(made, ignore_errors=True)
                pytest.skip(f"could not make a virtualenv nobody can run from {SYSTEM_PYTHON}: "
                            f"{exc}")
    why = _runs_for_nobody(python)
    if why:
        if made:
            shutil.rmtree(made, ignore_errors=True)
        pytest.skip(f"nobody cannot run {python} with this package (set "
                    f"SANDBOX_TEST_UNPRIVILEGED_PYTHON): {why}")
    _python[:] = [python]
    directory = tempfile.mkdtemp(prefix="sbx-nobody-", dir="/tmp")
    shutil.chown(directory, "nobody")
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        if made:
            shutil.rmtree(made, ignore_errors=True)


def _exec(home: str, *args: str, code: str) -> subprocess.CompletedProcess:
    return _as_nobody(_python[0], "-m", "sandbox", "exec", "-r", "python", *args, "-",
                      code=code, home=home)


def test_without_a_cgroup_of_its_own_the_user_is_told_what_failed_and_what_to_do(home):
    """[14.5] As a non-root user the CLI failed with `mkdir('/sys/fs/cgroup/memory/...
    /NSJAIL.N') failed: Permission denied` and no hint."""
    done = _exec(home, code="return 1")
    assert done.returncode == 1
    first, *host = done.stderr.splitlines()  # the reason, then what runs on this host
    assert first.startswith("sandbox: the python jail did not start: cannot set up the "
                            "jail's cgroup: ")  # one line of it: nsjail never ran
    assert "is not writable by this user (uid 65534)" in first
    assert "--cgroup off" in first and "--cgroup-root" in first
    # and the host report agrees: no runtime can run for this user with the layer on
    assert host[0] == "on this host:"
    assert host[1].startswith("  python: cannot run (cannot set up the jail's cgroup: ")


def test_with_the_cgroup_layer_off_it_runs_and_the_per_task_limits_still_hold(home):
    done = _exec(home, "--cgroup", "off", "--json", code="import uuid\nreturn str(uuid.uuid4())[:1]")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "ok"
    bomb = _exec(home, "--cgroup", "off", "--json", "--memory", "64", code="x = bytearray(1 << 30)")
    assert json.loads(bomb.stdout)["status"] == "memory_limit"
    fork = _exec(home, "--cgroup", "off", "--json", "--stdlib-allow", "+os", code="import os\nos.fork()")
    assert json.loads(fork.stdout)["status"] == "violation"


def test_a_delegated_cgroup_gives_the_user_the_cgroup_layer_back(home):
    """cgroup_root names a cgroup root handed to the user (v1: the same path in the memory
    and pids hierarchies); the jail's cgroup is made under it."""
    from sandbox.jail.launch import _cgroup_layout

    layout = _cgroup_layout()
    if layout is None or layout.version != 1:
        pytest.skip("a v1 hierarchy is delegated here by making it nobody's; v2 delegation "
                    "(systemd's Delegate=) is not set up by this test")
    name = f"sbx-nobody-{os.getpid()}"
    made = [Path(layout.memory_mount, name), Path(layout.pids_mount, name)]
    for d in made:
        d.mkdir()
        for path in (d, *d.iterdir()):
            os.chown(path, 65534, -1)
    try:
        done = _exec(home, "--cgroup-root", f"/{name}", "--json", "--memory", "64",
                     code="return 1")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["status"] == "ok"
        assert all((d / "snippet-sandbox").is_dir() for d in made)
    finally:
        for d in made:
            for sub in sorted(d.rglob("*"), reverse=True):
                if sub.is_dir():
                    sub.rmdir()
            d.rmdir()
