"""The ``sandbox exec`` contract that other tools depend on: JSON shape and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys


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
