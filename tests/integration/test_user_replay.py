"""Issue 25 replayed as a user would: the commands of its report, run as programs, each with
the one outcome it should have had. A test's name starts with the item it replays (2: a
runtime that is not served, 3: logs, 4: Ctrl-C, 6: the CLI, 7: messages).

Nothing here waits a fixed time: a test waits for what it needs (a line on stderr, a jail
that spent CPU time) with a bounded deadline, and asserts what the user sees.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path

import pytest

from sandbox import registry

SANDBOX = [sys.executable, "-m", "sandbox"]
PY = registry.RUNTIMES["python"].version
JS = registry.RUNTIMES["javascript"].version
PYODIDE = registry.RUNTIMES["pyodide"].version
TIME_LEVEL = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO "  # how a text log line starts


def sandbox(*args: str, code: str = "", env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SANDBOX, *args], input=code, capture_output=True, text=True,
                          timeout=180, env={**os.environ, "COLUMNS": "200", **(env or {})})


def _wait(predicate: Callable[[], object], timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


class Program:
    """A long-running ``sandbox`` command whose stderr lines are collected as they come."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([*SANDBOX, *args], stdin=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout_s: float = 120) -> str:
        """The first stderr line that ``pattern`` matches (re.search), once it came."""
        def found() -> str | None:
            return next((line for line in list(self.lines) if re.search(pattern, line)), None)

        assert _wait(found, timeout_s), f"no line matching {pattern!r} in {self.lines}"
        line = found()
        assert line is not None
        return line

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        self._reader.join(timeout=10)
        assert self.proc.stderr is not None
        self.proc.stderr.close()
        return code


@pytest.fixture
def daemon(ipc_dir: str) -> Iterator[tuple[Program, str]]:
    """``sandbox serve`` with its defaults (python and javascript), once its runner is in."""
    endpoint = f"ipc://{ipc_dir}/s.sock"
    program = Program("serve", "--bind", endpoint, "--http", "", "--slots", "1")
    try:
        program.wait_for(r"runner local-0 registered")
        yield program, endpoint
    finally:
        program.stop()


# -- 2: a runtime the daemon does not serve ------------------------------------------------------

NOT_SERVED = ("no runner for runtime 'pyodide': this broker's runners serve javascript {js}, "
              "python {py}; start them with --runtimes naming pyodide (`sandbox serve`, "
              "`sandbox runner`; embedded: Client(runtimes=...))")


def test_2_exec_connect_for_a_runtime_the_daemon_does_not_serve_is_refused_at_once(daemon):
    _, endpoint = daemon
    done = sandbox("exec", "--connect", endpoint, "-r", "pyodide", "-", code="return 1")
    assert (done.returncode, done.stdout) == (1, "")
    # said by the broker's rule for a runtime no runner serves, not after the 30 s queue wait
    assert done.stderr == "rejected: " + NOT_SERVED.format(js=JS, py=PY) + "\n"


def test_2_an_embedded_client_refuses_a_runtime_it_did_not_start_at_once():
    from sandbox import Status
    from sandbox.client import Client

    with Client(runtimes=("python",)) as client:
        result = client.run("javascript", "return 1")
    assert (result.status, result.message) == (
        Status.REJECTED,
        f"no runner for runtime 'javascript': this broker's runners serve python {PY}; start "
        "them with --runtimes naming javascript (`sandbox serve`, `sandbox runner`; embedded: "
        "Client(runtimes=...))")


# -- 3: logs ------------------------------------------------------------------------------------


