"""Render the jail's allow-list in kafel, the policy language nsjail reads (``--seccomp_string``)."""

from __future__ import annotations

from seccomp.policy import EPERM, KAFEL_NAMES


def render(allow: frozenset[str], enosys: frozenset[str]) -> str:
    """One kafel policy: ``allow`` allowed, ``enosys`` failing with ENOSYS, the rest EPERM."""
    allowed = ", ".join(sorted(KAFEL_NAMES.get(name, name) for name in allow))
    missing = ", ".join(sorted(KAFEL_NAMES.get(name, name) for name in enosys))
    return (
        f"POLICY jail {{ ALLOW {{ {allowed} }}, ERRNO(38) {{ {missing} }} }} "
        f"USE jail DEFAULT ERRNO({EPERM})"
    )
