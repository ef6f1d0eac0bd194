"""The Kubernetes deployment (``sandbox/deploy/k8s``) checked against the schemas of the
real things, with no cluster: the Kubernetes API's (``kubernetes-validate`` bundles them),
KEDA's ScaledObject (the ``@kubernetes-models/keda`` npm package's validator, run by Node),
and against the service itself: the metrics KEDA's query reads are the ones the broker
exports, the runner's pod grace outlasts its drain, the scaling threshold is its slots.
And the same rule, run by ``sandbox.service.autoscale``, scales real runners of a real daemon.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from broker.core import BrokerConfig
from broker.metrics import BrokerMetrics
from broker.server import BrokerServer

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "sandbox" / "deploy" / "k8s"
KEDA_MODELS = "@kubernetes-models/keda@2.0.0"


def docs(name: str) -> list[dict]:
    return list(yaml.safe_load_all((K8S / name).read_text()))


def env_of(container: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", [])}


@pytest.mark.parametrize("name", ["broker.yaml", "runner.yaml"])
def test_the_kubernetes_objects_are_valid_for_the_kubernetes_api(name):
    import kubernetes_validate

    for doc in docs(name):
        kubernetes_validate.validate(doc, "1.30", strict=True)  # raises ValidationError


def _keda_validator() -> Path:
    """The npm package of KEDA's models, installed once per machine under a lock."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.skip("Node.js and npm are needed to run KEDA's schema validator")
    cache = Path(os.environ.get("SANDBOX_N8N_CACHE", Path.home() / ".cache" / "snippet-sandbox"))
    home = cache / "keda-models"
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (home / "node_modules" / "@kubernetes-models" / "keda").is_dir():
            done = subprocess.run([npm, "install", "--prefix", str(home), "--no-audit", "--no-fund",
                                   "--silent", KEDA_MODELS], capture_output=True, text=True,
                                  timeout=300)
            if done.returncode != 0:
                pytest.skip(f"npm could not install {KEDA_MODELS}: {done.stderr[-300:]}")
    script = home / "validate.mjs"
    script.write_text(
        'import { ScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject";\n'
        'import fs from "node:fs";\n'
        'for (const doc of JSON.parse(fs.readFileSync(0, "utf8"))) {\n'
        '  try { new ScaledObject(doc).validate(); console.log("ok"); }\n'
        '  catch (e) { console.log("invalid: " + e.message.split("\\n")[0]); }\n'
        "}\n")
    return script


def keda_verdicts(objects: list[dict]) -> list[str]:
    script = _keda_validator()
    done = subprocess.run(["node", str(script)], input=json.dumps(objects), capture_output=True,
                          text=True, timeout=60, cwd=script.parent)
    assert done.returncode == 0, done.stderr
    return done.stdout.split("\n")[:-1]


def test_the_scaled_object_is_valid_for_kedas_schema():
    assert keda_verdicts(docs("keda.yaml")) == ["ok"]


def test_kedas_validator_refuses_what_keda_would():
    """The validator is no rubber stamp: a count that is not an integer is refused."""
    bad = docs("keda.yaml")[0]
    bad["spec"]["minReplicaCount"] = "one"
    assert keda_verdicts([bad]) == ["invalid: data/spec/minReplicaCount must be integer"]


def test_kedas_query_reads_metrics_the_broker_exports():
    from prometheus_client import generate_latest

    from broker.core import BrokerConfig
    from broker.metrics import BrokerMetrics
    from broker.server import BrokerServer

    query = docs("keda.yaml")[0]["spec"]["triggers"][0]["metadata"]["query"]
    wanted = set(re.findall(r"\b(sandbox_[a-z_]+)", query))
    server = BrokerServer([f"inproc://deploy-{os.getpid()}"], BrokerConfig())
    try:
        metrics = BrokerMetrics()
        metrics.attach(server)
        with server.lock:  # one queued task, so that every family has a sample
            server.core.on_client(b"c", _submit(), time.monotonic())
        exported = set(re.findall(r"^(sandbox_[a-z_]+)", generate_latest(metrics.registry).decode(),
                                  re.M))
    finally:
        server.close()
    assert wanted and wanted <= exported


