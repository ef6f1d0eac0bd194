"""The broker with real sockets, real runner processes and real jails."""

from __future__ import annotations

import gc
import os
import random
import signal
import threading
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


def test_an_ipc_endpoint_beside_a_curve_tcp_one_asks_no_key_and_principals_stay_apart(tmp_path):
    """[26.5] With --bind ipc://X --bind tcp://Y --curve-dir K the ipc endpoint demanded CURVE
    too: a plain local client failed the handshake every time."""
    import zmq.auth

    keys = tmp_path / "keys"
    (keys / "authorized").mkdir(parents=True)
    zmq.auth.create_certificates(str(keys), "server")
    public, _ = zmq.auth.create_certificates(str(keys), "alice")
    os.rename(public, keys / "authorized" / "alice.key")
    s_pub, s_sec = zmq.auth.load_certificate(str(keys / "server.key_secret"))
    assert s_sec is not None
    curve = CurveServer(s_pub, s_sec, str(keys / "authorized"), str(keys / "runners"))
    alice = CurveClient(*zmq.auth.load_certificate(str(keys / "alice.key_secret")), s_pub)
    ipc, tcp = f"ipc://{tmp_path}/local.sock", f"tcp://127.0.0.1:{random.randint(20000, 40000)}"
    with broker(tmp_path, endpoint=tcp, curve=curve, more_endpoints=(ipc,)) as server:
        assert oct(os.stat(f"{tmp_path}/local.sock").st_mode & 0o777) == "0o600"
        with Client(ipc) as local, Client(tcp, curve=alice) as remote:
            waiting = [local.submit("python", "return 1", queue_timeout_s=30),
                       remote.submit("python", "return 1", queue_timeout_s=30)]
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with server.lock:
                    principals = sorted(t.principal.split(":")[0]
                                        for t in server.core.queued.values())
                if len(principals) == 2:
                    break
                time.sleep(0.02)
            # the ipc client is its process's client object ("proc": SO_PEERCRED's pid and the
            # client's secret), the tcp one its CURVE key
            assert principals == ["curve", "proc"]
            for handle in waiting:
                handle.cancel()


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


def test_a_runner_sent_sigterm_finishes_its_running_task_and_then_leaves(tmp_path):
    """A standalone runner exited 70 ms after SIGTERM and its running task ended `crashed:
    runner left`: every rolling restart lost the work of non-idempotent tasks. It drains now:
    the broker gives it nothing new, what runs finishes within the grace, then it leaves."""
    with broker(tmp_path) as server:
        runner = start_runner(server.runner_endpoints[0], "leaving", extra=("--grace-s", "60"))
        try:
            wait_for_runners(server, 1)
            with Client(server.endpoints[0]) as client:
                handle = client.submit("python", "import time\ntime.sleep(1.5)\nreturn 'finished'",
                                       timeout_s=30)
                end = time.monotonic() + 30
                while time.monotonic() < end:  # until the task runs on the runner
                    with server.lock:
                        if server.core.running:
                            break
                    time.sleep(0.02)
                runner.send_signal(signal.SIGTERM)
                result = handle.result(timeout=60)
                assert (result.status, result.value) == (Status.OK, "finished")
            assert runner.wait(timeout=60) == 0
            with server.lock:  # it said goodbye, with nothing left running
                assert not server.core.runners and not server.core.running
        finally:
            stop_runner(runner)


