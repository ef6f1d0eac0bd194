"""The language layer in real jails: import allow-lists and the RestrictedPython policy, and
that each layer holds on its own (the kernel layers stop what slips past the language one)."""

from __future__ import annotations

import pytest

from sandbox import PoolConfig, Sandbox, Status

ESCAPE = """
for cls in ().__class__.__bases__[0].__subclasses__():
    if cls.__name__ == "catch_warnings":
        found = cls()._module.__builtins__
        real_import = found["__import__"] if isinstance(found, dict) else found.__import__
        real_import("socket").socket()
return "escaped"
"""


def test_curated_stdlib_modules_import(default_sandbox):
    r = default_sandbox.run("python", "import json, re, math, datetime, statistics\n"
                                      "return json.dumps(statistics.mean([1, 2, 3]))")
    assert r.status is Status.OK and r.value == "2"


@pytest.mark.parametrize(
    ("code", "module", "setting"),
    [
        ("import os", "'os'", "stdlib_allow"),
        ("import subprocess", "'subprocess'", "stdlib_allow"),
        ("from urllib import request", "'urllib.request'", "stdlib_allow"),
        ("import msgpack", "'msgpack'", "external_allow"),  # present in the jail, not allowed
        ("__import__('socket')", "'socket'", "stdlib_allow"),
    ],
)
def test_denied_import_names_the_module_and_the_setting(default_sandbox, code, module, setting):
    r = default_sandbox.run("python", code)
    assert r.status is Status.ERROR
    assert r.error.type == "ImportDenied"
    assert module in r.error.message and setting in r.error.message


def test_a_preloaded_module_is_no_more_reachable_than_any_other():
    # the zygote preloads re; a pool that does not allow it refuses it all the same
    with Sandbox(PoolConfig(size=1, stdlib_allow=("json",))) as sb:
        assert sb.run("python", "import json\nreturn 1").value == 1
        r = sb.run("python", "import re")
        assert r.status is Status.ERROR and "'re' is not allowed" in r.error.message


def test_a_task_narrows_the_allow_list(default_sandbox):
    ok = default_sandbox.run("python", "import json\nreturn 1", imports=["json"])
    assert ok.status is Status.OK
    r = default_sandbox.run("python", "import re", imports=["json"])
    assert r.status is Status.ERROR and r.error.type == "ImportDenied"


def test_a_task_cannot_widen_the_allow_list(default_sandbox):
    r = default_sandbox.run("python", "import os", imports=["os"])
    assert r.status is Status.REJECTED
    assert "'os' is not allowed by the operator" in r.message and "stdlib_allow" in r.message


def test_star_allows_everything(sandbox):
    r = sandbox.run("python", "import os, msgpack\nreturn os.sep")
    assert r.status is Status.OK and r.value == "/"


# -- RestrictedPython ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        "return ().__class__.__bases__[0].__subclasses__()",
        "return (lambda: 0).__globals__",
        "return data.__class__",
        "_secret = 1\nreturn _secret",
        ESCAPE,
    ],
)
def test_restricted_refuses_dunder_and_private_names(default_sandbox, code):
    r = default_sandbox.run("python", code, policy="restricted")
    assert r.status is Status.ERROR
    assert r.error.type == "RestrictedCodeError"
    assert 'starts with "_"' in r.error.message


@pytest.mark.parametrize(
    ("code", "error_type"),
    [
        ("return getattr((), '__class__')", "NameError"),  # no getattr among its builtins
        ("return exec('1')", "RestrictedCodeError"),  # "Exec calls are not allowed"
        ("return open('/etc/hostname').read()", "NameError"),
        ("import os", "ImportDenied"),
    ],
)
def test_restricted_refuses_other_ways_around(
        default_sandbox, code, error_type):
    r = default_sandbox.run("python", code, policy="restricted")
    assert r.status is Status.ERROR and r.error.type == error_type


