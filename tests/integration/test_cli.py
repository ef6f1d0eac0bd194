"""The ``sandbox exec`` contract that other tools depend on: JSON shape and exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest


def sandbox_exec(*args: str, code: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sandbox", "exec", *args],
        input=code, capture_output=True, text=True, timeout=60,
    )


def test_json_output_is_one_object_with_the_contract_keys() -> None:
    r = sandbox_exec("--runtime", "python", "--json", "--data", '{"b": {"$bytes": "AAE="}}', "-",
                     code="print('hi')\nreturn data['b'] * 2")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert {"status", "result", "stdout", "error", "duration_ms", "truncated"} <= set(out)
    assert out["status"] == "ok"
    assert out["result"] == {"$bytes": "AAEAAQ=="}
    assert out["stdout"] == "hi\n"
    assert out["error"] is None


def test_error_status_exits_1_with_traceback_in_json() -> None:
    r = sandbox_exec("-r", "py", "--json", "-", code="x = 1\nraise KeyError('k')")
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert out["status"] == "error"
    assert out["error"]["type"] == "KeyError"
    assert 'File "<snippet>", line 2' in out["error"]["traceback"]


def test_human_output_shows_result_and_output() -> None:
    r = sandbox_exec("--runtime", "python", "-", code="print('hello')\nreturn {'a': 1}")
    assert r.returncode == 0
    assert "hello" in r.stdout and '"a": 1' in r.stdout


def test_timeout_flag_is_enforced() -> None:
    r = sandbox_exec("--runtime", "python", "--timeout", "0.5", "--json", "-", code="while True: pass")
    assert r.returncode == 1
    assert json.loads(r.stdout)["status"] == "timeout"


def test_reads_code_from_a_file(tmp_path) -> None:
    path = tmp_path / "snippet.py"
    path.write_text("return 6 * 7")
    r = sandbox_exec("--runtime", "python", "--json", str(path))
    assert r.returncode == 0 and json.loads(r.stdout)["result"] == 42


def test_usage_errors_exit_2_with_one_line() -> None:
    for args in (["--runtime", "ruby", "-"], ["--runtime", "python", "--data", "{bad", "-"],
                 ["--runtime", "python", "/nonexistent/file.py"], ["--runtime", "python",
                 "--memory", "-5", "-"]):
        r = sandbox_exec(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stdout == ""
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_policy_and_import_flags() -> None:
    r = sandbox_exec("-r", "python", "--json", "--policy", "restricted", "-",
                     code="return ().__class__")
    assert r.returncode == 1 and json.loads(r.stdout)["error"]["type"] == "RestrictedCodeError"
    r = sandbox_exec("-r", "python", "--json", "--import", "json", "-", code="import re")
    assert r.returncode == 1 and json.loads(r.stdout)["error"]["type"] == "ImportDenied"
    r = sandbox_exec("-r", "python", "--json", "--stdlib-allow", "*", "-",
                     code="import os\nreturn os.sep")
    assert r.returncode == 0 and json.loads(r.stdout)["result"] == "/"
    r = sandbox_exec("-r", "python", "--stdlib-allow", "numpy", "-", code="return 1")
    assert r.returncode == 2 and "not a standard-library module" in r.stderr


# -- issue 14: what a new user hits ---------------------------------------------------------------


def exec_json(*args: str, code: str, env: dict[str, str] | None = None) -> tuple[int, dict]:
    done = subprocess.run([sys.executable, "-m", "sandbox", "exec", "--json", *args, "-"],
                          input=code, capture_output=True, text=True, timeout=120,
                          env=None if env is None else {**os.environ, **env})
    return done.returncode, json.loads(done.stdout)


def test_exec_takes_the_output_and_result_limits():
    """[14.10] exec had no --stdout-bytes or --result-bytes."""
    rc, out = exec_json("-r", "python", "--stdout-bytes", "3", code="print('hello')")
    assert (rc, out["status"], out["stdout"], out["truncated"]) == (0, "ok", "hel", True)
    rc, out = exec_json("-r", "python", "--result-bytes", "1024", code="return 'x' * 2000")
    assert (rc, out["status"]) == (1, "output_limit")


def test_exec_asks_for_a_runtime_version():
    """[14.10] exec had no --version; one the embedded runner lacks is said at once."""
    from sandbox import registry

    version = registry.RUNTIMES["python"].version
    rc, out = exec_json("-r", "python", "--version", version.split(".")[0], code="return 1")
    assert (rc, out["status"]) == (0, "ok")
    rc, out = exec_json("-r", "python", "--version", "9.9", code="return 1")
    assert (rc, out["status"]) == (1, "rejected")
    assert "9.9" in out["message"]


def test_exec_runs_in_worker_mode():
    """[14.10] exec had no --isolation or --reuse-key (Sandbox.run takes them)."""
    rc, out = exec_json("-r", "python", "--isolation", "worker", "--reuse-key", "tenant-1",
                        code="return data + 1")
    assert (rc, out["status"]) == (1, "error")  # data is None: the snippet's own error
    rc, out = exec_json("-r", "python", "--isolation", "worker", "--reuse-key", "t",
                        code="return 2")
    assert (rc, out["status"], out["result"]) == (0, "ok", 2)
    done = sandbox_exec("-r", "python", "--reuse-key", "t", "-", code="return 1")
    assert (done.returncode, done.stderr) == (
        2, "sandbox: --reuse-key applies to --isolation worker\n")


def test_exec_reads_the_settings_its_messages_name():
    """[14.9] ImportDenied names SANDBOX_STDLIB_ALLOW, which exec ignored."""
    code = "import os\nreturn os.sep"
    rc, out = exec_json("-r", "python", code=code)
    assert out["error"]["type"] == "ImportDenied" and "SANDBOX_STDLIB_ALLOW" in out["message"]
    rc, out = exec_json("-r", "python", code=code, env={"SANDBOX_STDLIB_ALLOW": "+os"})
    assert (rc, out["status"], out["result"]) == (0, "ok", "/")


def test_exec_runs_with_the_cgroup_layer_off():
    """[14.5] No CLI way to turn the cgroup layer off (the Python API had cgroup="off")."""
    rc, out = exec_json("-r", "python", "--cgroup", "off", code="return 1")
    assert (rc, out["status"]) == (0, "ok")
    rc, out = exec_json("-r", "python", code="return 1", env={"SANDBOX_CGROUP": "off"})
    assert (rc, out["status"]) == (0, "ok")


def test_exec_connect_to_no_daemon_says_so_at_once(ipc_dir):
    """[14.4] It waited ~40 s, then said 'cannot reach the broker ... (is it running?)'."""
    endpoint = f"ipc://{ipc_dir}/none.sock"
    rc, out = exec_json("-r", "python", "--connect", endpoint, code="return 1")
    assert (rc, out["status"], out["message"]) == (
        1, "rejected", f"no daemon at {endpoint} (nothing accepts connections there: is "
                       "`sandbox serve` running?)")


def test_exec_connect_with_no_value_reaches_the_default_endpoint(ipc_dir):
    """[14.10] --connect could not reach the default daemon without typing its path."""
    from sandbox.client.fakes import FakeBroker

    uid = os.getuid()
    with FakeBroker(f"ipc://{ipc_dir}/snippet-sandbox-{uid}.sock") as broker:
        rc, out = exec_json("-r", "python", "--connect", code="return 1",
                            env={"XDG_RUNTIME_DIR": ipc_dir})
        assert (rc, out["status"]) == (0, "ok")
        rc, out = exec_json("-r", "python", "--connect", "default", code="return 1",
                            env={"XDG_RUNTIME_DIR": ipc_dir})
        assert (rc, out["status"]) == (0, "ok")
        with broker.lock:
            assert len(broker.received) == 2


def test_packages_help_names_the_default_directory_of_this_user():
    """[14.10] `packages --help` named ~/.local/share/... for root too."""
    from sandbox.jail import packages

    done = subprocess.run([sys.executable, "-m", "sandbox", "packages", "--help"],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": "300"})
    assert f"(default here: {packages.default_dir()})" in done.stdout


@pytest.mark.parametrize("runtime, what", [("python", "environment"),
                                           ("javascript", "npm packages"),
                                           ("pyodide", "pyodide environment")])
def test_packages_list_of_a_directory_that_holds_none_says_so_in_one_shape(tmp_path, runtime,
                                                                           what):
    missing = tmp_path / "none"
    done = subprocess.run([sys.executable, "-m", "sandbox", "packages", "list", "--runtime",
                           runtime, "--packages-dir", str(missing)], capture_output=True,
                          text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (1, "", f"no {what} in {missing}\n")


def test_the_program_says_its_version():
    done = subprocess.run([sys.executable, "-m", "sandbox", "--version"], capture_output=True,
                          text=True, timeout=60)
    from importlib.metadata import version

    from sandbox import registry

    engines = ", ".join(f"{r.name} {r.version}" for r in registry.RUNTIMES.values())
    assert done.stdout == f"sandbox {version('snippet-sandbox')} ({engines})\n"


def test_exec_sends_worker_mode_to_a_daemon(ipc_dir):
    from sandbox.client.fakes import FakeBroker

    with FakeBroker(f"ipc://{ipc_dir}/b.sock") as broker:
        rc, out = exec_json("-r", "python", "--connect", broker.endpoint, "--isolation", "worker",
                            "--reuse-key", "tenant-9", code="return 1")
        assert (rc, out["status"]) == (0, "ok")
        with broker.lock:
            (submit,) = broker.received
    assert (submit.isolation, submit.reuse_key) == ("worker", "tenant-9")


def test_pyodide_runs_through_exec_with_the_same_json_contract() -> None:
    r = sandbox_exec("--runtime", "pyodide", "--json", "--data", '{"n": 21}', "-",
                     code="import sys\nprint(sys.platform)\nreturn data['n'] * 2")
    assert r.returncode == 1, r.stderr  # sys is outside the curated allow-list
    assert json.loads(r.stdout)["error"]["type"] == "ImportDenied"
    r = sandbox_exec("--runtime", "pyodide", "--json", "--stdlib-allow", "+sys", "--data",
                     '{"n": 21}', "-", code="import sys\nprint(sys.platform)\nreturn data['n'] * 2")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert (out["status"], out["result"], out["stdout"]) == ("ok", 42, "emscripten\n")


def test_pyodide_refuses_the_restricted_policy_as_a_usage_error() -> None:
    r = sandbox_exec("--runtime", "pyodide", "--policy", "restricted", "-", code="return 1")
    assert r.returncode == 2
    assert r.stderr.strip() == "sandbox: --policy restricted applies to python, not pyodide"


def test_runtimes_says_which_work_on_this_host() -> None:
    r = subprocess.run([sys.executable, "-m", "sandbox", "runtimes"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    from sandbox import registry

    assert r.stdout.splitlines() == [f"{name} {registry.RUNTIMES[name].version}: works"
                                     for name in ("python", "javascript", "pyodide")]


# -- stdin, stderr apart, streaming, files ---------------------------------------------------------

STDIO = ("import sys\nprint(sys.stdin.read().upper(), end='')\nprint('oops', file=sys.stderr)\n"
         "return 1")


def test_exec_gives_the_snippet_stdin_from_a_file_and_keeps_stderr_apart(tmp_path) -> None:
    (tmp_path / "in.txt").write_text("one\ntwo\n")
    r = sandbox_exec("-r", "python", "--stdlib-allow", "sys", "--json", "--separate-stderr",
                     "--stdin", str(tmp_path / "in.txt"), "-", code=STDIO)
    out = json.loads(r.stdout)
    assert (r.returncode, out["stdout"], out["stderr"]) == (0, "ONE\nTWO\n", "oops\n")


def test_exec_prints_the_snippets_stderr_on_stderr(tmp_path) -> None:
    (tmp_path / "in.txt").write_text("x")
    r = sandbox_exec("-r", "python", "--stdlib-allow", "sys", "--separate-stderr",
                     "--stdin", str(tmp_path / "in.txt"), "-", code=STDIO)
    assert (r.returncode, r.stdout, r.stderr) == (0, "X\n1\n", "oops\n")


def test_exec_stdin_dash_is_the_snippets_when_the_code_is_a_file(tmp_path) -> None:
    (tmp_path / "code.py").write_text(STDIO)
    r = sandbox_exec("-r", "python", "--stdlib-allow", "sys", "--json", "--stdin", "-",
                     str(tmp_path / "code.py"), code="from the pipe\n")
    assert (r.returncode, json.loads(r.stdout)["stdout"]) == (0, "FROM THE PIPE\noops\n")


def test_exec_stdin_cant_carry_both_the_code_and_the_snippets_stdin() -> None:
    r = sandbox_exec("-r", "python", "--stdin", "-", "-", code="return 1")
    assert (r.returncode, r.stderr.strip()) == (
        2, "sandbox: --stdin - and the code cannot both come from this command's stdin: give "
           "the code as FILE")


def test_exec_streams_output_before_the_task_ends() -> None:
    """The first chunk is read while the snippet still spins: it came before the result."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "exec", "-r", "python", "--stream", "--json",
         "--timeout", "10", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("print('first', flush=True)\nwhile True: pass")
    proc.stdin.close()
    try:
        first = json.loads(proc.stdout.readline())
        running = proc.poll() is None
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C: the task is cancelled, the jails torn down
        proc.wait(timeout=60)
        proc.stdout.close()
        assert proc.stderr is not None
        proc.stderr.close()
    assert (first, running) == ({"stream": "stdout", "text": "first\n"}, True)