def test_3_serve_logs_its_start_once_and_each_runner_as_it_comes_and_goes(daemon, ipc_dir):
    program, endpoint = daemon
    runner = Program("runner", "--connect", f"ipc://{ipc_dir}/s.runners.sock", "--name", "ext",
                     "--runtimes", "python", "--slots", "1")
    try:
        runner.wait_for(r"registered with the broker")
        program.wait_for(r"runner ext registered")
    finally:
        assert runner.stop() == 0
    program.wait_for(r"runner ext is gone")
    started = [line for line in program.lines if "serving clients on" in line]
    assert started == [f"{started[0][:23]} INFO sandbox.service.daemon: serving clients on "
                       f"{endpoint}, runners on ipc://{ipc_dir}/s.runners.sock"]
    assert re.fullmatch(TIME_LEVEL + r"sandbox\.service\.daemon: .*", started[0])
    assert [line[24:] for line in program.lines if "runner ext" in line] == [
        f"INFO sandbox.broker: runner ext registered: python {PY}, 1 slots (2 registered)",
        "INFO sandbox.broker: runner ext is gone (1 registered)"]
    endpoint_of_runners = f"ipc://{ipc_dir}/s.runners.sock"
    assert [line[24:] for line in runner.lines] == [
        f"INFO sandbox.runner: runner ext starting: jails for python, 1 slots, broker at "
        f"{endpoint_of_runners}",
        f"INFO sandbox.host.runner: registered with the broker at {endpoint_of_runners}: "
        f"python {PY}, 1 slots",
        "INFO sandbox.host.runner: draining: 0 task(s) running, leaving within 10 s",
        "INFO sandbox.runner: runner ext stopping: its jails end",
        "INFO sandbox.runner: runner ext stopped"]
    assert all(re.match(TIME_LEVEL, line) for line in runner.lines)


def test_3_a_runner_stopped_while_its_jails_start_stops_cleanly_and_says_so(ipc_dir):
    runner = Program("runner", "--connect", f"ipc://{ipc_dir}/nobody.sock", "--runtimes",
                     "python", "--slots", "1")
    runner.wait_for(r"runner starting")  # said once its signals are its own, before the jails
    assert runner.stop() == 0
    assert [line[24:] for line in runner.lines[-2:]] == [
        "INFO sandbox.runner: runner stopping: its jails end", "INFO sandbox.runner: runner stopped"]


def test_3_serve_logs_json_lines_when_asked(ipc_dir):
    endpoint = f"ipc://{ipc_dir}/j.sock"
    program = Program("serve", "--bind", endpoint, "--http", "", "--runners", "0",
                      "--log-format", "json")
    try:
        program.wait_for(r"serving clients on")
    finally:
        assert program.stop() == 0
    lines = [json.loads(line) for line in program.lines]
    assert [(line["level"], line["logger"], line["message"]) for line in lines] == [
        ("INFO", "sandbox.service.daemon",
         f"serving clients on {endpoint}, runners on ipc://{ipc_dir}/j.runners.sock"),
        ("INFO", "sandbox.service.daemon", "draining for up to 10 s"),
        ("INFO", "sandbox.service.daemon", "stopped")]


# -- 4: Ctrl-C during exec ------------------------------------------------------------------------


def _descendants(pid: int) -> list[int]:
    found, stack = [], [pid]
    while stack:
        parent = stack.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                children = Path(f"/proc/{parent}/task/{task}/children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                found.append(child)
                stack.append(child)
    return found


def _cpu_ticks(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[11])
    except (OSError, IndexError, ValueError):
        return 0


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0]
    except OSError:
        return False
    return state != "Z"


