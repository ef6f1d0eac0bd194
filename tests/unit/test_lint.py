"""The lint is part of the test suite, so CI and a developer run the same gate."""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_ruff_finds_nothing():
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "sandbox", "broker", "runtimes",
         "seccomp", "benchmarks", "tests"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_public_surface_is_pinned():
    import sandbox

    assert sorted(sandbox.__all__) == [
        "AsyncClient", "Client", "ClosedError", "ConfigError", "CurveClient", "ErrorInfo",
        "JailError", "Limits", "PoolConfig", "PyodideConfig", "Result", "Sandbox", "SandboxError",
        "Session", "SessionError", "Status", "TaskFailed",
    ]
    for name in sandbox.__all__:
        assert getattr(sandbox, name) is not None


def test_mypy_finds_nothing():
    """Types are checked over the whole tree (settings in pyproject.toml)."""
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_strict_finds_nothing_in_the_product():
    """The product itself (not the tests, not the harness) passes ``mypy --strict``."""
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--strict", "sandbox", "broker",
         "runtimes", "seccomp"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
