"""Import allow-lists: the operator's policy (host side) and the snippet's guard (child side)."""

from __future__ import annotations

import os
import sys

import pytest

from runtimes.protocol import Imports
from runtimes.python import imports as guard_module
from sandbox.errors import ConfigError
from sandbox.imports import SAFE_STDLIB, ImportPolicy

STDLIB_SETTING = "stdlib_allow (SANDBOX_STDLIB_ALLOW, --stdlib-allow)"
EXTERNAL_SETTING = "external_allow (SANDBOX_EXTERNAL_ALLOW, --external-allow)"


@pytest.mark.parametrize(
    ("stdlib", "external", "name", "allowed"),
    [
        (SAFE_STDLIB, (), "json", True),
        (SAFE_STDLIB, (), "os", False),
        (SAFE_STDLIB, (), "subprocess", False),
        (SAFE_STDLIB, (), "socket", False),
        (SAFE_STDLIB, (), "ctypes", False),
        (SAFE_STDLIB, (), "urllib.parse", True),
        (SAFE_STDLIB, (), "urllib", False),
        (SAFE_STDLIB, (), "urllib.request", False),
        (SAFE_STDLIB, (), "collections.abc", True),  # under an allowed top-level name
        (SAFE_STDLIB, (), "numpy", False),
        (("*",), (), "os", True),
        (("*",), (), "numpy", False),
        ((), ("*",), "numpy", True),
        ((), ("*",), "os", False),
        ((), ("pandas",), "pandas.core.frame", True),
        ((), ("pandas",), "pandasx", False),
    ],
)
def test_allow_list_rules(stdlib, external, name, allowed):
    assert ImportPolicy.of(stdlib, external).allows(name) is allowed


@pytest.mark.parametrize(
    ("stdlib", "external", "message"),
    [
        (("json", "numpy"), (), "'numpy' is not a standard-library module"),
        (("os; rm",), (), "not a module name"),
        ((), ("bad name",), "external_allow: not a module name"),
    ],
)
def test_bad_allow_lists_are_config_errors(stdlib, external, message):
    with pytest.raises(ConfigError, match=message):
        ImportPolicy.of(stdlib, external)


def test_a_task_narrows_the_operator_lists():
    policy = ImportPolicy.of(SAFE_STDLIB, ("pandas",)).narrow(["json", "pandas"])
    assert policy.imports == Imports(stdlib=("json",), external=("pandas",), narrowed=True)
    assert ImportPolicy.of().narrow(None) == ImportPolicy.of()


@pytest.mark.parametrize(
    ("requested", "message"),
    [
        (["os"], f"imports: 'os' is not allowed by the operator; {STDLIB_SETTING} would allow it"),
        (["requests"], f"'requests' is not allowed by the operator; {EXTERNAL_SETTING}"),
        (["*"], "'*' is not a module name"),
        (["json", ""], "'' is not a module name"),
    ],
)
def test_a_task_cannot_widen_the_operator_lists(requested, message):
    with pytest.raises(ConfigError) as info:
        ImportPolicy.of().narrow(requested)
    assert message in str(info.value)


# -- the child's guard -----------------------------------------------------------------------


def guard(stdlib=(), external=()):
    return guard_module.guard(Imports(tuple(stdlib), tuple(external)))


def test_guard_lets_allowed_modules_through():
    imp = guard(["json", "urllib.parse"])
    assert imp("json").__name__ == "json"
    assert imp("urllib.parse", None, None, ("quote",)).__name__ == "urllib.parse"
    assert imp("urllib", None, None, ("parse",)).parse.__name__ == "urllib.parse"