def _exec_running_a_busy_snippet() -> tuple[subprocess.Popen[str], list[int]]:
    """``sandbox exec`` in a terminal's place: a process group of its own, as a shell makes
    one for a foreground job; returned once its snippet runs, with its jails' pids."""
    proc = subprocess.Popen([*SANDBOX, "exec", "-r", "python", "--timeout", "120", "-"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stdin is not None
    proc.stdin.write("while True:\n    pass\n")
    proc.stdin.close()
    proc.stdin = None  # given: communicate() must not flush it again
    ticks = os.sysconf("SC_CLK_TCK")
    # the snippet runs once a process below exec has spent 2 s of CPU (the zygote's start
    # costs far less)
    assert _wait(lambda: any(_cpu_ticks(p) > 2 * ticks for p in _descendants(proc.pid)), 60)
    jails = [p for p in _descendants(proc.pid) if _name(p) == "nsjail"]
    assert len(jails) == 1
    return proc, jails


def test_4_ctrl_c_during_exec_cancels_the_task_in_one_line_and_exits_130():
    proc, jails = _exec_running_a_busy_snippet()
    # the jail is out of the terminal's reach: not in the foreground process group
    assert os.getpgid(jails[0]) != proc.pid
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
    out, err = proc.communicate(timeout=60)
    assert (proc.returncode, out, err) == (130, "", "sandbox: interrupted; the task was cancelled\n")
    assert _wait(lambda: not _alive(jails[0]), 10)  # closed by exec on its way out


def test_4_a_jail_ends_with_the_exec_that_started_it_even_when_exec_is_killed():
    proc, jails = _exec_running_a_busy_snippet()
    os.killpg(proc.pid, signal.SIGKILL)  # exec gets no chance to close its jail
    proc.communicate(timeout=60)
    # its own session keeps it from the terminal, not from its parent: the control
    # channel's EOF ends the zygote, and the jail with it
    assert _wait(lambda: not _alive(jails[0]), 30)


# -- 6: the CLI -----------------------------------------------------------------------------------


def test_6_data_comes_from_a_file(tmp_path):
    path = tmp_path / "data.json"
    path.write_text(json.dumps({"rows": list(range(200_000))}))  # 1.3 MB: past what a shell
    for args in (("--data-file", str(path)), ("--data", f"@{path}")):  # holds comfortably
        done = sandbox("exec", "-r", "python", *args, "-", code="return len(data['rows'])")
        assert (done.returncode, done.stdout, done.stderr) == (0, "200000\n", "")


def test_6_a_usage_error_with_json_prints_one_object_too():
    done = sandbox("exec", "--json", "-r", "ruby", "-", code="return 1")
    assert done.returncode == 2
    assert json.loads(done.stdout) == {
        "status": "rejected", "result": None, "stdout": "", "error": None, "duration_ms": 0.0,
        "message": "unknown runtime 'ruby' (known: javascript, js, py, pyodide, python)",
        "truncated": False, "exec_ms": 0.0, "stderr": "", "cpu_ms": None,
        "peak_memory_kb": None, "files": None, "files_skipped": None}


def test_6_a_string_result_prints_as_it_is():
    done = sandbox("exec", "-r", "python", "-", code="return 'hello, world'")
    assert (done.returncode, done.stdout) == (0, "hello, world\n")


def test_6_an_errors_message_is_said_once():
    done = sandbox("exec", "-r", "python", "-", code="raise ValueError('boom')")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == ('Traceback (most recent call last):\n  File "<snippet>", line 1, in '
                           "snippet\n    raise ValueError('boom')\nValueError: boom\n")


def test_6_a_code_file_over_the_cap_is_refused_by_its_size(tmp_path):
    path = tmp_path / "big.py"
    with open(path, "wb") as f:
        f.truncate(40 * 1024 * 1024)  # 40 MiB, sparse: its size is what refuses it
    done = sandbox("exec", "-r", "python", str(path))
    assert (done.returncode, done.stderr) == (
        2, f"sandbox: {path} is 40 MiB, over the 1 MiB limit for code\n")


@pytest.mark.parametrize("command", [("pyodide", "install"), ("packages", "install")])
def test_6_an_actions_help_is_its_own(command):
    done = sandbox(*command, "--help")
    assert done.returncode == 0
    assert done.stdout.startswith(f"usage: sandbox {' '.join(command)} ")


def test_6_the_limits_flags_say_what_they_are_and_their_defaults():
    done = sandbox("exec", "--help")
    assert "--timeout SECONDS     wall clock, killed past it (default 5 s)" in done.stdout
    assert "--memory MB           the snippet's memory budget (default 256 MB)" in done.stdout


def test_6_runtimes_and_version_name_the_engines():
    done = sandbox("runtimes")
    assert done.stdout.splitlines() == [f"python {PY}: works", f"javascript {JS}: works",
                                        f"pyodide {PYODIDE}: works"]
    done = sandbox("--version")
    assert done.stdout == (f"sandbox {version('snippet-sandbox')} (python {PY}, javascript "
                           f"{JS}, pyodide {PYODIDE})\n")


# -- 7: messages ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "message"), [
    (("--result-bytes", "5"), "--result-bytes must be between 1 KiB and 64 MiB, not 5 bytes"),
    (("--timeout", "99999"), "--timeout must be between 1 ms and 3600 s, not 99999 s"),
    (("--memory", "4"), "--memory must be between 16 MB and 65536 MB, not 4 MB"),
])
def test_7_a_limit_out_of_range_is_named_by_its_flag_in_whole_numbers_with_units(args, message):
    done = sandbox("exec", "-r", "python", *args, "-", code="return 1")
    assert (done.returncode, done.stderr) == (2, f"sandbox: {message}\n")


