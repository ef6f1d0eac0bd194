"""npm packages for n8n's JavaScript Code node (NODE_FUNCTION_ALLOW_EXTERNAL): installed by
``sandbox packages install --runtime javascript`` with the real npm, mounted read-only in a
real JavaScript jail, loaded by ``require()``.

The packages are built here as tarballs (``npm pack``) so the test needs no registry: one
with package.json ``main``, relative requires, a JSON file and a dependency on another, whose
package.json has an ``exports`` map; one that asks for a Node module this runner lacks; one
with a native addon, which the command refuses.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from sandbox import PoolConfig
from sandbox.config import Limits
from sandbox.n8n import javascript_node
from sandbox.n8n import protocol as p
from sandbox.n8n.javascript_node import CodeOptions
from sandbox.n8n.task import Finished
from tests.n8n import captures
from tests.n8n.jobs import Jobs

pytestmark = [pytest.mark.jail,
              pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")]

LIMITS = Limits(timeout_s=10.0, memory_mb=128)
ALLOW = CodeOptions(allow_external=("sbx-greet", "sbx-greet/lib/node", "sbx-missing"))
PACKAGES = {
    "sbx-greet": {
        "package.json": {"name": "sbx-greet", "version": "1.2.0", "main": "lib/main",
                         "dependencies": {"sbx-case": "0.1.0"}},
        "lib/main.js": "const util = require('./util');\nconst data = require('../data.json');\n"
                       "const up = require('sbx-case');\n"
                       "exports.greet = (who) => up.upper(data.word + ', ' + util.name(who));\n"
                       "exports.loads = util.loads;\n",
        "lib/util.js": "globalThis.__sbxLoads = (globalThis.__sbxLoads || 0) + 1;\n"
                       "module.exports = { name: (w) => String(w).trim(), "
                       "loads: globalThis.__sbxLoads };\n",
        "lib/node.js": "const fs = require('fs');\nmodule.exports = fs;\n",
        "data.json": {"word": "hello"},
    },
    "sbx-case": {
        "package.json": {"name": "sbx-case", "version": "0.1.0", "exports": {
            ".": {"import": "./esm.mjs", "require": "./cjs.js"}}},
        "cjs.js": "exports.upper = (s) => s.toUpperCase();\n",
        "esm.mjs": "export const upper = null;\n",
    },
    "sbx-native": {
        "package.json": {"name": "sbx-native", "version": "0.0.1"},
        "index.js": "module.exports = require('./build/Release/addon.node');\n",
        "binding.gyp": {"targets": [{"target_name": "addon", "sources": ["addon.cc"]}]},
    },
}


def pack(name: str, where: Path) -> str:
    src = where / name
    for rel, body in PACKAGES[name].items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(body if isinstance(body, str) else json.dumps(body))
    out = subprocess.run(["npm", "pack", "--silent", "--pack-destination", str(where)], cwd=src,
                         capture_output=True, text=True, timeout=120, check=True)
    return str(where / out.stdout.strip().splitlines()[-1])


def sandbox_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sandbox", *args],
                          capture_output=True, text=True, timeout=300, check=False,
                          stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def installed():
    # a directory the jail's user (nobody, when we are root) can reach: not under pytest's
    # 0700 tmp root
    where = Path(tempfile.mkdtemp(prefix="sandbox-npm-test-"))
    os.chmod(where, 0o755)
    tarballs = [pack(name, where) for name in ("sbx-case", "sbx-greet")]
    r = sandbox_cli("packages", "install", "--runtime", "javascript", *tarballs,
                    "--dir", str(where / "env"))
    assert r.returncode == 0, r.stderr
    yield where / "env"
    shutil.rmtree(where, ignore_errors=True)


@pytest.fixture(scope="module")
def sb(installed):
    with Jobs(PoolConfig(size=1, js_packages_dir=str(installed)), runtimes=("javascript",)) as box:
        yield box


def run_js(sb, code, options=ALLOW) -> Finished:
    s = p.Settings(code=code, node_mode="runOnceForAllItems", workflow_mode="manual",
                   continue_on_fail=False)
    data = json.loads(json.dumps(
        next(m for m in captures.messages("07") if m["type"] == "broker:taskdataresponse")["data"]))
    data["inputData"] = {"main": [[{"json": {"x": 1}, "pairedItem": {"item": 0}}]]}
    job = javascript_node.job(s, data, LIMITS, options=options)
    return javascript_node.finish(s, sb.run(job), LIMITS)


def value(done: Finished):
    assert done.error is None, done.error
    assert done.done is not None
    return done.done["result"][0]["json"]["v"]


def test_the_command_lists_what_it_installed(installed):
    r = sandbox_cli("packages", "list", "--runtime", "javascript", "--dir", str(installed))
    assert r.stdout.split()[1:] == ["sbx-case@0.1.0", "sbx-greet@1.2.0"], r.stderr


def test_an_allowed_package_loads_with_its_files_and_dependency(sb):
    code = "const g = require('sbx-greet');\nreturn [{json: {v: g.greet(' ann ')}}];"
    assert value(run_js(sb, code)) == "HELLO, ANN"


def test_a_module_is_evaluated_once_per_task(sb):
    code = ("const a = require('sbx-greet'), b = require('sbx-greet');\n"
            "return [{json: {v: [a === b, a.loads]}}];")
    assert value(run_js(sb, code)) == [True, 1]


def test_a_package_not_in_the_allow_list_is_refused_in_n8ns_words(sb):
    err = run_js(sb, "\nrequire('sbx-case');\nreturn [];").error
    assert err is not None and err["message"] == "Module 'sbx-case' is disallowed [line 2]"


def test_an_allowed_package_that_is_not_installed_names_itself(sb):
    err = run_js(sb, "require('sbx-missing');\nreturn [];").error
    assert err is not None and err["message"].startswith("Cannot find module 'sbx-missing'")


def test_a_package_that_needs_a_node_module_names_what_is_missing(sb):
    err = run_js(sb, "require('sbx-greet/lib/node');\nreturn [];").error
    assert err is not None and err["message"].startswith(
        "the Node module 'fs' (required by /sandbox/npm/node_modules/sbx-greet/lib/node.js) "
        "is not available in this runner (snippet-sandbox)")


def test_without_the_setting_an_allowed_package_is_not_found():
    with Jobs(PoolConfig(size=1), runtimes=("javascript",)) as box:
        err = run_js(box, "require('sbx-greet');\nreturn [];").error
    assert err is not None and err["message"].startswith("Cannot find module 'sbx-greet'")


def test_a_package_with_a_native_addon_is_refused_and_the_old_directory_kept(installed):
    where = installed.parent
    r = sandbox_cli("packages", "install", "--runtime", "javascript",
                    pack("sbx-native", where), "--dir", str(installed))
    assert r.returncode == 1
    assert "native addons" in r.stderr and "sbx-native (binding.gyp)" in r.stderr
    assert not (installed / "node_modules" / "sbx-native").exists()
    assert (installed / "node_modules" / "sbx-greet").is_dir()