def test_a_draining_runner_is_given_no_new_task(tmp_path):
    with broker(tmp_path) as server:
        runner = start_runner(server.runner_endpoints[0], "leaving", slots=2,
                              extra=("--grace-s", "120"))
        try:
            wait_for_runners(server, 1)
            with Client(server.endpoints[0]) as client:
                # it runs until cancelled: the runner cannot leave before the test says so
                first = client.submit("python", "import time\ntime.sleep(100)", timeout_s=110)
                end = time.monotonic() + 30
                while time.monotonic() < end:
                    with server.lock:
                        if server.core.running:
                            break
                    time.sleep(0.02)
                runner.send_signal(signal.SIGTERM)
                end = time.monotonic() + 30
                while time.monotonic() < end:  # until the broker heard that it drains
                    with server.lock:
                        if all(r.draining for r in server.core.runners.values()):
                            break
                    time.sleep(0.02)
                later = client.run("python", "return 2", queue_timeout_s=0.5)
                assert (later.status, later.message) == (
                    Status.REJECTED, "no runner for runtime 'python' (1 draining) (waited 0.5 s)")
                first.cancel()
                assert first.result(timeout=60).status is Status.CRASHED
            assert runner.wait(timeout=60) == 0  # nothing runs any more: it left
        finally:
            stop_runner(runner)
def _big_buffers_held(size: int, heads: set[bytes]) -> int:
    """How many objects the collector tracks hold one of the frames a test sent, of at least
    ``size`` bytes (a frame's locals, a list, a closure's cell...): a ZeroMQ frame that long,
    a bytes starting with one of ``heads``, or a view of either. Nothing else the session
    holds counts (a view of the whole address space, runtimes.python.leftovers's, is a
    module global of a module other tests import), and no view is read (that one would crash
    the process at address 0)."""
    def ours(obj: object) -> bool:
        if isinstance(obj, memoryview):
            try:
                obj = obj.obj
            except ValueError:  # released
                return False
        if isinstance(obj, zmq.Frame):
            return len(obj) >= size
        return isinstance(obj, (bytes, bytearray)) and len(obj) >= size and bytes(obj[:16]) in heads
    return sum(1 for o in gc.get_objects() if any(ours(r) for r in gc.get_referents(o)))


def test_refused_frames_are_freed_once_answered_without_a_collection(tmp_path):
    """A frame under the socket's cap that decoding refuses is answered at once; nothing
    may keep its bytes after that (a reference cycle would keep them until a cyclic
    collection: a flood of them inflated the broker by gigabytes)."""
    size, count = 8 * 1024 * 1024, 4
    malformed = [b"\x81\xa1v\x01" + b"\xc1" * size,  # a map, then a byte no message has
                 msgpack.packb({"v": 1, "t": "submit", "id": "big", "code": "x" * size})]
    heads = {m[:16] for m in malformed}
    gc.collect()
    gc.disable()
    try:
        with broker(tmp_path) as server:
            sock = zmq.Context.instance().socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(server.endpoints[0])
            try:
                for i in range(count):
                    sock.send(malformed[i % 2])
                del malformed  # ours: only the broker's copies are looked for below
                answers = []
                for _ in range(count):
                    assert sock.poll(10_000)
                    answers.append(p.decode(sock.recv()))
            finally:
                sock.close()
            assert all(isinstance(a, p.Rejected) for a in answers)
            # the loop lets go of the last frame when it reads the next one (or finds none):
            # wait for that, boundedly; a cycle never lets go while the collector is off
            end = time.monotonic() + 5.0
            while (held := _big_buffers_held(size, heads)) and time.monotonic() < end:
                time.sleep(0.05)
            assert held == 0
    finally:
        gc.enable()


# -- tenancy: a warm worker serves one principal, whatever key its callers name ---------------

PID = "import os\nreturn os.getpid()"  # a worker's pid in the jail: the same pid, the same worker


def _worker_pid(client: Client, key: str = "shared") -> int:
    r = client.run("python", PID, isolation="worker", reuse_key=key, timeout_s=10)
    assert r.status is Status.OK, r.message
    return r.value


def _tenants_of(server, endpoint: str, clients: tuple[dict, dict]) -> tuple[int, int, int]:
    """Worker pids of: the first client, the first again, then the second (one reuse key)."""
    runner = start_runner(server.runner_endpoints[0], "solo", slots=2,
                          extra=("--stdlib-allow", "+os"))
    try:
        wait_for_runners(server, 1)
        with Client(endpoint, **clients[0]) as a, Client(endpoint, **clients[1]) as b:
            return _worker_pid(a), _worker_pid(a), _worker_pid(b)
    finally:
        stop_runner(runner)