def test_7_memory_limit_says_the_limit():
    done = sandbox("exec", "-r", "python", "--memory", "64", "--json", "-",
                   code="x = bytearray(512 * 1024 * 1024)")
    out = json.loads(done.stdout)
    assert (done.returncode, out["status"], out["message"]) == (
        1, "memory_limit", "the snippet ran out of memory: its limit is 64 MB (memory_mb)")


def test_7_a_version_that_does_not_exist_lists_the_ones_that_do():
    done = sandbox("exec", "-r", "python", "--version", "3.12", "-", code="return 1")
    assert (done.returncode, done.stderr) == (
        1, f"rejected: no runner for runtime 'python' version 3.12*: this broker's runners "
           f"serve python {PY}\n")


def test_7_a_key_that_does_not_exist_is_said_to_be_missing(tmp_path):
    keys = tmp_path / "keys"
    assert sandbox("keys", str(keys)).returncode == 0
    done = sandbox("exec", "-r", "python", "--connect", "tcp://127.0.0.1:9", "--curve-dir",
                   str(keys), "--key", "nobody", "-", code="return 1")
    assert (done.returncode, done.stderr) == (
        2, f"sandbox: the key file {keys}/nobody.key_secret does not exist (`sandbox keys "
           f"{keys} --client nobody` makes it, or --runner nobody)\n")


@pytest.mark.parametrize(("code", "message"), [
    ("return require('fs')", "require is not defined; this runtime loads no modules, neither "
     "by require nor by import: the snippet's own code and the language's built-ins are all "
     "there is"),
    ("return fetch('https://example.com')", "fetch is not defined; the sandbox has no network: "
     "pass what the snippet needs in `data`"),
    ("return process.env", "process is not defined; there is no process here: the input is "
     "`data`, the output what the snippet returns"),
])
def test_7_javascript_names_it_lacks_say_what_to_do(code, message):
    done = sandbox("exec", "-r", "javascript", "--json", "-", code=code)
    out = json.loads(done.stdout)
    assert (done.returncode, out["error"]["type"], out["error"]["message"]) == (
        1, "ReferenceError", message)
    assert out["error"]["traceback"].startswith(f"ReferenceError: {message}\n")


# -- 1: operator caps ---------------------------------------------------------------------------


def test_1_a_limit_above_the_operators_cap_is_refused_naming_the_cap(daemon):
    """Through serve, memory_mb=65536 and timeout_s=3600 were accepted: one client could hold
    every slot for an hour. The caps are settings (max_timeout_s 300 by default)."""
    from sandbox import Status
    from sandbox.client import Client

    _, endpoint = daemon
    with Client(endpoint) as client:
        r = client.run("python", "return 1", timeout_s=3600)
        assert (r.status, r.message) == (
            Status.REJECTED, "timeout_s 3600 s is above this service's cap of 300 s (max_timeout_s)")
        assert client.run("python", "return 1", timeout_s=300).value == 1


