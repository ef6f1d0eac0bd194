"""Each test names a capability the sandbox denies and asserts the exact outcome."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

from sandbox import Status

# every test runs as tasks and as session calls (tests/security/conftest.py)
SESSIONS_TOO = True


def test_cant_read_etc_shadow(sandbox):
    r = sandbox.run("python", "return open('/etc/shadow').read()")
    assert r.status is Status.ERROR
    assert r.error.type == "FileNotFoundError"


def test_cant_read_root_home(sandbox, tmp_path):
    marker = Path("/root/.snippet-sandbox-marker")
    marker.write_text("secret")
    try:
        r = sandbox.run("python", f"return open({str(marker)!r}).read()")
        assert r.status is Status.ERROR
        assert r.error.type == "FileNotFoundError"
        r = sandbox.run("python", "import os\nreturn os.listdir('/root')")
        assert (r.status, r.error.type) == (Status.ERROR, "FileNotFoundError")  # no /root at all
    finally:
        marker.unlink()


def test_cant_read_host_proc(sandbox):
    r = sandbox.run("python", "return open('/proc/1/environ', 'rb').read()")
    assert r.status is Status.ERROR
    assert r.error.type == "FileNotFoundError"


def test_cant_see_host_environment(sandbox):
    secret = os.environ["SANDBOX_TEST_HOST_SECRET"]  # set by conftest before any jail starts
    r = sandbox.run("python", "import os\nreturn dict(os.environ)")
    assert r.status is Status.OK
    assert secret not in repr(r.value)
    assert "PATH" not in r.value
    assert r.value["HOME"] == "/home/sandbox"  # the jail's own, for library code that asks


def test_cant_open_sockets(sandbox):
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(2.0)
    port = listener.getsockname()[1]
    accepted: list[object] = []

    def accept() -> None:
        try:
            accepted.append(listener.accept())
        except OSError:
            pass

    t = threading.Thread(target=accept)
    t.start()
    try:
        r = sandbox.run(
            "python",
            f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
            "s.sendall(b'leak')\nreturn 'connected'",
        )
        # the socket is refused (EPERM, so library probes can fall back: seccomp/policy.py)
        assert (r.status, r.error.type) == (Status.ERROR, "PermissionError")
        t.join()
        assert accepted == []
    finally:
        listener.close()
        t.join()


# The rest end as a kill (violation), not an error: no library makes processes, execs or
# signals others from a child by accident, so only a snippet probing the walls does, and it
# is stopped at its first probe (seccomp/policy.py).


KILLED = "killed for a forbidden operation (seccomp: SIGSYS)"


def said(r):
    """A violation's message without a session's note ("; session ... is lost with it"),
    which the session tests assert: these run as a task and as a session's call."""
    return r.message.split("; session ", 1)[0]


def test_cant_fork(sandbox):
    """[25.7] The violation now says which operation the snippet attempted."""
    r = sandbox.run("python", "import os\nos.fork()\nreturn 'forked'")
    assert (r.status, said(r)) == (Status.VIOLATION, f"{KILLED}: os.fork")


def test_cant_exec(sandbox):
    r = sandbox.run("python", "import os\nos.execv('/usr/bin/python3', ['python3', '-c', '1'])")
    assert (r.status, said(r)) == (Status.VIOLATION, f"{KILLED}: os.exec")


def test_cant_spawn_subprocess(sandbox):
    r = sandbox.run("python", "import subprocess\nreturn subprocess.run(['true']).returncode")
    assert r.status in (Status.VIOLATION, Status.ERROR)  # ERROR: _posixsubprocess is absent
    assert r.value is None


def test_cant_signal_other_processes(sandbox):
    r = sandbox.run("python", "import os, signal\nos.kill(1, signal.SIGKILL)")
    assert (r.status, said(r)) == (Status.VIOLATION, f"{KILLED}: os.kill")


def test_a_violation_after_printing_keeps_the_output_and_names_the_operation(sandbox):
    r = sandbox.run("python", "import os\nprint('before')\nos.fork()")
    assert (r.status, said(r), r.stdout) == (Status.VIOLATION, f"{KILLED}: os.fork",
                                               "before\n")


def test_cant_write_outside(sandbox):
    r = sandbox.run("python", "open('/tmp/escape', 'w').write('x')\nreturn 'wrote'")
    assert r.status is Status.ERROR
    assert r.error.type in ("FileNotFoundError", "OSError", "PermissionError")
    r = sandbox.run("python", "open('/usr/lib/escape', 'w').write('x')\nreturn 'wrote'")
    assert r.status is Status.ERROR
    assert not Path("/tmp/escape").exists()


def test_cant_outlive_timeout_ignoring_sigterm(sandbox):
    code = "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True:\n    pass"
    r = sandbox.run("python", code, timeout_s=0.5)
    assert r.status is Status.TIMEOUT


def test_cant_outlive_timeout_sleeping(sandbox):
    r = sandbox.run("python", "import time\ntime.sleep(60)", timeout_s=0.3)
    assert r.status is Status.TIMEOUT


def test_cant_allocate_beyond_memory_limit(sandbox):
    r = sandbox.run("python", "x = bytearray(1024 ** 3)\nreturn len(x)", memory_mb=128)
    assert r.status is Status.MEMORY_LIMIT


def test_cant_leak_state_to_next_task(sandbox):
    first = sandbox.run(
        "python",
        "import builtins, json\nbuiltins.LEAKED = 'yes'\njson.LEAKED = 'yes'\n"
        "json.dumps = lambda *a, **k: 'poisoned'\nreturn 'polluted'",
    )
    assert first.status is Status.OK
    for _ in range(3):  # whichever child runs next must be clean
        r = sandbox.run(
            "python",
            "import builtins, json\n"
            "return [hasattr(builtins, 'LEAKED'), hasattr(json, 'LEAKED'), json.dumps(1)]",
        )
        assert r.status is Status.OK
        assert r.value == [False, False, "1"]


def _descendants(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found += [int(child), *_descendants(int(child))]
    return found


def test_no_process_of_a_task_survives_it(sandbox):
    import time

    for code in ("return 1", "import os\nos.fork()", "while True: pass"):
        sandbox.run("python", code, timeout_s=0.3)
    # nsjail -> zygote -> idle children: nothing else may exist once the pool settles
    expected = 1 + sandbox.config.size
    for _ in range(100):
        pool = sandbox.snapshot()["python"]
        procs = _descendants(pool["jail_pid"])
        if len(procs) == expected and pool["counts"]["idle"] == sandbox.config.size:
            break
        time.sleep(0.02)
    assert len(procs) == expected


def test_cant_flood_the_host_with_output(sandbox):
    r = sandbox.run("python", "print('x' * 50_000_000)\nreturn 1")
    assert r.status is Status.OK and r.value == 1
    assert r.truncated
    assert len(r.stdout.encode()) <= 1024 * 1024


def test_cant_start_threads(sandbox):
    r = sandbox.run("python", "import threading\nthreading.Thread(target=print).start()")
    assert r.status is Status.ERROR
    assert r.error.type == "RuntimeError"
