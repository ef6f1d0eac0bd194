"""`sandbox serve`, `sandbox keys` and the settings, as an operator meets them (issue 12's
items 10-12 in brackets)."""

from __future__ import annotations

import os
import platform
import signal
import socket
import stat
import subprocess
import sys
import time

import pytest
import zmq.auth

from broker.auth import CurveServer
from broker.errors import BrokerConfigError
from broker.server import BrokerServer
from sandbox.client import Client
from sandbox.config import ServiceConfig
from sandbox.service.daemon import RunnerWatcher
from sandbox.errors import ConfigError
from sandbox.client.fakes import FakeBroker


def sandbox(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sandbox", *args], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


# -- [10] an ipc path in use is refused, and a clean stop leaves nothing ---------------------------


@pytest.mark.jail
def test_serve_refuses_a_path_a_live_daemon_holds_and_a_clean_stop_removes_its_files(ipc_dir):
    """[10] A second `sandbox serve` took the socket over silently (the first stayed
    'healthy' and unreachable); the socket file stayed after a clean stop."""
    endpoint = f"ipc://{ipc_dir}/s.sock"
    argv = [sys.executable, "-m", "sandbox", "serve", "--bind", endpoint, "--http", "",
            "--runners", "1", "--slots", "1", "--runtimes", "python"]
    first = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    try:
        with Client(endpoint, queue_timeout_s=60) as client:
            assert client.run("python", "return 1").value == 1
            second = subprocess.run(argv, capture_output=True, text=True, timeout=120)
            assert second.returncode == 1
            assert second.stderr.strip() == (f"sandbox: {endpoint} is already in use by pid "
                                             f"{first.pid}")
            assert client.run("python", "return 2").value == 2  # the first still serves
        first.send_signal(signal.SIGTERM)
        assert first.wait(60) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert sorted(os.listdir(ipc_dir)) == []  # s.sock and s.runners.sock are gone


def test_a_stale_socket_is_reused_and_what_is_not_a_socket_is_left_alone(ipc_dir):
    stale = os.path.join(ipc_dir, "stale.sock")
    left = socket.socket(socket.AF_UNIX)
    left.bind(stale)  # what a killed process leaves behind
    left.close()
    server = BrokerServer([f"ipc://{stale}"])
    try:
        with pytest.raises(BrokerConfigError, match=f"already in use by pid {os.getpid()}"):
            BrokerServer([f"ipc://{stale}"])
    finally:
        server.close()
    assert not os.path.exists(stale)
    precious = os.path.join(ipc_dir, "notes.txt")
    with open(precious, "w") as f:
        f.write("keep me")
    with pytest.raises(BrokerConfigError, match="exists and is not a socket"):
        BrokerServer([f"ipc://{precious}"])
    with open(precious) as f:
        assert f.read() == "keep me"


# -- [11] settings are type-checked --------------------------------------------------------------


def test_a_string_where_a_boolean_belongs_is_refused_naming_the_setting_and_the_file(ipc_dir):
    """[11] insecure = "false" in the TOML file turned plain TCP on."""
    config = os.path.join(ipc_dir, "serve.toml")
    with open(config, "w") as f:
        f.write('bind = ["tcp://127.0.0.1:7799"]\ninsecure = "false"\n')
    done = sandbox("serve", "--config", config, "--http", "")
    assert done.returncode == 2
    assert done.stderr.strip() == (f"sandbox: config file {config}: insecure must be a boolean "
                                   "(true or false), not str 'false'")


# -- [12] keys -----------------------------------------------------------------------------------


def _modes(directory: str) -> dict[str, int]:
    out = {}
    for root, dirs, files in os.walk(directory):
        for name in dirs + files:
            path = os.path.join(root, name)
            out[os.path.relpath(path, directory)] = stat.S_IMODE(os.stat(path).st_mode)
    return out


def test_keys_are_private_and_never_replaced_without_force(ipc_dir):
    """[12] Secret keys were written 0644 and silently overwritten (locking out every
    deployed peer)."""
    keys = os.path.join(ipc_dir, "keys")
    assert sandbox("keys", keys).returncode == 0
    assert _modes(keys) == {
        "authorized": 0o700, "runners": 0o700, "authorized/client.key": 0o600,
        "runners/runner.key": 0o600, "server.key": 0o644, "server.key_secret": 0o600,
        "client.key": 0o644, "client.key_secret": 0o600, "runner.key": 0o644,
        "runner.key_secret": 0o600,
    }
    assert stat.S_IMODE(os.stat(keys).st_mode) == 0o700
    with open(os.path.join(keys, "server.key_secret")) as f:
        server_secret = f.read()
    again = sandbox("keys", keys)
    assert again.returncode == 2
    assert "would replace" in again.stderr and "--force" in again.stderr
    more = sandbox("keys", keys, "--client", "alice", "--runner", "gpu-1")
    assert more.returncode == 0, more.stderr
    with open(os.path.join(keys, "server.key_secret")) as f:
        assert f.read() == server_secret  # adding peers keeps the server's pair
    assert os.path.exists(os.path.join(keys, "authorized", "alice.key"))
    assert os.path.exists(os.path.join(keys, "runners", "gpu-1.key"))
    forced = sandbox("keys", keys, "--force")
    assert forced.returncode == 0
    with open(os.path.join(keys, "server.key_secret")) as f:
        assert f.read() != server_secret


def test_keys_refuse_a_directory_others_can_read(ipc_dir):
    open_dir = os.path.join(ipc_dir, "open")
    os.mkdir(open_dir)
    os.chmod(open_dir, 0o755)
    done = sandbox("keys", open_dir)
    assert done.returncode == 2
    assert f"{open_dir} is open to other users (mode 0755)" in done.stderr
    assert os.listdir(open_dir) == []


def test_a_client_key_made_with_a_name_is_picked_with_key(ipc_dir):
    """[12] Keys made with --client NAME could not be used by the CLI."""
    keys = os.path.join(ipc_dir, "keys")
    assert sandbox("keys", keys, "--client", "alice").returncode == 0
    public, secret = zmq.auth.load_certificate(os.path.join(keys, "server.key_secret"))
    assert secret is not None
    curve = CurveServer(public, secret, os.path.join(keys, "authorized"),
                        os.path.join(keys, "runners"))
    with FakeBroker("tcp://127.0.0.1:*", curve=curve) as broker:
        script = os.path.join(ipc_dir, "one.py")
        with open(script, "w") as f:
            f.write("return 1\n")
        ran = sandbox("exec", "--runtime", "python", "--connect", broker.endpoint,
                      "--curve-dir", keys, "--key", "alice", "--json", script)
        assert ran.returncode == 0, ran.stderr
        missing = sandbox("exec", "--runtime", "python", "--connect", broker.endpoint,
                          "--curve-dir", keys, script)  # the default pair, client, was not made
        assert missing.returncode == 2
        assert missing.stderr == (f"sandbox: the key file {keys}/client.key_secret does not "
                                  f"exist (`sandbox keys {keys} --client client` makes it, or "
                                  "--runner client)\n")


# -- local runners reach the runner endpoint with runner credentials -------------------------------


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({}, ("", False)),
        ({"bind": ("tcp://0.0.0.0:7700",), "curve_dir": "/k"}, ("", False)),  # runners stay on ipc
        ({"bind": ("tcp://0.0.0.0:7700",), "runner_bind": ("tcp://0.0.0.0:7701",),
          "curve_dir": "/k"}, ("/k", False)),
        ({"runner_bind": ("tcp://127.0.0.1:7701",), "insecure": True}, ("", True)),
    ],
    ids=["ipc", "tcp-clients", "tcp-runners", "insecure"],
)
def test_local_runners_connect_to_the_runner_endpoint_with_runner_keys(settings, expected):
    config = ServiceConfig(**settings)
    endpoint = config.runner_endpoints()[0]
    argv = RunnerWatcher(config, endpoint).argv(0)
    assert argv[argv.index("--connect") + 1] == endpoint
    assert endpoint not in config.endpoints()
    assert "--key" not in argv  # the runner's default pair, runner
    handed = ServiceConfig.from_json(argv[argv.index("--settings") + 1])
    assert (handed.curve_dir, handed.insecure) == expected