@pytest.mark.parametrize(
    ("name", "fromlist", "message"),
    [
        ("os", (), f"import of standard-library module 'os' is not allowed here; "
                   f"the operator can allow it with {STDLIB_SETTING}"),
        ("urllib", ("request",), "module 'urllib.request' is not allowed"),
        ("urllib", (), "module 'urllib' is not allowed"),
        # ``from zoneinfo import ZoneInfo``: a class of a module not allowed names the module
        ("zoneinfo", ("ZoneInfo",), f"import of standard-library module 'zoneinfo' is not "
                                    f"allowed here; the operator can allow it with {STDLIB_SETTING}"),
        ("numpy", (), f"third-party module 'numpy' is not allowed here; "
                      f"the operator can allow it with {EXTERNAL_SETTING}"),
    ],
)
def test_guard_refuses_with_the_module_and_the_setting(name, fromlist, message):
    with pytest.raises(ImportError) as info:
        guard(["json", "urllib.parse"])(name, None, None, fromlist)
    assert message in str(info.value)
    assert isinstance(info.value, guard_module.ImportDenied)


def test_guard_refuses_relative_imports():
    with pytest.raises(guard_module.ImportDenied, match="relative imports"):
        guard(["*"])("x", None, None, (), 1)


def test_library_code_imports_what_it_needs():
    # statistics imports fractions, decimal, random... with the real builtins: not checked
    imp = guard(["statistics"])
    assert imp("statistics").mean([1, 2, 3]) == 2
    with pytest.raises(guard_module.ImportDenied):
        imp("random")


def test_snippet_builtins_are_a_copy():
    import builtins

    namespace = guard_module.snippet_builtins(Imports())
    assert namespace["__import__"] is not builtins.__import__
    assert builtins.__import__.__module__ == "builtins"


def test_what_builtins_import_on_a_snippets_behalf_passes_a_narrow_list():
    import datetime

    namespace = guard_module.snippet_builtins(Imports(stdlib=("datetime",)))
    code = compile("def f():\n    return datetime.datetime.strptime('2024-05-06', '%Y-%m-%d').day"
                   , "<snippet>", "exec")
    scope = {"__builtins__": namespace, "datetime": datetime}
    exec(code, scope)
    assert scope["f"]() == 6  # C code imported _strptime through the snippet's __import__


def test_stdlib_view_copies_packages_whole_and_modules_alone():
    from sandbox.jail.stdlib_view import units

    packages, singles = units("/usr/lib/python3.11", [
        "/usr/lib/python3.11/json/decoder.py", "/usr/lib/python3.11/os.py",
        "/usr/lib/python3.11/lib-dynload/_json.cpython-311-x86_64-linux-gnu.so",
    ])
    assert packages == {"json", "encodings"}  # codecs are found by name: always whole
    assert singles == {"os.py", "lib-dynload/_json.cpython-311-x86_64-linux-gnu.so"}


def test_stdlib_probe_is_remembered_until_what_it_depends_on_changes(tmp_path, monkeypatch):
    from sandbox.jail import stdlib_view

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    staged = tmp_path / "staged"
    (staged / "runtimes").mkdir(parents=True)
    (staged / "runtimes" / "zygote.py").write_text("x = 1\n")
    stdlib = tmp_path / "stdlib"
    stdlib.mkdir()
    (stdlib / "os.py").write_text("")
    calls = []

    def fake_probe(python, root, runtime, allowed):
        calls.append(allowed)
        return str(stdlib), [str(stdlib / "os.py")]

    monkeypatch.setattr(stdlib_view, "probe", fake_probe)
    args = (sys.executable, str(stdlib), str(staged), "python")
    assert stdlib_view.cached_probe(*args, ("json",)) == (str(stdlib), [str(stdlib / "os.py")])
    stdlib_view.cached_probe(*args, ("json",))
    assert calls == [("json",)]  # the second start read it from disk
    stdlib_view.cached_probe(*args, ("re",))  # another allow-list: another answer
    (staged / "runtimes" / "zygote.py").write_text("x = 22\n")  # our code changed
    stdlib_view.cached_probe(*args, ("json",))
    assert calls == [("json",), ("re",), ("json",)]