# -- 8: metrics and health ----------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:  # not listening (yet, or any more)
        return 0, ""


def test_8_serve_has_liveness_readiness_build_process_and_per_runtime_pool_metrics(ipc_dir):
    """/healthz was http.server (HTTP/1.0, /healthz?x was 404) with no liveness/readiness
    split; /metrics had no build, no process metrics and one idle-children sum."""
    port = _free_port()
    program = Program("serve", "--bind", f"ipc://{ipc_dir}/s.sock", "--http",
                      f"127.0.0.1:{port}", "--slots", "1")
    url = f"http://127.0.0.1:{port}"
    try:
        program.wait_for(r"runner local-0 registered")
        # the runners' first heartbeats carry their pools' idle children
        assert _wait(lambda: 'sandbox_idle_children{runtime="python"} 1.0' in _get(
            f"{url}/metrics")[1], 30)
        probes = [_get(f"{url}{path}")[0] for path in ("/livez", "/readyz?verbose", "/healthz?x")]
        metrics = _get(f"{url}/metrics")[1].splitlines()
    finally:
        assert program.stop() == 0
    assert probes == [200, 200, 200]
    assert sorted(line for line in metrics if line.startswith(("sandbox_build_info",
                                                               "sandbox_idle_children{"))) == [
        f'sandbox_build_info{{component="serve",python="{sys.version.split()[0]}",'
        f'version="{version("snippet-sandbox")}"}} 1.0',
        'sandbox_idle_children{runtime="javascript"} 1.0',
        'sandbox_idle_children{runtime="python"} 1.0']
    assert any(line.startswith("process_resident_memory_bytes ") for line in metrics)


def test_8_the_n8n_runner_has_probes_and_metrics():
    """The n8n runner had no /metrics, and its /healthz parsed request lines by hand."""
    port = _free_port()
    broker = _free_port()  # nothing listens there: the runner retries, never registered
    program = Program("n8n-runner", "--task-broker-uri", f"http://127.0.0.1:{broker}",
                      "--auth-token", "t", "--max-concurrency", "1", "--types", "python",
                      "--health-check-server-enabled", "true",
                      "--health-check-server-port", str(port))
    url = f"http://127.0.0.1:{port}"
    try:
        program.wait_for(r"retrying in")
        assert _wait(lambda: "sandbox_n8n_registered 0.0" in _get(f"{url}/metrics")[1], 30)
        answers = [_get(f"{url}{path}") for path in ("/healthz?x", "/livez", "/readyz")]
        metrics = _get(f"{url}/metrics")[1].splitlines()
    finally:
        assert program.stop() == 0
    assert [code for code, _ in answers] == [200, 200, 503]
    assert json.loads(answers[2][1]) == {"status": "not registered", "running": 0}
    assert 'sandbox_idle_children{runtime="python"} 1.0' in metrics
    assert any(line.startswith("sandbox_n8n_reconnects_total ") for line in metrics)


def test_8_a_runner_has_probes_and_its_pools_idle_children_per_runtime(daemon):
    program, endpoint = daemon
    port = _free_port()
    runners = endpoint.removesuffix(".sock") + ".runners.sock"
    runner = Program("runner", "--connect", runners, "--name", "probed", "--runtimes", "python",
                     "--slots", "1", "--runner-http", f"127.0.0.1:{port}")
    url = f"http://127.0.0.1:{port}"
    try:
        runner.wait_for(r"registered with the broker")
        assert _wait(lambda: _get(f"{url}/readyz")[0] == 200, 30)
        answers = [_get(f"{url}{path}") for path in ("/livez", "/readyz?x")]
        metrics = _get(f"{url}/metrics")[1].splitlines()
    finally:
        assert runner.stop() == 0
    assert [(code, json.loads(body)) for code, body in answers] == [
        (200, {"status": "ok"}), (200, {"status": "ok", "running": 0})]
    assert [line for line in metrics if line.startswith("sandbox_idle_children{")] == [
        'sandbox_idle_children{runtime="python"} 1.0']


