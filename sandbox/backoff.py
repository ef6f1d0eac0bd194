"""How long a peer waits before its next try after ``failures`` failed ones in a row: 1 s,
doubling to 32 s (zguide's Paranoid Pirate). One rule for the runner reconnecting to its
broker, the n8n runner reconnecting to n8n, and the daemon restarting a local runner.

A pure function of the failure count: the caller owns its clock and counts. A retry library
(tenacity, backoff) wraps a call in its own loop and sleeps; our loops are poll loops that
must keep serving their other fds meanwhile, so only the schedule is shared.
"""

from __future__ import annotations

BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)


def delay_s(failures: int) -> float:
    """The wait before the next try, ``failures`` (0 or more) tries having failed in a row."""
    return BACKOFF_S[min(max(failures, 0), len(BACKOFF_S) - 1)]
