"""The pools through real jails and real processes: the faults it must survive, each a
defect found by trying the service under load and faults (issue 11), now a test."""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from sandbox import ConfigError, Limits, PoolConfig, Sandbox, Status
from sandbox.client import Client
from sandbox.config import runner_endpoint_for

MiB = 1024 * 1024


def _wait(predicate, timeout_s: float = 10.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"


def _jail_cgroups(zygote_pid: int) -> list[str]:
    return glob.glob(f"/sys/fs/cgroup/**/snippet-sandbox/NSJAIL.{zygote_pid}", recursive=True)


# -- the cgroup's OOM killer reads as memory_limit --------------------------------------------


def test_a_cgroup_oom_kill_is_memory_limit():
    with Sandbox(PoolConfig(size=1, jail_memory_mb=256)) as sb:
        r = sb.run("python", "x = b'x' * (400 * 1024 * 1024)\nreturn len(x)", memory_mb=2048,
                   timeout_s=20)
        assert (r.status, r.message) == (Status.MEMORY_LIMIT,
                                         "killed by the kernel for exceeding the jail's memory cap")
        assert sb.run("python", "return 1").value == 1


# -- the frame cap and the limits agree -------------------------------------------------------


def test_the_limits_cannot_ask_for_a_result_no_frame_can_carry():
    from broker.protocol import MAX_FRAME_BYTES
    from sandbox.config import MAX_RESULT_BYTES, MAX_STDOUT_BYTES

    largest = Limits(result_bytes=MAX_RESULT_BYTES, stdout_bytes=MAX_STDOUT_BYTES)
    assert largest.envelope_bytes + 64 * 1024 < MAX_FRAME_BYTES
    with pytest.raises(ConfigError, match="result_bytes must be between"):
        Limits(result_bytes=MAX_RESULT_BYTES + 1)


def test_a_large_result_crosses_the_runner_and_its_neighbours_do_not_notice():
    with Client(pool=PoolConfig(size=2), runtimes=("python",)) as client:
        big = client.submit("python", "return b'x' * (60 * 1024 * 1024)", result_bytes=64 * MiB,
                            memory_mb=1024, timeout_s=30)
        small = client.submit("python", "return 2", timeout_s=30)
        over = client.submit("python", "return b'x' * (2 * 1024 * 1024)", result_bytes=MiB,
                             timeout_s=30)
        r = big.result()
        assert (r.status, len(r.value)) == (Status.OK, 60 * MiB)
        assert small.result().value == 2
        r = over.result()
        assert r.status is Status.OUTPUT_LIMIT
        assert client.run("python", "return 3").value == 3


# -- what dead processes leave is reclaimed ----------------------------------------------------


def test_a_killed_runner_leaves_a_staging_directory_the_next_start_removes(tmp_path):
    runner = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "runner", "--connect", f"ipc://{tmp_path}/none.sock",
         "--runtimes", "python", "--slots", "1"], stdin=subprocess.DEVNULL)
    pattern = os.path.join(tempfile.gettempdir(), f"snippet-sandbox-{runner.pid}-*")
    try:
        assert _wait(lambda: glob.glob(pattern), 30)
        time.sleep(0.5)
    finally:
        runner.kill()
        runner.wait()
    assert glob.glob(pattern)  # left behind by the kill
    from sandbox.jail.mounts import reclaim_staging

    reclaim_staging()  # what every start does first
    assert glob.glob(pattern) == []


def test_a_killed_nsjail_leaves_cgroups_the_restart_removes():
    with Sandbox(PoolConfig(size=1)) as sb:
        before = sb.snapshot()["python"]
        dirs = _jail_cgroups(before["zygote_pid"])
        assert dirs  # memory and pids
        os.kill(before["jail_pid"], signal.SIGKILL)
        assert _wait(lambda: sb.snapshot()["python"]["jail_pid"] not in (0, before["jail_pid"]), 15)
        assert sb.run("python", "return 1").value == 1
        assert [d for d in dirs if os.path.exists(d)] == []