def test_restricted_runs_ordinary_code(default_sandbox):
    code = (
        "import json\n"
        "total = 0\n"
        "for i, v in enumerate(data['xs']):\n"
        "    total += i * v\n"
        "squares = {k: k * k for k in range(4)}\n"
        "names = sorted(set(['b', 'a', 'b']))\n"
        "print('total', total)\n"
        "return {'total': total, 'squares': squares, 'names': names, 'j': json.dumps(names)}"
    )
    r = default_sandbox.run("python", code, data={"xs": [1, 2, 3]}, policy="restricted")
    assert r.status is Status.OK, r.message
    assert r.value == {"total": 8, "squares": {0: 0, 1: 1, 2: 4, 3: 9}, "names": ["a", "b"],
                       "j": '["a", "b"]'}
    assert r.stdout == "total 8\n"


# -- each layer on its own --------------------------------------------------------------------


def test_the_escape_is_refused_by_restricted_and_stopped_by_the_kernel_otherwise(default_sandbox):
    """The classic subclass walk reaches the real __import__ around the import guard; under
    the default policy the kernel layer refuses the socket it opens (EPERM: seccomp/policy.py
    says why not a kill), under restricted the compiler refuses the snippet outright."""
    restricted = default_sandbox.run("python", ESCAPE, policy="restricted")
    assert restricted.status is Status.ERROR and restricted.error.type == "RestrictedCodeError"
    default = default_sandbox.run("python", ESCAPE)
    assert (default.status, default.error.type) == (Status.ERROR, "PermissionError")


def test_policy_and_imports_are_for_python_only():
    with Sandbox(PoolConfig(size=1), runtimes=("javascript",)) as sb:
        r = sb.run("javascript", "return 1", policy="restricted")
        assert r.status is Status.REJECTED and "apply to python" in r.message


def test_unknown_policy_is_rejected(default_sandbox):
    r = default_sandbox.run("python", "return 1", policy="paranoid")
    assert r.status is Status.REJECTED and "unknown policy 'paranoid'" in r.message


# -- the file system agrees with the allow-list ------------------------------------------------

REAL_IMPORT = """
for cls in ().__class__.__bases__[0].__subclasses__():
    if cls.__name__ == "catch_warnings":
        found = cls()._module.__builtins__
        real_import = found["__import__"] if isinstance(found, dict) else found.__import__
        return real_import(data).__name__
"""


@pytest.mark.parametrize("module", ["http.client", "email", "xml.dom", "multiprocessing",
                                    "pickle", "sqlite3", "asyncio", "tempfile"])
def test_a_module_neither_needed_nor_allowed_is_not_in_the_jail(default_sandbox, sandbox, module):
    """Around the import guard, the file system of a trimmed jail has nothing to load."""
    trimmed = default_sandbox.run("python", REAL_IMPORT, data=module)
    assert trimmed.status is Status.ERROR and trimmed.error.type == "ModuleNotFoundError"
    full = sandbox.run("python", REAL_IMPORT, data=module)  # stdlib_allow="*": all of it
    assert full.status is Status.OK and full.value == module.partition(".")[0]


def test_every_curated_module_works_in_the_trimmed_jail(default_sandbox):
    from sandbox.imports import SAFE_STDLIB

    code = "\n".join(f"import {name}" for name in SAFE_STDLIB) + (
        "\nreturn [datetime.datetime.strptime('2024-01-02', '%Y-%m-%d').day,"
        " time.strptime('2024', '%Y').tm_year, datetime.date(2024, 1, 1).strftime('%Y'),"
        " len(str(uuid.uuid4())), str(decimal.Decimal(1) / 4), html.unescape('&amp;'),"
        " urllib.parse.quote('a b'), next(csv.reader(io.StringIO('a,b'))),"
        " 'x'.encode('idna'), difflib.SequenceMatcher(None, 'ab', 'ac').ratio()]")
    r = default_sandbox.run("python", code)
    assert r.status is Status.OK, r.message
    assert r.value == [2, 2024, "2024", 36, "0.25", "&", "a%20b", ["a", "b"], b"x", 0.5]
