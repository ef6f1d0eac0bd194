"""The ``sandbox exec`` contract that other tools depend on: JSON shape and exit codes."""

from __future__ import annotations

import json
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
    assert r.stdout.splitlines() == ["python: works", "javascript: works", "pyodide: works"]