def test_exec_stream_json_is_chunk_lines_then_the_result() -> None:
    r = sandbox_exec("-r", "python", "--stdlib-allow", "sys", "--stream", "--json",
                     "--separate-stderr", "-",
                     code="import sys\nprint('a')\nprint('b', file=sys.stderr)\nreturn 2")
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert (r.returncode, lines[:-1], lines[-1]["result"]) == (
        0, [{"stream": "stdout", "text": "a\n"}, {"stream": "stderr", "text": "b\n"}], 2)


def test_exec_passes_files_in_and_writes_what_comes_back_into_a_directory(tmp_path) -> None:
    (tmp_path / "a.txt").write_text("abc")
    r = sandbox_exec("-r", "python", "--files-mb", "1", "--file", "in/a.txt=" + str(tmp_path / "a.txt"),
                     "--return-files", str(tmp_path / "out"), "-",
                     code="open('b.txt', 'w').write(open('in/a.txt').read().upper())")
    assert (r.returncode, (tmp_path / "out/in/a.txt").read_text(),
            (tmp_path / "out/b.txt").read_text()) == (0, "abc", "ABC")


def test_exec_cant_write_a_returned_file_through_a_link_in_the_directory(tmp_path) -> None:
    out, outside = tmp_path / "out", tmp_path / "outside"
    out.mkdir()
    outside.write_text("mine")
    (out / "b.txt").symlink_to(outside)
    r = sandbox_exec("-r", "python", "--files-mb", "1", "--return-files", str(out), "-",
                     code="open('b.txt', 'w').write('theirs')")
    assert (r.returncode, outside.read_text(), r.stderr.strip()) == (
        1, "mine", f"sandbox: 'b.txt' not written into {out}: a symbolic link or a file where "
                   "a directory should be (never followed)")


def test_exec_files_need_a_directory_per_task(tmp_path) -> None:
    (tmp_path / "a").write_text("1")
    r = sandbox_exec("-r", "python", "--file", f"a={tmp_path / 'a'}", "-", code="return 1")
    assert (r.returncode, r.stderr.strip()) == (
        2, "sandbox: --file and --return-files need a directory per task: give --files-mb MB")


def test_exec_refuses_a_file_named_outside_the_tasks_directory(tmp_path) -> None:
    (tmp_path / "a").write_text("1")
    r = sandbox_exec("-r", "python", "--files-mb", "1", "--file", f"../a={tmp_path / 'a'}", "-",
                     code="return 1")
    assert (r.returncode, r.stderr.strip()) == (2, "sandbox: file name '../a' has a '..' component")
