"""The syscall policy and its two renderings: nsjail's jail-wide filter, the per-child BPF.

``jail_policy()`` gives the kafel text nsjail installs on the whole jail; ``child_filter()``
gives the compiled BPF program each child installs on itself, ``worker_filter()`` the one a
pyodide worker installs before it execs Node.js (see ``seccomp.policy``).
Only x86_64 is supported for now; other machines get ``UnsupportedArchitecture``.
"""

from __future__ import annotations

import functools
import platform

from seccomp import bpf, kafel, policy
from seccomp.bpf import PID_PLACEHOLDER, ChildFilter

__all__ = ["PID_PLACEHOLDER", "ChildFilter", "UnsupportedArchitecture", "child_filter", "jail_policy",
           "worker_filter"]


class UnsupportedArchitecture(RuntimeError):
    """The per-child filter is compiled for x86_64 only."""


def _check_machine() -> None:
    machine = platform.machine()
    if machine not in ("x86_64", "AMD64"):
        raise UnsupportedArchitecture(
            f"the seccomp policy supports x86_64 only; this machine is {machine}"
        )


@functools.cache
def jail_policy(files: bool = False) -> str:
    """The jail-wide allow-list in kafel syntax, for ``nsjail --seccomp_string``. ``files``:
    a jail whose children make their own directories (``policy.JAIL_FILES``)."""
    _check_machine()
    allow = policy.JAIL_ALLOW | (policy.JAIL_FILES if files else frozenset())
    return kafel.render(allow, policy.JAIL_ENOSYS)


@functools.cache
def child_filter() -> ChildFilter:
    """The per-child BPF program (pid not yet patched in) and its pid slots."""
    _check_machine()
    return bpf.compile_child(
        policy.CHILD_KILL, policy.CHILD_SELF_ONLY, policy.CHILD_THREADS_ONLY, policy.CHILD_ENOSYS,
        policy.CHILD_EPERM,
    )


@functools.cache
def worker_filter() -> ChildFilter:
    """The pyodide worker's BPF program: the child filter with Node.js's differences."""
    _check_machine()
    return bpf.compile_child(
        policy.WORKER_KILL, policy.WORKER_SELF_ONLY, policy.WORKER_THREADS_ONLY,
        policy.WORKER_ENOSYS, policy.WORKER_EPERM, policy.WORKER_NOTIFY,
    )