def test_the_brokers_probes_answer_on_the_paths_the_pod_names_while_no_runner_is_there():
    """[25.8] Readiness was /healthz, 503 while no runner had registered; the runners reach
    the broker through its Service, which sends nothing to a pod that is not ready: neither
    waited for the other. Liveness was a TCP connect, which a wedged loop passes."""
    import httpx

    from sandbox.config import ServiceConfig
    from sandbox.service.daemon import _probe_server

    container = docs("broker.yaml")[0]["spec"]["template"]["spec"]["containers"][0]
    env = env_of(container)
    port = next(p["containerPort"] for p in container["ports"] if p["name"] == "metrics")
    probes = [container[kind]["httpGet"] for kind in ("readinessProbe", "livenessProbe")]
    assert env["SANDBOX_HTTP"].endswith(f":{port}") and all(
        probe["port"] == "metrics" for probe in probes)
    config = ServiceConfig(http="127.0.0.1:0", runners=int(env["SANDBOX_RUNNERS"]))
    server = BrokerServer([f"inproc://probes-{os.getpid()}"], BrokerConfig())
    probe_server = _probe_server(config, server, BrokerMetrics())
    try:
        codes = [httpx.get(f"http://{probe_server.address}{probe['path']}").status_code
                 for probe in probes]
    finally:
        probe_server.close()
        server.close()
    assert [probe["path"] for probe in probes] == ["/readyz", "/livez"] and codes == [200, 200]


def test_a_runner_pods_probes_answer_on_the_paths_it_names_while_its_jails_start():
    """[25.8] Runner pods had no probes, and a runner no HTTP server to probe."""
    import httpx

    from sandbox.service.runner_probes import RunnerProbes

    container = docs("runner.yaml")[0]["spec"]["template"]["spec"]["containers"][0]
    env = env_of(container)
    port = next(p["containerPort"] for p in container["ports"] if p["name"] == "probes")
    probes = [container[kind]["httpGet"] for kind in ("readinessProbe", "livenessProbe")]
    assert env["SANDBOX_RUNNER_HTTP"].endswith(f":{port}") and all(
        probe["port"] == "probes" for probe in probes)
    server = RunnerProbes("127.0.0.1:0")  # no runner yet: its jails start
    try:
        codes = [httpx.get(f"http://{server.server.address}{probe['path']}").status_code
                 for probe in probes]
    finally:
        server.close()
    assert [probe["path"] for probe in probes] == ["/readyz", "/livez"] and codes == [503, 200]


def _submit():
    from broker import protocol as p

    return p.Submit("t", "python", "return 1", b"\xc0")


def test_a_runner_pod_outlasts_its_drain_and_keda_scales_by_its_slots():
    runner = docs("runner.yaml")[0]["spec"]["template"]["spec"]
    env = env_of(runner["containers"][0])
    assert runner["terminationGracePeriodSeconds"] > float(env["SANDBOX_GRACE_S"])
    trigger = docs("keda.yaml")[0]["spec"]["triggers"][0]
    assert trigger["metadata"]["threshold"] == env["SANDBOX_SLOTS"]


@pytest.mark.jail
def test_the_rule_scales_real_runners_up_with_demand_and_down_after_it(tmp_path):
    """The KEDA rule as `python -m sandbox.service.autoscale` runs it: two waiting tasks start
    two runners (one slot each), which run them; once idle past the cooldown, they drain and
    leave."""
    from sandbox import Status
    from sandbox.client import Client
    from sandbox.service.autoscale import Rule, Scaler

    endpoint = f"ipc://{tmp_path}/s.sock"
    port = _free_port()
    daemon = subprocess.Popen([sys.executable, "-m", "sandbox", "serve", "--bind", endpoint,
                               "--http", f"127.0.0.1:{port}", "--runners", "0"],
                              stdin=subprocess.DEVNULL)
    scaler = Scaler(Rule(slots=1, least=0, most=2), f"http://127.0.0.1:{port}/metrics",
                    [sys.executable, "-m", "sandbox", "runner", "--connect",
                     f"ipc://{tmp_path}/s.runners.sock", "--slots", "1", "--runtimes", "python"],
                    cooldown_s=0.5)
    try:
        _until(lambda: _metrics_up(port), 60)
        with Client(endpoint, queue_timeout_s=120) as client:
            handles = [client.submit("python", f"import time\ntime.sleep(1)\nreturn {i}",
                                     timeout_s=30) for i in range(2)]
            counts: list[int] = []
            _until(lambda: counts.append(scaler.step(time.monotonic())) or counts[-1] == 2, 60)
            results = [h.result(timeout=120) for h in handles]
        assert [(r.status, r.value) for r in results] == [(Status.OK, 0), (Status.OK, 1)]
        started = list(scaler.runners)
        _until(lambda: scaler.step(time.monotonic()) == 0 and not scaler.runners, 60)
        assert [r.wait(60) for r in started] == [0, 0]  # each drained and left on its own
    finally:
        scaler.stop()
        daemon.terminate()
        daemon.wait(60)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _metrics_up(port: int) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2):
            return True
    except OSError:
        return False


def _until(check, within_s: float) -> None:
    """Wait for ``check()`` within a bound (a liveness bound, never a timing assertion)."""
    end = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < end, "not within the bound"
        time.sleep(0.1)
