"""Whether this host lets a process of ours create the namespaces the jail needs.

A default Docker container (its seccomp profile, no CAP_SYS_ADMIN) or a kernel with
unprivileged user namespaces off refuses them, and then no jail with them starts.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os

# The namespaces nsjail asks for (linux/sched.h).
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
JAIL_NAMESPACES = (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER
                   | CLONE_NEWPID | CLONE_NEWNET)
# loaded before any fork: the probe child of a threaded process must not take the loader's lock
_libc = ctypes.CDLL(None, use_errno=True)


@functools.cache
def denied() -> str | None:
    """None if a process of ours may create the jail's namespaces, else why it may not.

    Probed once per process, in a forked child (unshare needs a single-threaded caller for a
    user namespace, and the namespaces it makes must not be ours)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the probe child
        code = 0
        try:
            if _libc.unshare(JAIL_NAMESPACES) != 0:
                code = ctypes.get_errno() or 255
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        return None
    if os.WIFEXITED(status):
        code = os.WEXITSTATUS(status)
        name = errno.errorcode.get(code, str(code))
        return (f"unshare of the user, mount, pid, network, ipc, uts and cgroup namespaces "
                f"fails with {name} ({os.strerror(code)})")
    return "the namespace probe died"
