"""The broker's own errors. The broker imports nothing of ``sandbox``: where the daemon and
the embedded client start a broker, they translate these into ``sandbox.errors.ConfigError``.

    BrokerError
    └── BrokerConfigError  an endpoint or key directory the broker cannot use
"""

from __future__ import annotations


class BrokerError(Exception):
    """Root of every error the broker raises."""


class BrokerConfigError(BrokerError, ValueError):
    """An endpoint the broker cannot bind, or a key directory it cannot read."""
