"""The operator's npm packages in the JavaScript jail (sandbox/jail/npm.py): mounted read-only,
and require() reads nothing outside them."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import tempfile

import pytest

import seccomp
from sandbox import PoolConfig
from sandbox.config import Limits
from sandbox.jail import launch, mounts
from sandbox.jail.npm import JAIL_NPM
from sandbox.n8n import javascript_node
from sandbox.n8n import protocol as p
from sandbox.n8n.javascript_node import CodeOptions
from tests.n8n import captures
from tests.n8n.jobs import Jobs

pytestmark = pytest.mark.jail


@pytest.fixture(scope="module")
def npm_dir():
    root = tempfile.mkdtemp(prefix="sandbox-npm-mount-")
    os.chmod(root, 0o755)
    pkg = os.path.join(root, "node_modules", "tiny")
    os.makedirs(pkg)
    with open(os.path.join(root, "package.json"), "w") as f:
        json.dump({"dependencies": {"tiny": "1.0.0"}}, f)
    with open(os.path.join(pkg, "index.js"), "w") as f:
        f.write("module.exports = 42;\n")
    for d, _, files in os.walk(root):
        os.chmod(d, 0o755)
        for name in files:
            os.chmod(os.path.join(d, name), 0o644)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_a_write_to_the_mounted_packages_fails_read_only(npm_dir):
    """Capability denied: writing the npm packages directory from inside the jail (EROFS).
    The file is writable by anyone on the host, so only the read-only mount stands between."""
    os.chmod(os.path.join(npm_dir, "node_modules", "tiny", "index.js"), 0o666)
    code = (f"import errno\n"
            f"try:\n    open('{JAIL_NPM}/node_modules/tiny/index.js', 'a').write('x')\n"
            f"except OSError as e:\n    print(errno.errorcode[e.errno])\n")
    argv = launch.nsjail_argv(
        launch.locate_nsjail(None),
        [mounts.JAIL_PYTHON, "-I", "-S", "-B", "-c", code],
        seccomp_policy=seccomp.jail_policy(), cgroup_args=(),
        mounts=mounts.mounts_for("javascript", mounts.interpreter(), npm_dir),
        as_root=os.geteuid() == 0,
    )
    argv[argv.index("--time_limit") + 1] = "20"
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30, env={})
    assert r.stdout.strip() == errno.errorcode[errno.EROFS], r.stderr
    with open(os.path.join(npm_dir, "node_modules", "tiny", "index.js")) as f:
        assert f.read() == "module.exports = 42;\n"


def run_js(sb, code):
    s = p.Settings(code=code, node_mode="runOnceForAllItems", workflow_mode="manual",
                   continue_on_fail=False)
    data = json.loads(json.dumps(
        next(m for m in captures.messages("07") if m["type"] == "broker:taskdataresponse")["data"]))
    data["inputData"] = {"main": [[{"json": {"x": 1}, "pairedItem": {"item": 0}}]]}
    limits = Limits(timeout_s=10.0, memory_mb=128)
    job = javascript_node.job(s, data, limits, options=CodeOptions(allow_external=("*",)))
    return javascript_node.finish(s, sb.run(job), limits)


def test_require_reads_no_file_outside_the_packages(npm_dir):
    """Capability denied: reading a host file (/etc/passwd) through require(), even with every
    external module allowed; the file readers the loader uses are not the snippet's."""
    with Jobs(PoolConfig(size=1, js_packages_dir=npm_dir), runtimes=("javascript",)) as sb:
        assert run_js(sb, "return [{json: {v: require('tiny')}}];").done["result"][0]["json"] \
            == {"v": 42}
        for request in ("../../etc/passwd", "/etc/passwd", "tiny/../../../../etc/passwd"):
            err = run_js(sb, f"require({request!r});\nreturn [];").error
            assert err is not None and err["message"].startswith(
                f"Cannot find module '{request}'"), err
        done = run_js(sb, "return [{json: {v: [typeof __npm_read, typeof __npm_resolve]}}];")
        assert done.done["result"][0]["json"] == {"v": ["undefined", "undefined"]}