def test_two_ipc_connections_naming_one_reuse_key_get_two_workers(tmp_path):
    with broker(tmp_path) as server:
        first, again, other = _tenants_of(server, server.endpoints[0], ({}, {}))
    assert first == again  # a principal's own worker is reused
    assert other != first


def test_the_threads_of_one_client_share_its_workers_over_ipc(tmp_path):
    """Each thread of a Client has a connection of its own: each was a principal of its own,
    so 16 threads of one host app running worker tasks took turns evicting each other's
    workers (every task a fresh process: a twelfth of the throughput). They send the
    client's secret, and the kernel says they are one process: one principal."""
    with broker(tmp_path) as server:
        runner = start_runner(server.runner_endpoints[0], "solo", slots=2,
                              extra=("--stdlib-allow", "+os"))
        try:
            wait_for_runners(server, 1)
            with Client(server.endpoints[0]) as client:
                pids: list[int] = []
                for _ in range(3):
                    thread = threading.Thread(target=lambda: pids.append(_worker_pid(client)))
                    thread.start()
                    thread.join()
                connections = len(client._conns)
        finally:
            stop_runner(runner)
    assert (connections, len(pids), len(set(pids))) == (3, 3, 1)


def test_ipc_connections_of_one_uid_share_workers_where_the_operator_says_so(tmp_path):
    config = BrokerConfig(heartbeat_s=HEARTBEAT_S, ipc_principal="uid")
    with broker(tmp_path, config) as server:
        first, again, other = _tenants_of(server, server.endpoints[0], ({}, {}))
    assert first == again == other


def test_two_curve_keys_naming_one_reuse_key_get_two_workers(tmp_path):
    import zmq.auth

    keys = tmp_path / "keys"
    (keys / "authorized").mkdir(parents=True)
    zmq.auth.create_certificates(str(keys), "server")
    for name in ("alice", "bob"):
        public, _ = zmq.auth.create_certificates(str(keys), name)
        os.rename(public, keys / "authorized" / f"{name}.key")
    s_pub, s_sec = zmq.auth.load_certificate(str(keys / "server.key_secret"))
    assert s_sec is not None
    curve = CurveServer(s_pub, s_sec, str(keys / "authorized"), str(keys / "runners"))
    endpoint = f"tcp://127.0.0.1:{random.randint(20000, 40000)}"

    def as_(name: str) -> dict:
        public, secret = zmq.auth.load_certificate(str(keys / f"{name}.key_secret"))
        assert secret is not None
        return {"curve": CurveClient(public, secret, s_pub)}

    with broker(tmp_path, endpoint=endpoint, curve=curve) as server:
        first, again, other = _tenants_of(server, endpoint, (as_("alice"), as_("bob")))
        same = _tenants_of(server, endpoint, (as_("alice"), as_("alice")))
    assert first == again and other != first
    assert same[0] == same[1] == same[2]  # two connections of one key: one principal


def test_a_runner_stopped_with_sigterm_counts_as_left_not_lost(tmp_path):
    """[21.7] Its bye was sent on a socket closed at once (no linger), so the broker lost
    it to silence: a clean stop read as a lost runner."""
    with broker(tmp_path) as server:
        runner = start_runner(server.runner_endpoints[0], "solo", slots=1)
        try:
            wait_for_runners(server, 1)
        finally:
            stop_runner(runner)
        assert runner.returncode == 0
        end = time.monotonic() + 10
        while time.monotonic() < end:
            with server.lock:
                if not server.core.runners:
                    break
            time.sleep(0.05)
        with server.lock:
            counters = server.core.counters
            assert (counters["runners_left"], counters["runners_lost"]) == (1, 0)


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
