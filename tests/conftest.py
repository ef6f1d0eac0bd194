"""Shared fixtures. Integration and security tests use real jails through one sandbox."""

from __future__ import annotations

import os

import pytest

# Set before any jail starts: tests assert that the jail never sees it.
HOST_SECRET = "host-secret-7d1f0c"
os.environ["SANDBOX_TEST_HOST_SECRET"] = HOST_SECRET


@pytest.fixture(scope="session")
def sandbox():
    """Every import allowed: the language layer is opened so that the contract and security
    tests exercise the kernel layers on their own (each layer must hold by itself)."""
    from sandbox import PoolConfig, Sandbox

    with Sandbox(PoolConfig(size=2, stdlib_allow=("*",), external_allow=("*",))) as sb:
        yield sb


@pytest.fixture(scope="session")
def default_sandbox():
    """The defaults an operator gets: the curated import allow-list."""
    from sandbox import PoolConfig, Sandbox

    with Sandbox(PoolConfig(size=2)) as sb:
        yield sb