def test_the_probe_cache_is_bounded(tmp_path, monkeypatch):
    """Each staging of our code is another key: the cache must not grow without a bound."""
    from sandbox.jail import stdlib_view

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(stdlib_view, "KEEP_PROBES", 3)
    stdlib = tmp_path / "stdlib"
    stdlib.mkdir()
    (stdlib / "os.py").write_text("")
    monkeypatch.setattr(stdlib_view, "probe", lambda *a: (str(stdlib), [str(stdlib / "os.py")]))
    for allowed in ("a", "b", "c", "d", "e"):
        stdlib_view.cached_probe(sys.executable, str(stdlib), str(tmp_path), "python", (allowed,))
    assert len(list((tmp_path / "cache" / "snippet-sandbox").glob("stdlib-view-*.json"))) == 3


def test_pruning_keeps_the_most_recently_used_probes_and_nothing_else_is_touched(tmp_path):
    from sandbox.jail import stdlib_view

    for age in range(5):
        entry = tmp_path / f"stdlib-view-{age}.json"
        entry.write_text("{}")
        os.utime(entry, ns=(0, (10 - age) * 10**9))  # stdlib-view-0 is the most recent
    (tmp_path / "n8n-2.41.1.lock").write_text("")
    stdlib_view.prune(str(tmp_path), 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "n8n-2.41.1.lock", "stdlib-view-0.json", "stdlib-view-1.json", "stdlib-view-2.json"]


def test_stdlib_view_refuses_a_file_outside_the_standard_library():
    from sandbox.errors import JailError
    from sandbox.jail.stdlib_view import units

    with pytest.raises(JailError, match="outside"):
        units("/usr/lib/python3.11", ["/usr/lib/python3.11/../../../etc/shadow"])


def test_plus_names_add_to_the_default_list():
    policy = ImportPolicy.of(("+sys", "+os"))
    assert policy.stdlib == frozenset(SAFE_STDLIB) | {"sys", "os"}


def test_plain_names_replace_the_default_list():
    assert ImportPolicy.of(("sys",)).stdlib == frozenset({"sys"})


def test_mixing_added_and_replacing_names_is_refused_saying_why():
    with pytest.raises(ConfigError, match=r"stdlib_allow: mixes names that add .*\+name"):
        ImportPolicy.of(("+sys", "json"))


def test_a_task_narrowing_is_what_a_denial_names():
    narrowed = ImportPolicy.of().narrow(["json"]).imports
    assert narrowed.narrowed
    imp = guard_module.guard(narrowed)
    with pytest.raises(guard_module.ImportDenied,
                       match=r"'math' is not in this task's imports \(the imports= of the request"):
        imp("math", None, None, (), 0)


def test_without_transitive_imports_a_packages_importlib_calls_pass_the_lists():
    # n8n's N8N_RUNNERS_ALLOW_TRANSITIVE_IMPORTS unset: what a package loads by
    # importlib.import_module (optional dependencies, plugins) must be allowed too
    import importlib

    guard_module.install_library_check()  # as the executor's preload does, once
    undo = guard_module.check_library_imports(Imports(stdlib=("json",), transitive=False))
    try:
        assert importlib.import_module("json").__name__ == "json"
        with pytest.raises(guard_module.ImportDenied) as info:
            importlib.import_module("sqlite3")
        assert "'sqlite3' is not allowed here" in str(info.value)
        with pytest.raises(guard_module.ImportDenied):
            importlib.import_module(".decoder", "xml")  # resolves to xml.decoder
    finally:
        undo()
    assert importlib.import_module("sqlite3").__name__ == "sqlite3"


def test_ordinary_stdlib_is_the_safe_set_and_what_real_code_nodes_import():
    from sandbox.imports import ORDINARY_STDLIB

    policy = ImportPolicy.of(ORDINARY_STDLIB)
    for name in ("json", "zoneinfo", "sqlite3", "asyncio", "xml.etree.ElementTree", "urllib.parse"):
        assert policy.allows(name), name
    for name in ("os", "sys", "subprocess", "socket", "ctypes", "importlib", "multiprocessing"):
        assert not policy.allows(name), name


def test_the_n8n_code_node_wrapper_is_compiled_once_in_the_zygote():
    from runtimes.python import executor
    from sandbox.n8n import python_node

    executor.prepare_library()
    assert python_node.WRAPPER in executor._prepared
