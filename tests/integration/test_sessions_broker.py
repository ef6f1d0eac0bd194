"""Sessions through a real broker and real runner processes (real jails): pinned to the
runner that holds them, scoped by principal, capped, and lost with their runner."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

from broker.core import BrokerConfig
from sandbox import SessionError, Status
from sandbox.client import AsyncClient, Client
from service_helpers import (HEARTBEAT_S, broker, start_runner, stop_process, stop_runner,
                             wait_for_runners)

import pytest


def _wait(predicate, timeout_s: float = 15.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.fixture
def two_runners(tmp_path):
    config = BrokerConfig(heartbeat_s=HEARTBEAT_S, max_sessions_per_principal=2)
    with broker(tmp_path, config) as server:
        runners = {name: start_runner(server.runner_endpoints[0], name, slots=2)
                   for name in ("a", "b")}
        try:
            wait_for_runners(server, 2)
            yield server, runners
        finally:
            for proc in runners.values():
                stop_runner(proc)


def _holder(server, client_session) -> str:
    with server.lock:
        held = next(s for (_, sid), s in server.core.sessions.items() if sid == client_session.id)
        return server.core.runners[held.runner].name


def test_state_lives_across_calls_on_the_runner_that_holds_it(two_runners):
    server, _ = two_runners
    with Client(server.endpoints[0]) as client, client.session("python") as s:
        assert s.run("import json\nx = 1").status is Status.OK
        for i in range(2, 8):  # every call finds it, wherever the broker's free slots are
            r = s.run("x += 1\nreturn json.dumps(x)")
            assert (r.status, r.value) == (Status.OK, str(i))


def test_the_same_id_from_two_principals_is_two_sessions(two_runners):
    server, _ = two_runners
    # over ipc each connection is its own principal
    with Client(server.endpoints[0]) as one, Client(server.endpoints[0]) as two:
        a = one.session("python", "shared-name")
        b = two.session("python", "shared-name")
        a.run("secret = 'of one'")
        r = b.run("return globals().get('secret')")
        assert (r.status, r.value) == (Status.OK, None)
        a.close()
        b.close()


def test_the_principals_cap_is_named(two_runners):
    server, _ = two_runners
    with Client(server.endpoints[0]) as client:
        client.session("python")
        client.session("python")
        with pytest.raises(SessionError, match="max_sessions_per_principal"):
            client.session("python")


def test_a_killed_runner_loses_its_sessions_never_a_new_empty_one(two_runners):
    server, runners = two_runners
    with Client(server.endpoints[0]) as client:
        s = client.session("python")
        s.run("x = 'state'")
        os.kill(runners[_holder(server, s)].pid, signal.SIGKILL)
        assert _wait(lambda: s.run("return x").status is Status.SESSION_LOST)
        r = s.run("return x")
        assert "runner lost" in r.message


def test_an_async_client_has_sessions_too(two_runners):
    server, _ = two_runners

    async def main() -> list:
        async with AsyncClient(server.endpoints[0]) as client:
            s = await client.session("python")
            await s.run("n = 20")
            r = await s.run("return n + 1")
            closed = await s.close()
            after = await s.run("return n")
            return [r.value, closed.status, after.status]

    assert asyncio.run(main()) == [21, Status.OK, Status.SESSION_LOST]


def test_an_idle_timeout_at_the_runner_frees_the_principals_cap(two_runners):
    server, _ = two_runners
    with Client(server.endpoints[0]) as client:
        client.session("python", idle_timeout_s=0.3)
        client.session("python", idle_timeout_s=0.3)
        with server.lock:
            assert server.core.session_count() == 2
        assert _wait(lambda: server.core.session_count() == 0)  # the runners said so
        client.session("python").close()


# -- the CLI: `sandbox exec --session ID --connect` against `sandbox serve` ------------------


def _cli(*args: str, code: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sandbox", "exec", "-r", "python", *args],
                          input=code, capture_output=True, text=True, timeout=120)


def test_the_cli_calls_a_session_across_commands_of_one_user(ipc_dir):
    endpoint = f"ipc://{ipc_dir}/s.sock"
    daemon = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "serve", "--bind", endpoint, "--http", "",
         "--runners", "1", "--slots", "1", "--runtimes", "python", "--ipc-principal", "uid"],
        stdin=subprocess.DEVNULL)
    try:
        with Client(endpoint, queue_timeout_s=60) as client:  # up and serving
            assert client.run("python", "return 1").value == 1
        assert _cli("--connect", endpoint, "--session", "nb", "-", code="x = 41").returncode == 0
        second = _cli("--connect", endpoint, "--session", "nb", "--json", "-", code="return x + 1")
        assert json.loads(second.stdout)["result"] == 42
        assert _cli("--connect", endpoint, "--session", "nb", "--close-session").returncode == 0
        after = _cli("--connect", endpoint, "--session", "nb", "--json", "-", code="return x")
        # closed: the same id opens a new, empty session only because it was asked to by name
        assert json.loads(after.stdout)["error"]["type"] == "NameError"
    finally:
        stop_process(daemon, 60)


def test_the_cli_refuses_a_session_without_a_daemon():
    r = _cli("--session", "nb", "-", code="return 1")
    assert (r.returncode, r.stderr.strip()) == (
        2, "sandbox: --session needs --connect: a session lives in a daemon, and an embedded "
           "one ends with this command")


def test_the_cli_uploads_into_a_session_and_downloads_what_it_holds(ipc_dir, tmp_path):
    endpoint = f"ipc://{ipc_dir}/s.sock"
    daemon = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "serve", "--bind", endpoint, "--http", "",
         "--runners", "1", "--slots", "1", "--runtimes", "python", "--ipc-principal", "uid",
         "--files-mb", "1"], stdin=subprocess.DEVNULL)
    (tmp_path / "a.txt").write_text("abc")
    try:
        with Client(endpoint, queue_timeout_s=60) as client:  # up and serving
            assert client.run("python", "return 1").value == 1
        up = _cli("--connect", endpoint, "--session", "f", "--file", f"a={tmp_path / 'a.txt'}",
                  "-", code="open('b', 'w').write(open('a').read().upper())")
        down = _cli("--connect", endpoint, "--session", "f", "--return-files",
                    str(tmp_path / "out"), "-", code="")
        _cli("--connect", endpoint, "--session", "f", "--close-session")
    finally:
        stop_process(daemon, 60)
    assert (up.returncode, down.returncode, (tmp_path / "out/a").read_text(),
            (tmp_path / "out/b").read_text()) == (0, 0, "abc", "ABC")
