"""The pyodide runtime's pure parts: its settings, the worker spec and Node's command line,
the pool rules it changes, and the request shape every pyodide task gets."""

from __future__ import annotations

import json
import os
import signal

import pytest

from runtimes import protocol
from runtimes.pyodide.launch import NODE_ENV, node_argv
from sandbox import PoolConfig, PyodideConfig, request
from sandbox.errors import ConfigError, RequestError
from sandbox.imports import ImportPolicy
from sandbox.host.pool_core import PoolRules
from sandbox.pyodide.runtime import (EXIT_FATAL, JAIL_DIST, JAIL_NODE, JAIL_PACKAGES, Layout, pool_rules,
                             worker_spec)

JAILED = Layout(JAIL_NODE, JAIL_DIST, "/sandbox/runtimes", "/sandbox/lib/msgpack", JAIL_PACKAGES)
POLICY = ImportPolicy.of(("json",), ())


def test_limits_are_checked():
    with pytest.raises(ConfigError, match="wasm_max_mb"):
        PyodideConfig(wasm_max_mb=8192)  # beyond wasm32's 4 GiB
    with pytest.raises(ConfigError, match="heap_mb"):
        PyodideConfig(heap_mb=0)


def test_the_worker_spec_crosses_the_wire_as_it_is():
    config = PyodideConfig(heap_mb=64, wasm_max_mb=512, preload=("json",))
    spec = worker_spec(config, Layout(JAIL_NODE, JAIL_DIST, "/sandbox/runtimes",
                                      "/sandbox/lib/msgpack", None))
    init = protocol.Init(b"\0" * 8, (), (), spec)
    assert protocol.decode(protocol.encode(init), (protocol.Init,)) == init
    assert spec.node == JAIL_NODE and spec.script == "/sandbox/runtimes/pyodide/worker.mjs"
    settings = json.loads(spec.settings)
    assert settings["wasm_max_mb"] == 512 and settings["preload"] == ["json"]
    assert spec.read_paths == (JAIL_DIST, "/sandbox/runtimes", "/sandbox/lib/msgpack")
    assert spec.write_paths == ()


def test_a_worker_spec_with_a_relative_path_is_a_wire_error():
    spec = worker_spec(PyodideConfig(), JAILED)
    body = protocol.encode(protocol.Init(b"\0" * 8, (), (), spec)).replace(
        JAIL_NODE.encode(), b"usr/bin/node/")  # same length: still a well-formed message
    with pytest.raises(protocol.WireError, match="absolute paths"):
        protocol.decode(body, (protocol.Init,))


def test_node_runs_without_code_from_strings_addons_or_io_uring():
    argv = node_argv(worker_spec(PyodideConfig(heap_mb=64), JAILED), 3)
    assert argv[0] == JAIL_NODE
    for flag in ("--disallow-code-generation-from-strings", "--no-addons",
                 "--max-old-space-size=64", "--experimental-permission"):
        assert flag in argv
    assert "--allow-child-process" not in argv
    assert f"--allow-fs-read={JAIL_DIST}/*" in argv
    assert json.loads(argv[-1])["channel"] == 3
    assert NODE_ENV["UV_USE_IO_URING"] == "0"


def test_only_the_packages_directory_is_writable_for_the_loader(tmp_path):
    env = tmp_path / "env"
    env.mkdir()
    (env / ".snippet-sandbox-pyodide-packages.json").write_text(
        json.dumps({"specs": ["six"], "packages": ["six"]}))
    spec = worker_spec(PyodideConfig(packages_dir=str(env)), JAILED)
    assert spec.write_paths == (JAIL_PACKAGES,)
    settings = json.loads(spec.settings)
    assert settings["load_packages"] == ["six"]
    assert settings["lock_file"] == f"{JAIL_PACKAGES}/pyodide-lock.json"


def test_without_the_permission_model_node_gets_no_permission_flags():
    argv = node_argv(worker_spec(PyodideConfig(permission_model=False), JAILED), 3)
    assert not any(a.startswith(("--experimental-permission", "--allow-")) for a in argv)


def test_the_pool_rules_of_pyodide_workers():
    rules = pool_rules(PoolRules(size=3), PyodideConfig(heap_mb=80, kill_grace_s=0.25))
    assert rules.size == 3 and rules.ready_timeout_s == 60.0 and rules.kill_grace_s == 0.25
    assert dict(rules.exit_reasons)[EXIT_FATAL].startswith("the Pyodide runtime failed")
    assert "heap limit (80 MB)" in dict(rules.signal_reasons)[signal.SIGABRT]


def _build(**options):
    return request.build("pyodide", "return 1", b"\xc0", defaults=PoolConfig().default_limits,
                         import_policy=POLICY, **options)


def test_every_pyodide_task_has_a_reuse_key():
    assert _build().reuse == ("default", 0)
    assert _build(reuse_key="tenant-a", memory_mb=64).reuse == ("tenant-a", 0)
    assert _build(isolation="worker", reuse_key="t").reuse == ("t", 0)


def test_a_pyodide_task_cannot_ask_for_a_fresh_process_or_restricted_python():
    with pytest.raises(RequestError, match='isolation="process" is not available for pyodide'):
        _build(isolation="process")
    with pytest.raises(RequestError, match="policy 'restricted' is not available for pyodide"):
        _build(policy="restricted")


def test_the_import_allow_lists_apply_to_pyodide():
    assert _build(imports=["json"]).imports.stdlib == ("json",)
    with pytest.raises(RequestError, match="os"):
        _build(imports=["os"])


def test_as_root_the_pyodide_cache_can_be_moved(monkeypatch, tmp_path):
    """[25.9] As root the distribution went to /var/cache/snippet-sandbox whatever the
    operator said: now the pyodide_cache_dir setting (SANDBOX_PYODIDE_CACHE_DIR) moves it,
    for the jails, the build tools and `sandbox runtimes` alike."""
    from sandbox.config import ServiceConfig
    from sandbox.pyodide import dist

    monkeypatch.setattr("os.geteuid", lambda: 0)
    pool = ServiceConfig.load(env={"SANDBOX_PYODIDE_CACHE_DIR": str(tmp_path)}, command="serve").pool()
    assert (dist.cache_root(), os.path.dirname(dist.install_dir(pool.pyodide.cache_dir)),
            os.path.dirname(dist.build_tools_dir(pool.pyodide.cache_dir))) == (
        "/var/cache/snippet-sandbox", str(tmp_path), str(tmp_path))