def test_local_runners_get_the_daemons_settings_from_the_schema_not_from_flags():
    """[14.9] serve re-spelled its settings as runner flags (and dropped those the runner
    had no flag for); now it hands them over as the schema holds them."""
    config = ServiceConfig(slots=3, groups=("gpu", "big"), heartbeat_s=0.25, liveness=5,
                           stdlib_allow=("+os",), external_allow=("six",), preload=("json",),
                           cgroup="off", cgroup_root="/x", runtimes=("python",))
    argv = RunnerWatcher(config, config.runner_endpoints()[0]).argv(1)
    assert argv[3:4] == ["runner"] and argv[argv.index("--name") + 1] == "local-1"
    handed = ServiceConfig.from_json(argv[argv.index("--settings") + 1])
    assert handed.pool() == config.pool()
    assert (handed.slots, handed.groups, handed.heartbeat_s, handed.liveness, handed.runtimes) == (
        3, ("gpu", "big"), 0.25, 5, ("python",))


def test_the_default_runner_endpoint_sits_beside_the_client_one():
    config = ServiceConfig(bind=("ipc:///run/sbx/sandbox.sock",))
    assert config.runner_endpoints() == ("ipc:///run/sbx/sandbox.runners.sock",)
    tcp = ServiceConfig(bind=("tcp://0.0.0.0:7700",), insecure=True).runner_endpoints()[0]
    assert tcp.startswith("ipc://") and tcp.endswith("-7700.runners.sock")


