"""The broker with real sockets, real runner processes and real jails."""

from __future__ import annotations

import os
import random
import signal
import time

import msgpack
import pytest
import zmq

from broker import protocol as p
from broker.auth import CurveServer
from broker.core import BrokerConfig
from sandbox import PoolConfig, Status
from sandbox.client import AsyncClient, Client
from sandbox.link import CurveClient
from service_helpers import HEARTBEAT_S, broker, start_runner, stop_runner, wait_for_runners


def test_two_runners_one_killed_mid_task_every_task_gets_one_result(tmp_path):
    with broker(tmp_path) as server:
        endpoint, runner_endpoint = server.endpoints[0], server.runner_endpoints[0]
        runners = [start_runner(runner_endpoint, "a", slots=2),
                   start_runner(runner_endpoint, "b", slots=2)]
        try:
            wait_for_runners(server, 2)
            with Client(endpoint) as client:
                handles = [
                    client.submit("python", f"import time\ntime.sleep(1.5)\nreturn {i}",
                                  timeout_s=10, idempotent=(i % 2 == 0), max_attempts=3)
                    for i in range(4)
                ]
                time.sleep(0.8)  # all four are running, two on each runner
                with server.lock:
                    assert len(server.core.running) == 4
                    # kill the runner that holds task 1 (not idempotent)
                    holder = next(t.runner for t in server.core.running.values()
                                  if t.submit.id == handles[1].id)
                    name = server.core.runners[holder].name
                os.kill(runners[0 if name == "a" else 1].pid, signal.SIGKILL)
                results = [h.result(timeout=30) for h in handles]
                for i, r in enumerate(results):
                    if r.status is Status.OK:
                        assert r.value == i
                    else:  # only a non-idempotent task on the killed runner may fail, so
                        assert i % 2 == 1, r
                        assert r.status is Status.CRASHED and "runner lost" in r.message
                assert results[1].status is Status.CRASHED
                assert all(results[i].status is Status.OK for i in (0, 2))  # retried if lost
                # nothing more arrives for these ids: each got exactly one final result
                with server.lock:
                    assert not server.core.running and not server.core.queued
        finally:
            for proc in runners:
                stop_runner(proc)


def test_cancel_queued_and_running_tasks(tmp_path):
    with broker(tmp_path) as server:
        runner = start_runner(server.runner_endpoints[0], "solo", slots=1)
        try:
            wait_for_runners(server, 1)
            with Client(server.endpoints[0]) as client:
                running = client.submit("python", "import time\ntime.sleep(20)", timeout_s=30)
                queued = client.submit("python", "return 1")
                time.sleep(0.5)
                queued.cancel()
                assert queued.result(10).status is Status.REJECTED
                assert "cancelled before it ran" in queued.result().message
                running.cancel()
                r = running.result(10)
                assert r.status is Status.CRASHED and "cancelled while running" in r.message
                # the runner killed the child and is free again
                assert client.run("python", "return 'after'", timeout_s=5).value == "after"
        finally:
            stop_runner(runner)


def test_queue_full_is_rejected_at_once(tmp_path):
    config = BrokerConfig(max_queued=1, heartbeat_s=HEARTBEAT_S)
    with broker(tmp_path, config) as server:
        runner = start_runner(server.runner_endpoints[0], "solo", slots=1)
        try:
            wait_for_runners(server, 1)
            with Client(server.endpoints[0]) as client:
                busy = client.submit("python", "import time\ntime.sleep(1)", timeout_s=5)
                time.sleep(0.3)
                waiting = client.submit("python", "return 2")
                time.sleep(0.1)
                started = time.perf_counter()
                full = client.run("python", "return 3")
                assert full.status is Status.REJECTED
                assert full.message == "queue full (1 waiting)"
                assert time.perf_counter() - started < 1.0
                assert busy.result(10).status is Status.OK
                assert waiting.result(10).value == 2
        finally:
            stop_runner(runner)


def test_no_runner_fails_at_once_or_after_the_queue_deadline(tmp_path):
    with broker(tmp_path) as server:
        with Client(server.endpoints[0]) as client:
            now = client.run("python", "return 1", wait_for_runner=False)
            assert now.status is Status.REJECTED
            assert now.message == "no runner for runtime 'python'"
            later = client.run("python", "return 1", group="gpu", queue_timeout_s=0.3)
            assert later.status is Status.REJECTED
            assert "no runner for runtime 'python' in group 'gpu'" in later.message


def test_unknown_curve_key_is_refused(tmp_path):
    import zmq.auth

    keys = tmp_path / "keys"
    (keys / "authorized").mkdir(parents=True)
    zmq.auth.create_certificates(str(keys), "server")
    good_pub, _ = zmq.auth.create_certificates(str(keys), "good")
    zmq.auth.create_certificates(str(keys), "stranger")
    os.rename(good_pub, keys / "authorized" / "good.key")
    s_pub, s_sec = zmq.auth.load_certificate(str(keys / "server.key_secret"))
    assert s_sec is not None
    curve = CurveServer(s_pub, s_sec, str(keys / "authorized"), str(keys / "runners"))
    port = random.randint(20000, 40000)
    endpoint = f"tcp://127.0.0.1:{port}"
    with broker(tmp_path, endpoint=endpoint, curve=curve) as server:
        stranger = CurveClient(*zmq.auth.load_certificate(str(keys / "stranger.key_secret")), s_pub)
        with Client(endpoint, curve=stranger) as client:
            refused = client.run("python", "return 1")
            assert refused.status is Status.REJECTED
            assert refused.message.startswith("the server refused this key")
        with server.lock:
            assert server.core.counters["submitted"] == 0
        good = CurveClient(*zmq.auth.load_certificate(str(keys / "good.key_secret")), s_pub)
        with Client(endpoint, curve=good) as client:
            r = client.run("python", "return 1", wait_for_runner=False)
            assert r.status is Status.REJECTED  # heard and answered: no runner, but let in
            assert "no runner" in r.message


