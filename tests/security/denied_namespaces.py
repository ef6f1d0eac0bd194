"""Run a scenario in a process the kernel denies namespaces to, as a default Docker
container's seccomp profile does: unshare, setns and a clone with any CLONE_NEW* flag fail
with EPERM, clone3 with ENOSYS (so libc falls back to clone). Prints one JSON line.

    python tests/security/denied_namespaces.py SCENARIO
"""

from __future__ import annotations

import json
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from runtimes import seccomp_filter  # noqa: E402
from sandbox.jail.namespaces import JAIL_NAMESPACES  # noqa: E402
from seccomp.syscalls import AUDIT_ARCH_X86_64, X86_64  # noqa: E402

CLONE_NEWTIME = 0x80
EPERM, ENOSYS = 1, 38
_I = struct.Struct("=HBBI")
LD, JEQ, JSET, RET = 0x20, 0x15, 0x45, 0x06
ALLOW, ERRNO = 0x7FFF0000, 0x00050000


def deny_namespaces_program() -> bytes:
    insns = [
        (LD, 0, 0, 4),                                   # 0: arch
        (JEQ, 1, 0, AUDIT_ARCH_X86_64),                  # 1: x86_64 -> 3
        (RET, 0, 0, ALLOW),                              # 2
        (LD, 0, 0, 0),                                   # 3: nr
        (JEQ, 5, 0, X86_64["unshare"]),                  # 4 -> 10
        (JEQ, 4, 0, X86_64["setns"]),                    # 5 -> 10
        (JEQ, 4, 0, X86_64["clone3"]),                   # 6 -> 11
        (JEQ, 4, 0, X86_64["clone"]),                    # 7 -> 12
        (RET, 0, 0, ALLOW),                              # 8
        (RET, 0, 0, ALLOW),                              # 9
        (RET, 0, 0, ERRNO | EPERM),                      # 10
        (RET, 0, 0, ERRNO | ENOSYS),                     # 11
        (LD, 0, 0, 16),                                  # 12: clone's flags (low word)
        (JSET, 0, 1, JAIL_NAMESPACES | CLONE_NEWTIME),   # 13: any CLONE_NEW* -> 14
        (RET, 0, 0, ERRNO | EPERM),                      # 14
        (RET, 0, 0, ALLOW),                              # 15
    ]
    return b"".join(_I.pack(*insn) for insn in insns)


def scenario_jailed_runtimes() -> dict:
    """What needs namespaces fails, and says why; the host check says which runtimes work."""
    from sandbox import PoolConfig, PyodideConfig, Sandbox
    from sandbox.service import hostcheck
    from sandbox.errors import JailError

    out: dict = {}
    for runtime in ("python", "pyodide"):
        try:
            Sandbox(PoolConfig(size=1), runtimes=(runtime,)).close()
            out[runtime] = "started"
        except JailError as exc:
            out[runtime] = str(exc)
    out["hostcheck"] = [v.line() for v in hostcheck.runtimes(PoolConfig())]
    out["hostcheck_opted_in"] = [v.line() for v in hostcheck.runtimes(
        PoolConfig(pyodide=PyodideConfig(no_namespaces=True)))]
    return out


def scenario_pyodide_without_namespaces() -> dict:
    """The pyodide runtime with the layers that remain."""
    import time
    from pathlib import Path

    from sandbox import PoolConfig, PyodideConfig, Sandbox

    snippets = {
        "ok": "return 6 * 7",
        "process": "from js import process\nreturn process.pid",
        "function": "from pyodide.ffi import to_js\n"
                    "return to_js([]).constructor.constructor('return process')()",
        "system": "import os\nreturn os.system('id')",
        "socket": "import socket\nsocket.socket().connect(('127.0.0.1', 9))",
        "host_file": "return open('/etc/hostname').read()",
        "timeout": "while True: pass",
        "memory": "return len(bytearray(1024 ** 3))",
    }
    config = PoolConfig(size=1, stdlib_allow=("*",), external_allow=("*",),
                        pyodide=PyodideConfig(no_namespaces=True, kill_grace_s=2.0))
    out: dict = {}
    with Sandbox(config, runtimes=("pyodide",)) as sb:
        for name, code in snippets.items():
            r = sb.run("pyodide", code, timeout_s=1, memory_mb=128)
            out[name] = [r.status.value, r.error.type if r.error else None]
        end = time.monotonic() + 120
        while sb.snapshot()["pyodide"]["counts"]["idle"] < 1 and time.monotonic() < end:
            time.sleep(0.05)
        workers = []
        for task in Path(f"/proc/{sb.snapshot()['pyodide']['jail_pid']}/task").iterdir():
            for zygote in (task / "children").read_text().split():
                for zt in Path(f"/proc/{zygote}/task").iterdir():
                    workers += (zt / "children").read_text().split()
        status = Path(f"/proc/{workers[0]}/status").read_text()
        out["worker"] = {line.split(":")[0]: line.split(":", 1)[1].strip() for line in
                         status.splitlines() if line.split(":")[0] in
                         ("Uid", "Seccomp", "Seccomp_filters", "NoNewPrivs")}
        out["worker"]["comm"] = Path(f"/proc/{workers[0]}/comm").read_text().strip()
    return out


if __name__ == "__main__":
    seccomp_filter.install(deny_namespaces_program(), (), os.getpid())
    result = globals()[f"scenario_{sys.argv[1]}"]()
    sys.stdout.write(json.dumps(result) + "\n")