# -- 9: operations ------------------------------------------------------------------------------


def test_9_packages_list_gives_versions_and_what_a_package_pulled_in(tmp_path):
    directory = str(tmp_path / "env")
    assert sandbox("packages", "install", "python-dateutil", "--packages-dir",
                   directory).returncode == 0
    done = sandbox("packages", "list", "--packages-dir", directory)
    lines = done.stdout.splitlines()
    assert (done.returncode, lines[0]) == (0, f"{directory}:")
    assert re.fullmatch(r"  python-dateutil \d[^ ]*", lines[1])
    assert lines[2:] and all(re.fullmatch(r"  [a-z0-9-]+ \d[^ ]* \(pulled in by python-dateutil\)",
                                          line) for line in lines[2:])


def test_9_as_root_the_pyodide_cache_can_be_moved(tmp_path):
    """As root the distribution lived in /var/cache/snippet-sandbox whatever was said."""
    from sandbox.pyodide import dist

    if os.geteuid() != 0 or dist.installed() is None:
        pytest.skip("needs root and the Pyodide distribution installed in its default place")
    moved = tmp_path / "cache"
    moved.mkdir()
    for name in (os.path.basename(dist.install_dir()), os.path.basename(dist.build_tools_dir())):
        (moved / name).symlink_to(os.path.join(dist.cache_root(), name))
    done = sandbox("pyodide", "install", env={"SANDBOX_PYODIDE_CACHE_DIR": str(moved)})
    assert (done.returncode, done.stdout.split(":")[1].split()[0]) == (
        0, f"{moved}/{os.path.basename(dist.install_dir())}/node_modules/pyodide")


def test_9_serve_for_pyodide_on_a_node_too_old_says_so_at_once(ipc_dir, tmp_path):
    """The deploy image has no Node (Debian 12's is 18, older than the workers' permission
    model): serve started runners that failed on every start, and nothing said why."""
    node = tmp_path / "node"
    node.write_text("#!/bin/sh\necho v18.19.0\n")
    node.chmod(0o755)
    done = sandbox("serve", "--bind", f"ipc://{ipc_dir}/s.sock", "--http", "", "--runtimes",
                   "pyodide", env={"SANDBOX_PYODIDE_NODE": str(node)})
    assert (done.returncode, done.stderr) == (
        1, f"sandbox: runtimes pyodide: the pyodide runtime needs Node.js 20 or later (its "
           f"workers run under Node's permission model); {node} is 18.19.0\n")


def test_9_a_daemon_stopped_while_its_pyodide_jail_starts_stops_its_runner_cleanly(ipc_dir):
    """An idle daemon serving pyodide took 5.5 s to stop: its runner, starting the jail,
    did not watch its lifeline, so the daemon waited 5 s and killed it."""
    program = Program("serve", "--bind", f"ipc://{ipc_dir}/p.sock", "--http", "",
                      "--runtimes", "pyodide", "--slots", "1")
    try:
        program.wait_for(r"runner local-0 starting: jails for pyodide")
    finally:
        code = program.stop()
    assert (code, [line[24:] for line in program.lines if "local-0 stop" in line]) == (
        0, ["INFO sandbox.runner: runner local-0 stopping: its jails end",
            "INFO sandbox.runner: runner local-0 stopped"])


def test_7_a_violation_says_which_operation():
    done = sandbox("exec", "-r", "python", "--stdlib-allow", "+os", "-", code="import os\nos.fork()")
    assert (done.returncode, done.stderr) == (
        1, "violation: killed for a forbidden operation (seccomp: SIGSYS): os.fork\n")
