"""The snippet contract and every status, through real jails."""

from __future__ import annotations

import datetime

import pytest

from sandbox import Status


def test_return_gives_result(sandbox):
    r = sandbox.run("python", "return 6 * 7")
    assert r.status is Status.OK, r.message
    assert r.value == 42


def test_data_is_bound_and_bytes_stay_bytes(sandbox):
    data = {"n": 2, "blob": b"\x00\xff", "when": datetime.datetime(2026, 1, 2, tzinfo=datetime.timezone.utc)}
    r = sandbox.run(
        "python", "return {'n': data['n'] * 2, 'blob': data['blob'] * 2, 'when': data['when']}", data)
    assert r.status is Status.OK, r.message
    assert r.value == {"n": 4, "blob": b"\x00\xff\x00\xff", "when": data["when"]}
    assert isinstance(r.value["blob"], bytes)


def test_empty_body_returns_none(sandbox):
    r = sandbox.run("python", "")
    assert r.status is Status.OK
    assert r.value is None


def test_print_is_captured(sandbox):
    r = sandbox.run("python", "print('hello'); print('world', 1)\nreturn 1")
    assert r.status is Status.OK
    assert r.stdout == "hello\nworld 1\n"
    assert r.truncated is False


def test_exception_gives_error_with_snippet_line_numbers(sandbox):
    code = "x = 1\n\ndef f():\n    raise ValueError('bad thing')\nf()\n"
    r = sandbox.run("python", code)
    assert r.status is Status.ERROR
    assert r.error is not None
    assert r.error.type == "ValueError"
    assert r.error.message == "bad thing"
    assert 'File "<snippet>", line 5' in r.error.traceback
    assert 'File "<snippet>", line 4' in r.error.traceback
    assert "raise ValueError('bad thing')" in r.error.traceback
    assert "runtimes" not in r.error.traceback  # no frames of the sandbox itself


def test_an_exception_whose_message_fails_is_still_the_snippets_error(sandbox):
    """Its ``__str__`` is the snippet's code: what that raises is said, as CPython says it."""
    code = ("class Odd(Exception):\n    def __str__(self):\n        raise RuntimeError('no')\n"
            "raise Odd()\n")
    r = sandbox.run("python", code)
    assert (r.status, r.error.type, r.error.message) == (
        Status.ERROR, "Odd", "<exception str() failed>")


@pytest.mark.parametrize("code, kind", [
    ("class Odd(Exception):\n    @property\n    def __traceback__(self):\n"
     "        raise RuntimeError('no')\nraise Odd('m')\n", "Odd"),
    ("class Meta(type):\n    @property\n    def __name__(cls):\n        raise RuntimeError('no')\n"
     "class Odd(Exception, metaclass=Meta):\n    pass\nraise Odd('m')\n", "Odd"),
])
def test_an_exceptions_own_code_cannot_crash_its_report(sandbox, code, kind):
    """A ``__traceback__`` property, a metaclass's ``__name__``: the snippet's code, run while
    its error is described; it ended the process (exit 70, ``crashed``) before."""
    r = sandbox.run("python", code)
    assert (r.status, r.error.type, r.error.message) == (Status.ERROR, kind, "m")


def test_an_errors_text_comes_back_clipped_to_its_cap(sandbox):
    r = sandbox.run("python", "raise ValueError('x' * 5_000_000)")
    assert (r.status, r.error.message) == (
        Status.ERROR, "x" * 65536 + f"... ({5_000_000 - 65536} more characters)")


def test_syntax_error_names_its_line(sandbox):
    r = sandbox.run("python", "x = 1\ny = (\n")
    assert r.status is Status.ERROR
    assert r.error.type == "SyntaxError"
    assert "line 2" in r.error.message


def test_output_beyond_cap_is_truncated(sandbox):
    r = sandbox.run("python", "print('x' * (50 * 1024 * 1024))\nreturn 'done'", memory_mb=512)
    assert r.status is Status.OK, r.message
    assert r.truncated is True
    assert len(r.stdout.encode()) == 1024 * 1024
    assert r.value == "done"


def test_unserializable_result_is_an_error(sandbox):
    r = sandbox.run("python", "return object()")
    assert r.status is Status.ERROR
    assert r.error.type == "UnserializableResult"
    assert "object" in r.error.message


def test_oversized_result_is_output_limit(sandbox):
    r = sandbox.run("python", "return b'x' * 100_000", result_bytes=4096)
    assert r.status is Status.OUTPUT_LIMIT
    assert "4096" in r.message


def test_timeout_on_busy_loop(sandbox):
    r = sandbox.run("python", "while True:\n    pass", timeout_s=0.5)
    assert r.status is Status.TIMEOUT
    assert "0.5" in r.message


def test_crash_of_the_child_is_crashed(sandbox):
    r = sandbox.run("python", "import os\nos.abort()")
    assert r.status is Status.CRASHED
    assert "SIGABRT" in r.message


def test_exit_without_result_is_crashed(sandbox):
    r = sandbox.run("python", "import os\nos._exit(3)")
    assert r.status is Status.CRASHED
    assert "code 3" in r.message


def test_unknown_runtime_is_rejected(sandbox):
    r = sandbox.run("ruby", "puts 1")
    assert r.status is Status.REJECTED
    assert "ruby" in r.message


def test_bad_limits_are_rejected(sandbox):
    r = sandbox.run("python", "return 1", timeout_s=-1)
    assert r.status is Status.REJECTED
    assert "timeout_s" in r.message
    r = sandbox.run("python", "return 1", memory_mb="lots")
    assert r.status is Status.REJECTED
    assert "memory_mb" in r.message


def test_unencodable_data_is_rejected(sandbox):
    r = sandbox.run("python", "return data", data=object())
    assert r.status is Status.REJECTED
    assert "data" in r.message


def test_sandbox_keeps_working_after_failures(sandbox):
    for code in ("import os\nos.abort()", "while True: pass", "return object()"):
        sandbox.run("python", code, timeout_s=0.3)
    r = sandbox.run("python", "return 'still here'")
    assert r.status is Status.OK
    assert r.value == "still here"


def test_concurrent_tasks_each_get_their_own_result(sandbox):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(6) as ex:
        results = list(ex.map(lambda i: sandbox.run("python", "return data * 3", i), range(24)))
    assert [r.value for r in results] == [i * 3 for i in range(24)]


def test_a_syntax_error_under_the_restricted_policy_is_a_syntax_error(default_sandbox):
    r = default_sandbox.run("python", "x = (", policy="restricted")
    assert (r.status, r.error.type) == (Status.ERROR, "SyntaxError")
    assert r.error.message == "'(' was never closed (line 1)"


def test_our_own_errors_show_their_bare_names_in_the_traceback(default_sandbox):
    r = default_sandbox.run("python", "import os")
    assert r.error.type == "ImportDenied"
    assert r.error.traceback.splitlines()[-1].startswith("ImportDenied: import of")
    assert "runtimes." not in r.error.traceback