def test_a_tcp_runner_endpoint_needs_keys_like_a_client_one():
    with pytest.raises(ConfigError, match="plain TCP is refused"):
        ServiceConfig(runner_bind=("tcp://0.0.0.0:7701",))




# -- issue 14: one line that says what to do, instead of a traceback ------------------------------


def _taken_port() -> socket.socket:
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    return held


def test_a_port_in_use_is_one_line_naming_the_endpoint():
    """[14.4] `ZMQError: Address already in use` in a traceback, with no port named."""
    with _taken_port() as held:
        endpoint = f"tcp://127.0.0.1:{held.getsockname()[1]}"
        done = sandbox("serve", "--bind", endpoint, "--insecure", "--http", "", "--runners", "0")
    assert done.returncode == 1
    assert done.stderr == f"sandbox: cannot bind {endpoint}: address already in use\n"


def test_the_http_port_in_use_is_one_line(ipc_dir):
    """[14.4] `OSError: [Errno 98]` in a traceback."""
    with _taken_port() as held:
        address = f"127.0.0.1:{held.getsockname()[1]}"
        done = sandbox("serve", "--bind", f"ipc://{ipc_dir}/s.sock", "--http", address,
                       "--runners", "0")
    assert done.returncode == 1
    assert done.stderr == f"sandbox: cannot serve http on {address}: Address already in use\n"
    assert os.listdir(ipc_dir) == []  # the broker's sockets went with it


@pytest.mark.parametrize("command", [("exec", "-r", "python", "--connect", "foo"),
                                     ("runner", "--connect", "foo")])
def test_connect_to_what_is_not_an_endpoint_is_a_usage_error(command):
    """[14.4] `--connect foo`: `ZMQError: Invalid argument`, exit 1 instead of 2."""
    done = sandbox(*command)
    assert done.returncode == 2
    assert done.stderr == ("sandbox: --connect: 'foo' is not an endpoint: ipc://PATH or "
                           "tcp://HOST:PORT\n")


def test_a_missing_packages_dir_stops_serve_before_any_runner_starts(ipc_dir):
    """[14.6] serve started, then restarted its runner forever (each failing on the missing
    directory) while /healthz said 503 and clients waited 30 s."""
    done = sandbox("serve", "--bind", f"ipc://{ipc_dir}/s.sock", "--http", "",
                   "--packages-dir", f"{ipc_dir}/missing")
    assert done.returncode == 1
    assert done.stderr == (f"sandbox: packages_dir {ipc_dir}/missing does not exist (run "
                           "`sandbox packages install ...` first)\n")


def test_a_missing_runner_key_stops_serve_before_any_runner_starts(ipc_dir):
    """[21.6] With runners on tcp and no runner.key_secret in the CURVE folder, serve
    restarted its runners forever ("Invalid certificate file" for a file that does not
    exist) instead of stopping with one line."""
    keys = os.path.join(ipc_dir, "keys")
    assert sandbox("keys", keys, "--client", "client").returncode == 0  # no runner pair
    held = _taken_port()
    port = held.getsockname()[1]
    held.close()  # a port that was free a moment ago: serve must stop before it binds
    done = sandbox("serve", "--bind", f"ipc://{ipc_dir}/s.sock", "--http", "",
                   "--runner-bind", f"tcp://127.0.0.1:{port}", "--curve-dir", keys, timeout=60)
    assert done.returncode == 1
    assert done.stderr == (f"sandbox: the key file {keys}/runner.key_secret does not exist "
                           f"(`sandbox keys {keys} --client runner` makes it, or --runner runner)\n")


