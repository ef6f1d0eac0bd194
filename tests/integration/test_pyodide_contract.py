"""The pyodide runtime keeps the python runtime's snippet contract, codec rules and statuses
(tests/integration/test_python_contract.py), through real jails and real Pyodide workers."""

from __future__ import annotations

import datetime

import pytest

from sandbox import Status

pytestmark = pytest.mark.jail


def test_return_gives_result(pyodide):
    r = pyodide.run("return 6 * 7")
    assert r.status is Status.OK, r.message
    assert r.value == 42


def test_it_is_python_in_webassembly(pyodide):
    r = pyodide.run("import sys, platform\nreturn [sys.platform, sys.version_info[:2]]")
    assert r.status is Status.OK, r.message
    assert r.value == ["emscripten", [3, 11]]


def test_data_is_bound_and_bytes_stay_bytes(pyodide):
    data = {"n": 2, "blob": b"\x00\xff", "when": datetime.datetime(2026, 1, 2, tzinfo=datetime.timezone.utc)}
    r = pyodide.run("return {'n': data['n'] * 2, 'blob': data['blob'] * 2, 'when': data['when']}", data)
    assert r.status is Status.OK, r.message
    assert r.value == {"n": 4, "blob": b"\x00\xff\x00\xff", "when": data["when"]}
    assert isinstance(r.value["blob"], bytes)


def test_codec_rules_are_the_python_runtimes(pyodide):
    code = ("import datetime\nreturn [2 ** 100, -2 ** 70, (1, 2), {3}, bytearray(b'a'), "
            "memoryview(b'b'), datetime.date(2026, 5, 1), float('nan') != float('nan'), {1: 'i'}]")
    r = pyodide.run(code)
    assert r.status is Status.OK, r.message
    assert r.value == [2 ** 100, -2 ** 70, [1, 2], [3], b"a", b"b", "2026-05-01", True, {1: "i"}]


def test_bad_dict_keys_are_unserializable_with_the_path(pyodide):
    r = pyodide.run("return {'a': {(1, 2): 3}}")
    assert r.status is Status.ERROR
    assert r.error.type == "UnserializableResult"
    assert "result['a']" in r.error.message


def test_empty_body_returns_none(pyodide):
    r = pyodide.run("")
    assert r.status is Status.OK
    assert r.value is None


def test_print_is_captured(pyodide):
    r = pyodide.run("print('hello'); print('world', 1)\nreturn 1")
    assert r.status is Status.OK
    assert r.stdout == "hello\nworld 1\n"
    assert r.truncated is False


def test_exception_gives_error_with_snippet_line_numbers(pyodide):
    r = pyodide.run("x = 1\n\ndef f():\n    raise ValueError('bad thing')\nf()\n")
    assert r.status is Status.ERROR
    assert r.error.type == "ValueError"
    assert r.error.message == "bad thing"
    assert 'File "<snippet>", line 5' in r.error.traceback
    assert 'File "<snippet>", line 4' in r.error.traceback
    assert "runtimes" not in r.error.traceback


def test_an_exception_whose_message_fails_is_still_the_snippets_error(pyodide):
    code = ("class Odd(Exception):\n    def __str__(self):\n        raise RuntimeError('no')\n"
            "raise Odd()\n")
    r = pyodide.run(code)
    assert (r.status, r.error.type, r.error.message) == (
        Status.ERROR, "Odd", "<exception str() failed>")


def test_an_exceptions_own_traceback_property_cannot_crash_its_report(pyodide):
    code = ("class Odd(Exception):\n    @property\n    def __traceback__(self):\n"
            "        raise RuntimeError('no')\nraise Odd('m')\n")
    r = pyodide.run(code)
    assert (r.status, r.error.type, r.error.message) == (Status.ERROR, "Odd", "m")


def test_syntax_error_names_its_line(pyodide):
    r = pyodide.run("x = 1\ny = (\n")
    assert r.status is Status.ERROR
    assert r.error.type == "SyntaxError"
    assert "line 2" in r.error.message


def test_output_beyond_cap_is_truncated(pyodide):
    r = pyodide.run("print('x' * (50 * 1024 * 1024))\nreturn 'done'", memory_mb=512)
    assert r.status is Status.OK, r.message
    assert r.truncated is True
    assert len(r.stdout.encode()) == 1024 * 1024
    assert r.value == "done"


def test_unserializable_result_is_an_error(pyodide):
    r = pyodide.run("return object()")
    assert r.status is Status.ERROR
    assert r.error.type == "UnserializableResult"


def test_oversized_result_is_output_limit(pyodide):
    r = pyodide.run("return b'x' * 100_000", result_bytes=4096)
    assert r.status is Status.OUTPUT_LIMIT
    assert "4096" in r.message


def test_timeout_on_busy_loop_interrupts_python(pyodide):
    r = pyodide.run("while True:\n    pass", timeout_s=0.5)
    assert r.status is Status.TIMEOUT
    assert "interrupted inside the worker" in r.message


def test_crash_of_the_runtime_is_crashed(pyodide):
    r = pyodide.run("import os\nos.abort()")
    assert r.status is Status.CRASHED
    assert "Pyodide runtime failed" in r.message


def test_exit_without_result_is_crashed(pyodide):
    r = pyodide.run("import os\nos._exit(3)")
    assert r.status is Status.CRASHED


def test_bad_limits_are_rejected(pyodide):
    r = pyodide.run("return 1", timeout_s=-1)
    assert r.status is Status.REJECTED
    assert "timeout_s" in r.message


def test_unencodable_data_is_rejected(pyodide):
    r = pyodide.run("return data", data=object())
    assert r.status is Status.REJECTED
    assert "data" in r.message


def test_the_import_allow_list_applies(default_pyodide):
    r = default_pyodide.run("import os")
    assert r.status is Status.ERROR
    assert r.error.type == "ImportDenied"
    assert "stdlib_allow" in r.error.message
    r = default_pyodide.run("import js")
    assert r.status is Status.ERROR
    assert r.error.type == "ImportDenied"
    assert "external_allow" in r.error.message


def test_keeps_working_after_failures(pyodide):
    for code in ("import os\nos.abort()", "while True: pass", "return object()"):
        pyodide.run(code, timeout_s=0.3)
    r = pyodide.run("return 'still here'")
    assert r.status is Status.OK
    assert r.value == "still here"


def test_concurrent_tasks_each_get_their_own_result(pyodide):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as ex:
        results = list(ex.map(lambda i: pyodide.run("return data * 3", i), range(12)))
    assert [r.value for r in results] == [i * 3 for i in range(12)]