def test_plain_tcp_is_refused_without_curve():
    with pytest.raises(Exception, match="CURVE"):
        Client("tcp://127.0.0.1:5555")


def test_fuzzed_frames_never_stop_the_broker(tmp_path):
    with broker(tmp_path) as server:
        runner = start_runner(server.runner_endpoints[0], "solo", slots=1)
        try:
            rng = random.Random(7)
            sock = zmq.Context.instance().socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(server.endpoints[0])
            fields = ["v", "t", "id", "runtime", "code", "data", "limits", "task_id", "slots"]
            for i in range(10_000):
                kind = i % 3
                if kind == 0:
                    frame = rng.randbytes(rng.randint(0, 64))
                elif kind == 1:
                    frame = msgpack.packb({rng.choice(fields): rng.choice(
                        [1, "x", b"y", None, [], {}, True, 2**40, -1.5]) for _ in range(4)})
                else:
                    frame = msgpack.packb({"v": rng.choice([1, 2]), "t": rng.choice(
                        ["submit", "done", "ready", "cancel", "heartbeat", "nope"]),
                        "id": str(i)})
                sock.send_multipart([frame] * rng.choice([1, 1, 1, 2]))
            # drain the rejections the broker answered with
            replies = 0
            while sock.poll(200):
                sock.recv_multipart()
                replies += 1
            sock.close()
            assert replies > 0
            wait_for_runners(server, 1)
            with Client(server.endpoints[0]) as client:
                assert client.run("python", "return 'still fine'").value == "still fine"
            with server.lock:
                assert server.core.counters["malformed_client"] > 0
                assert server.core.counters["internal_error"] == 0
        finally:
            stop_runner(runner)


def test_foreign_protocol_version_is_refused_with_both_versions(tmp_path):
    with broker(tmp_path) as server:
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(server.endpoints[0])
        sock.send(msgpack.packb({"v": 9, "t": "submit", "id": "x"}))
        assert sock.poll(5000)
        reply = p.decode(sock.recv())
        sock.close()
        assert isinstance(reply, p.Rejected) and reply.id == "x"
        assert "version 9" in reply.message and "speaks 1" in reply.message


def test_async_client_against_a_runner(tmp_path):
    import asyncio

    with broker(tmp_path) as server:
        runner = start_runner(server.runner_endpoints[0], "solo", slots=2)
        try:
            wait_for_runners(server, 1)

            async def main() -> list[object]:
                async with AsyncClient(server.endpoints[0]) as client:
                    results = await asyncio.gather(
                        *(client.run("python", f"return {i} * 2") for i in range(6)))
                    return [r.value for r in results]

            assert asyncio.run(main()) == [0, 2, 4, 6, 8, 10]
        finally:
            stop_runner(runner)


def test_language_options_travel_through_the_broker():
    with Client(pool=PoolConfig(size=1), runtimes=("python",)) as client:
        restricted = client.run("python", "return ().__class__", policy="restricted")
        assert restricted.status is Status.ERROR
        assert restricted.error.type == "RestrictedCodeError"
        narrowed = client.run("python", "import re", imports=["json"])
        assert narrowed.status is Status.ERROR and narrowed.error.type == "ImportDenied"
        widened = client.run("python", "import os", imports=["os"])
        assert widened.status is Status.REJECTED and "stdlib_allow" in widened.message


def test_bad_requests_through_a_client_are_rejected_and_nothing_else_breaks():
    with Client(pool=PoolConfig(size=1), runtimes=("python",)) as client:
        cases = {
            "unknown runtime": client.run("cobol", "return 1"),
            "oversized data": client.run("python", "return 1", b"x" * (p.MAX_DATA_BYTES + 1)),
            "oversized code": client.run("python", "x = 1\n" * (p.MAX_CODE_BYTES // 6 + 1)),
            "bad limits": client.run("python", "return 1", timeout_s=-1),
            "unknown policy": client.run("python", "return 1", policy="paranoid"),
        }
        messages = {name: (r.status, r.message) for name, r in cases.items()}
        assert all(status is Status.REJECTED for status, _ in messages.values()), messages
        assert "cobol" in messages["unknown runtime"][1]
        assert "data" in messages["oversized data"][1]
        assert "'code' is over" in messages["oversized code"][1]
        assert "timeout_s" in messages["bad limits"][1]
        assert "paranoid" in messages["unknown policy"][1]
        assert client.run("python", "return 'still fine'").value == "still fine"


def test_the_log_says_when_a_runner_registers_and_when_it_is_gone(tmp_path, caplog):
    caplog.set_level("INFO", logger="sandbox.broker")

    def said() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "sandbox.broker"]

    with broker(tmp_path) as server:
        runner = zmq.Context.instance().socket(zmq.DEALER)
        runner.setsockopt(zmq.LINGER, 0)
        runner.connect(server.runner_endpoints[0])
        try:
            runner.send(p.encode(p.Ready({"python": "3.11.7"}, 2, (), "gpu-box")))
            deadline = time.monotonic() + 10
            while len(said()) < 1 and time.monotonic() < deadline:
                time.sleep(0.02)
            runner.send(p.encode(p.Bye()))
            while len(said()) < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            runner.close()
    assert said() == ["runner gpu-box registered: python 3.11.7, 2 slots (1 registered)",
                      "runner gpu-box is gone (0 registered)"]
    assert [r.levelname for r in caplog.records if r.name == "sandbox.broker"] == ["INFO"] * 2