def _probe(url: str) -> tuple[int, object]:
    import json
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            body = r.read()
            return r.status, json.loads(body) if r.headers.get_content_type() == (
                "application/json") else body.decode()
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _serve_http(ipc_dir: str, *args: str) -> tuple[subprocess.Popen[bytes], str]:
    with _taken_port() as probe:
        port = probe.getsockname()[1]  # free once closed: serve takes it
    proc = subprocess.Popen([sys.executable, "-m", "sandbox", "serve", "--bind",
                             f"ipc://{ipc_dir}/s.sock", "--http", f"127.0.0.1:{port}", *args],
                            stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    end = time.monotonic() + 60
    while True:
        try:
            _probe(f"{url}/livez")
            return proc, url
        except OSError:
            if time.monotonic() > end or proc.poll() is not None:
                proc.kill()
                raise
            time.sleep(0.1)  # polling the condition itself, within the deadline


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    assert proc.stderr is not None
    proc.stderr.close()


def test_healthz_says_in_its_body_what_its_code_says(ipc_dir):
    """[14.6] /healthz answered 503 with the body {"status": "ok", "runners": 0}. [25.8] A
    broker whose runners are elsewhere (--runners 0) is ready without them: they reach it
    through the address readiness guards (a Kubernetes Service)."""
    proc, url = _serve_http(ipc_dir, "--runners", "0")
    try:
        answers = [_probe(f"{url}{path}") for path in ("/healthz", "/readyz", "/livez")]
    finally:
        _stop(proc)
    ready = {"status": "ok", "runners": 0, "queued": 0, "in_flight": 0}
    assert answers == [(200, ready), (200, ready), (200, {"status": "ok"})]


def test_probes_take_a_query_string_and_speak_http_1_1(ipc_dir):
    """[25.8] /healthz was http.server's: HTTP/1.0, its path compared whole (/healthz?x was
    404)."""
    import http.client

    proc, url = _serve_http(ipc_dir, "--runners", "0")
    try:
        conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=5)
        answers = []
        for path in ("/healthz?verbose", "/readyz?x=1", "/livez?", "/nowhere"):
            conn.request("GET", path)  # one connection: kept alive between requests
            response = conn.getresponse()
            answers.append((response.version, response.status))
            response.read()
        conn.close()
    finally:
        _stop(proc)
    assert answers == [(11, 200), (11, 200), (11, 200), (11, 404)]


def test_metrics_name_the_build_and_the_process(ipc_dir):
    """[25.8] /metrics had no sandbox_build_info and no process metrics."""
    from importlib.metadata import version

    proc, url = _serve_http(ipc_dir, "--runners", "0")
    try:
        code, text = _probe(f"{url}/metrics")
    finally:
        _stop(proc)
    assert isinstance(text, str)
    lines = text.splitlines()
    assert (code, [line for line in lines if line.startswith("sandbox_build_info")]) == (
        200, ['sandbox_build_info{component="serve",python="%s",version="%s"} 1.0'
              % (platform.python_version(), version("snippet-sandbox"))])
    assert {line.split(" ")[0] for line in lines} >= {
        "process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
        "process_start_time_seconds"}


@pytest.mark.parametrize(("draining", "runners", "own", "status", "code"), [
    (False, 1, True, "ok", 200), (False, 0, True, "no runners", 503),
    (True, 1, True, "draining", 503), (False, 0, False, "ok", 200),
    (True, 0, False, "draining", 503)])
def test_the_health_body_and_code_agree(draining, runners, own, status, code):
    from sandbox.service.daemon import health

    body = health(draining, runners, 0, 0, own_runners=own)
    assert body["status"] == status and (200 if body["status"] == "ok" else 503) == code


def test_an_old_flag_still_works_and_names_the_new_one(ipc_dir):
    """[14.9] `--grace` and friends become `--grace-s`...: scripts keep working, and say so."""
    with _taken_port() as held:
        endpoint = f"tcp://127.0.0.1:{held.getsockname()[1]}"
        done = sandbox("serve", "--bind", endpoint, "--insecure", "--http", "", "--runners",
                       "0", "--grace", "3", "--queue-max", "5")
    assert done.returncode == 1  # the port is held: serve got as far as binding it
    assert done.stderr.splitlines() == [
        "sandbox: warning: --grace is now --grace-s",
        "sandbox: warning: --queue-max is now --max-queued",
        f"sandbox: cannot bind {endpoint}: address already in use"]


def test_a_misspelled_sandbox_variable_is_warned_about(ipc_dir):
    with _taken_port() as held:
        endpoint = f"tcp://127.0.0.1:{held.getsockname()[1]}"
        done = subprocess.run([sys.executable, "-m", "sandbox", "serve", "--bind", endpoint,
                               "--insecure", "--http", "", "--runners", "0"],
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, "SANDBOX_SLOTZ": "8"})
    assert done.stderr.splitlines()[0] == ("sandbox: warning: SANDBOX_SLOTZ is not a setting "
                                           "and is ignored (did you mean SANDBOX_SLOTS?)")
