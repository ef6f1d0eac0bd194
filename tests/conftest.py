"""Shared fixtures. Integration and security tests use real jails through one sandbox."""

from __future__ import annotations

import os

import pytest

# Set before any jail starts: tests assert that the jail never sees it.
HOST_SECRET = "host-secret-7d1f0c"
os.environ["SANDBOX_TEST_HOST_SECRET"] = HOST_SECRET


@pytest.fixture(scope="session")
def sandbox():
    from sandbox import PoolConfig, Sandbox

    with Sandbox(PoolConfig(size=2)) as sb:
        yield sb