def test_a_clean_close_leaves_no_jail_cgroup():
    sb = Sandbox(PoolConfig(size=1))
    zygote = sb.snapshot()["python"]["zygote_pid"]
    assert _jail_cgroups(zygote)
    sb.close()
    assert _jail_cgroups(zygote) == []


# -- bad requests never leak a child ------------------------------------------------------------


def test_a_lone_surrogate_is_rejected_and_the_pool_keeps_its_children(default_sandbox):
    for _ in range(3):
        r = default_sandbox.run("python", "return '\ud800'")
        assert r.status is Status.REJECTED
    assert [default_sandbox.run("python", "return 1").value for _ in range(4)] == [1, 1, 1, 1]


# -- say what happened ----------------------------------------------------------------------------


def test_a_snippet_that_closes_its_channel_is_not_blamed_on_a_signal(sandbox):
    r = sandbox.run("python", "import os\nos.closerange(0, 1024)\nwhile True: pass", timeout_s=5)
    assert (r.status, r.message) == (
        Status.CRASHED, "the snippet closed its result channel without a result; the runner killed it")


@pytest.mark.parametrize("victim, reason", [
    ("zygote_pid", "the python jail died while running the task: nsjail exited with code 137"),
    ("jail_pid", "the python jail died while running the task: nsjail was killed by SIGKILL"),
])
def test_a_jail_that_dies_under_a_task_says_which_part_died(victim, reason):
    with Sandbox(PoolConfig(size=1)) as sb:
        pid = sb.snapshot()["python"][victim]
        results = []
        t = threading.Thread(target=lambda: results.append(
            sb.run("python", "import time\ntime.sleep(10)", timeout_s=20)))
        t.start()
        time.sleep(0.5)
        os.kill(pid, signal.SIGKILL)
        t.join()
        assert results[0].status is Status.CRASHED
        assert results[0].message.startswith(reason)
        assert sb.run("python", "return 5", timeout_s=10).value == 5


# -- the daemon's runners live and die with it -------------------------------------------------


def _serve(tmp_path, *extra: str) -> tuple[subprocess.Popen, str]:
    sock = f"{tmp_path}/serve.sock"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "serve", "--bind", f"ipc://{sock}", "--http", "",
         "--runners", "1", "--slots", "2", "--runtimes", "python", *extra],
        stdin=subprocess.DEVNULL, start_new_session=True)
    assert _wait(lambda: os.path.exists(sock), 30)
    return proc, f"ipc://{sock}"


def _runners_of(endpoint: str) -> list[int]:
    # local runners connect to the daemon's runner endpoint, beside its client one
    runners = runner_endpoint_for(endpoint)
    out = subprocess.run(["pgrep", "-f", f"sandbox runner --connect {runners}"],
                         capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def test_kill_9_of_serve_takes_its_runners_with_it(tmp_path):
    proc, endpoint = _serve(tmp_path)
    try:
        with Client(endpoint) as client:
            assert client.run("python", "return 1").value == 1
        runners = _runners_of(endpoint)
        assert len(runners) == 1
    finally:
        proc.kill()
        proc.wait()
    assert _wait(lambda: not any(_alive(p) for p in runners), 10)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_serves_process_group_drains_in_flight_tasks(tmp_path, sig):
    proc, endpoint = _serve(tmp_path, "--grace-s", "10")
    try:
        with Client(endpoint) as client:
            assert client.run("python", "return 1").value == 1
            handle = client.submit("python", "import time\ntime.sleep(1.5)\nreturn 'done'", timeout_s=5)
            time.sleep(0.4)
            os.killpg(proc.pid, sig)  # what systemd and Ctrl-C do: the whole group
            r = handle.result()
        assert (r.status, r.value) == (Status.OK, "done")
        assert proc.wait(timeout=20) == 0
        assert _runners_of(endpoint) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
