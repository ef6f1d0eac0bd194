"""The clients' shells against the in-package fake broker (real sockets, no runner, no jail).

Each test names the promise it checks (issue 12's items in brackets). The fake answers as a
script says: at once, late, twice, never, or with replies for ids nobody asked about.
"""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import threading
import time

import pytest
import zmq.auth

from broker import protocol as p
from broker.auth import CurveServer
from sandbox import Status
from sandbox.client import AsyncClient, Client
from sandbox.client.base import CLOSED_MESSAGE
from sandbox.errors import ClosedError
from sandbox.client.fakes import FakeBroker, ok_result
from sandbox.link import CurveClient


def hold(submit: p.Submit) -> list[tuple[float, p.Message]]:
    return []  # never answers


def cancelled_while_running(cancel: p.Cancel) -> list[tuple[float, p.Message]]:
    return [(0.0, p.ResultMsg(cancel.id, p.CRASHED, "cancelled while running"))]


def finished_in(thread: threading.Thread, bound_s: float = 60.0) -> bool:
    """Whether the thread ended: a liveness bound, far above any expected duration."""
    thread.join(bound_s)
    return not thread.is_alive()


def run_async(coro):  # noqa: ANN001, ANN201 - a test helper
    return asyncio.run(coro)


# -- one answer per task ------------------------------------------------------------------------


def test_the_first_answer_is_the_result_and_a_second_is_dropped(ipc_dir):
    def twice(submit: p.Submit) -> list[tuple[float, p.Message]]:
        return [(0.0, ok_result(submit.id, "first")), (0.01, ok_result(submit.id, "second"))]

    with FakeBroker(f"ipc://{ipc_dir}/b.sock", twice) as broker, Client(broker.endpoint) as client:
        assert [client.run("python", "return 1").value for _ in range(3)] == ["first"] * 3
        time.sleep(0.1)
        conn = client._conn()
        client.run("python", "return 1")
        assert conn.answers == {} and conn.pending == set()  # the seconds left nothing behind


def test_a_broker_made_outcome_without_an_envelope_becomes_the_result(ipc_dir):
    def crashed(submit: p.Submit) -> list[tuple[float, p.Message]]:
        return [(0.0, p.ResultMsg(submit.id, p.CRASHED, "runner lost while running the task"))]

    with FakeBroker(f"ipc://{ipc_dir}/b.sock", crashed) as broker, Client(broker.endpoint) as client:
        r = client.run("python", "return 1")
        assert (r.status, r.message) == (Status.CRASHED, "runner lost while running the task")


@pytest.mark.parametrize("make", [Client, AsyncClient], ids=["sync", "async"])
def test_a_rejection_says_its_reason_for_a_program(ipc_dir, make):
    """What an adapter answers a full queue with (HTTP 429) is read from the reason, never
    from the message's prose."""
    def full(submit: p.Submit) -> list[tuple[float, p.Message]]:
        return [(0.0, p.Rejected(submit.id, "queue full (3 waiting)", "queue_full"))]

    async def run_in(client: AsyncClient):  # noqa: ANN202 - a test helper
        async with client:
            return await client.run("python", "return 1")

    with FakeBroker(f"ipc://{ipc_dir}/b.sock", full) as broker:
        if make is Client:
            with Client(broker.endpoint) as client:
                r = client.run("python", "return 1")
        else:
            r = run_async(run_in(AsyncClient(broker.endpoint)))
    assert (r.status, r.message, r.reason) == (Status.REJECTED, "queue full (3 waiting)",
                                               "queue_full")


def test_a_late_cancel_does_not_replace_a_finished_tasks_result(ipc_dir):
    """[4] The fast task finished before its cancel; an old broker answered the cancel with
    'rejected: no queued or running task', which replaced the real result 20 of 20 times."""
    def fast_or_slow(submit: p.Submit) -> list[tuple[float, p.Message]]:
        return [(0.0 if "fast" in submit.code else 0.3, ok_result(submit.id, submit.code))]

    def old_broker(cancel: p.Cancel) -> list[tuple[float, p.Message]]:
        return [(0.0, p.Rejected(cancel.id, f"no queued or running task {cancel.id!r}"))]

    with FakeBroker(f"ipc://{ipc_dir}/b.sock", fast_or_slow, on_cancel=old_broker) as broker, \
            Client(broker.endpoint) as client:
        for _ in range(20):
            fast = client.submit("python", "fast")
            slow = client.submit("python", "slow")
            time.sleep(0.05)  # fast has finished; its answer waits unread
            fast.cancel()
            assert (slow.result().value, fast.result().value) == ("slow", "fast")
        handles = [client.submit("python", "fast") for _ in range(1000)]
        for h in handles:
            h.result()
            h.cancel()  # answered already: nothing is sent, nothing is kept
        client.run("python", "fast")
        conn = client._conn()
        assert conn.answers == {} and conn.pending == set()


def test_answers_of_handles_nobody_holds_are_not_kept(ipc_dir):
    with FakeBroker(f"ipc://{ipc_dir}/b.sock") as broker, Client(broker.endpoint) as client:
        for _ in range(200):
            client.submit("python", "return 1")  # dropped at once, never collected
        gc.collect()
        client.run("python", "return 1")
        time.sleep(0.05)
        client.run("python", "return 1")
        conn = client._conn()
        assert conn.answers == {} and conn.pending == set()


# -- deadlines -------------------------------------------------------------------------------------


def test_result_without_a_timeout_returns_the_no_answer_result_at_the_deadline(ipc_dir):
    """[2] With a peer sending replies for unknown ids, the wait's ms rounding ended it
    early and raised TimeoutError('... within None s') in 32 of 50 calls."""
    def noise(submit: p.Submit) -> list[tuple[float, p.Message]]:
        return [(i * 0.013, ok_result(f"unknown-{i}")) for i in range(40)]

    with FakeBroker(f"ipc://{ipc_dir}/b.sock", noise) as broker, \
            Client(broker.endpoint, queue_timeout_s=0, grace_s=0.3) as client:
        for _ in range(10):
            r = client.run("python", "return 1", timeout_s=0.2)
            assert r.status is Status.CRASHED
            assert r.message == (f"no answer from the broker at {broker.endpoint} within 0.5 s "
                                 "(is it running?)")


def test_a_wait_with_a_timeout_raises_and_the_task_can_be_awaited_again(ipc_dir):
    def late(submit: p.Submit) -> list[tuple[float, p.Message]]:
        return [(0.4, ok_result(submit.id, 7))]

    with FakeBroker(f"ipc://{ipc_dir}/b.sock", late) as broker, Client(broker.endpoint) as client:
        handle = client.submit("python", "return 7")
        with pytest.raises(TimeoutError, match="did not finish within 0.05 s"):
            handle.result(timeout=0.05)
        assert handle.result().value == 7
        assert broker.of_type(p.Cancel) == []  # a caller's own timeout is not abandonment


def test_a_task_whose_client_deadline_passed_is_cancelled_at_the_broker(ipc_dir):
    """[6] A task whose caller gave up was never cancelled."""
    with FakeBroker(f"ipc://{ipc_dir}/b.sock", hold) as broker, \
            Client(broker.endpoint, queue_timeout_s=0, grace_s=0.2) as client:
        handle = client.submit("python", "return 1", timeout_s=0.1)
        assert handle.result().status is Status.CRASHED
        time.sleep(0.1)
        assert [c.id for c in broker.of_type(p.Cancel)] == [handle.id]


def test_the_task_carries_the_clients_queue_wait_and_deadline(ipc_dir):
    """[5] Client and broker disagreed on the queue wait: the client now sends its own."""
    with FakeBroker(f"ipc://{ipc_dir}/b.sock") as broker, \
            Client(broker.endpoint, queue_timeout_s=2, grace_s=5) as client:
        client.run("python", "return 1", timeout_s=3)
        client.run("python", "return 1", timeout_s=3, queue_timeout_s=7)
        [one, two] = broker.of_type(p.Submit)
        assert (one.queue_timeout_s, one.deadline_s) == (2, 3 + 2 + 5)
        assert (two.queue_timeout_s, two.deadline_s) == (7, 3 + 7 + 5)


# -- a broker that is not there --------------------------------------------------------------------


def test_submits_to_a_broker_that_is_down_are_bounded_and_say_why(ipc_dir):
    """[3] The 1,001st submit blocked until the broker came back (150 s)."""
    endpoint = f"ipc://{ipc_dir}/nobody.sock"
    results: list = []

    def submit_many() -> None:
        with Client(endpoint, queue_timeout_s=0.3) as client:
            results.extend(client.submit("python", "return 1").result() for _ in range(1001))

    worker = threading.Thread(target=submit_many)
    worker.start()
    assert finished_in(worker)
    assert len(results) == 1001
    assert {(r.status, r.message) for r in results} == {
        (Status.REJECTED, f"cannot reach the broker at {endpoint} within 1 s (is it running?)")}


def test_nothing_sent_while_the_broker_was_down_arrives_when_it_is_back(ipc_dir):
    """[6] Submits buffered while the broker was down ran about 150 s later."""
    endpoint = f"ipc://{ipc_dir}/b.sock"
    with Client(endpoint, queue_timeout_s=0.2) as client:
        assert client.run("python", "return 1").status is Status.REJECTED
        with FakeBroker(endpoint) as broker:
            # until the client has reconnected (ZeroMQ retries within a second), a submit
            # fails at once, as it did while the broker was down: then it runs
            for _ in range(100):
                if client.run("python", "return 2").status is Status.OK:
                    break
                time.sleep(0.05)
            time.sleep(0.2)
            assert len(broker.of_type(p.Submit)) == 1  # only the task sent while it was up


# -- other threads: cancel and close never wait for a wait ----------------------------------------


def test_cancel_from_another_thread_is_sent_while_the_owner_waits(ipc_dir):
    """[7] cancel() from another thread waited for the whole wait (the lock send needs), and
    the 'cancelled' task came back ok."""
    with FakeBroker(f"ipc://{ipc_dir}/b.sock", hold, on_cancel=cancelled_while_running) as broker, \
            Client(broker.endpoint, grace_s=30) as client:
        handle = client.submit("python", "return 1")
        results = []
        waiter = threading.Thread(target=lambda: results.append(handle.result()))
        waiter.start()
        time.sleep(0.2)  # the waiter drives the socket now
        canceller = threading.Thread(target=handle.cancel)
        canceller.start()
        assert finished_in(canceller, 10) and finished_in(waiter, 10)
        assert [(r.status, r.message) for r in results] == [
            (Status.CRASHED, "cancelled while running")]


def test_submit_from_another_thread_on_a_shared_handle_waits_for_no_one(ipc_dir):
    """A result() waited on a handle of another thread does not hold that thread's submits."""
    def slow_first(submit: p.Submit) -> list[tuple[float, p.Message]]:
        return [(5.0 if submit.code == "slow" else 0.0, ok_result(submit.id, submit.code))]

    with FakeBroker(f"ipc://{ipc_dir}/b.sock", slow_first) as broker, Client(broker.endpoint) as client:
        slow = client.submit("python", "slow")
        waiter = threading.Thread(target=slow.result)
        waiter.start()  # drives this thread's socket from another thread
        time.sleep(0.1)
        assert client.run("python", "fast").value == "fast"
        assert waiter.is_alive()  # the slow one is still awaited meanwhile
        assert finished_in(waiter)


def test_close_from_another_thread_wakes_the_waiter_and_cancels_its_task(ipc_dir):
    """[7] close() waited for the wait; result() after close raised a raw ZMQError."""
    with FakeBroker(f"ipc://{ipc_dir}/b.sock", hold) as broker:
        client = Client(broker.endpoint, grace_s=30)
        handle = client.submit("python", "return 1")
        results = []
        waiter = threading.Thread(target=lambda: results.append(handle.result()))
        waiter.start()
        time.sleep(0.2)
        closer = threading.Thread(target=client.close)
        closer.start()
        assert finished_in(closer, 10) and finished_in(waiter, 10)
        assert [(r.status, r.message) for r in results] == [(Status.REJECTED, CLOSED_MESSAGE)]
        assert handle.result().status is Status.REJECTED  # a Result, not an exception
        late = Client(broker.endpoint)
        unsent = late.submit("python", "return 1")
        late.close()
        assert unsent.result().message == CLOSED_MESSAGE
        with pytest.raises(ClosedError):
            late.submit("python", "return 1")
        time.sleep(0.3)
        assert {c.id for c in broker.of_type(p.Cancel)} == {handle.id, unsent.id}


# -- refused keys ----------------------------------------------------------------------------------


@pytest.fixture
def keys(ipc_dir) -> tuple[CurveServer, CurveClient, CurveClient]:
    d = os.path.join(ipc_dir, "keys")
    os.makedirs(os.path.join(d, "authorized"))
    os.makedirs(os.path.join(d, "runners"))
    zmq.auth.create_certificates(d, "server")
    zmq.auth.create_certificates(d, "good")
    zmq.auth.create_certificates(d, "stranger")
    shutil.copy(os.path.join(d, "good.key"), os.path.join(d, "authorized"))
    public, secret = zmq.auth.load_certificate(os.path.join(d, "server.key_secret"))
    assert secret is not None
    server = CurveServer(public, secret, os.path.join(d, "authorized"), os.path.join(d, "runners"))
    return server, CurveClient.load(d, "good"), CurveClient.load(d, "stranger")


def test_a_refused_key_is_said_at_once_on_every_call(keys):
    """[9] A client with a refused key got 'no answer ... (is it running?)' after 36 s, then
    hung on its second call."""
    server, good, stranger = keys
    with FakeBroker("tcp://127.0.0.1:*", curve=server) as broker:
        with Client(broker.endpoint, curve=stranger) as client:
            for _ in range(2):
                r = client.run("python", "return 1")
                assert r.status is Status.REJECTED
                assert r.message.startswith("the server refused this key (broker tcp://")
        with Client(broker.endpoint, curve=good) as client:
            assert client.run("python", "return 1").status is Status.OK
        assert broker.auth is not None and broker.auth.refused() == {"clients": 2}


def test_a_lone_surrogate_is_rejected_not_raised(ipc_dir):
    """[15] Client.run raised UnicodeEncodeError."""
    with FakeBroker(f"ipc://{ipc_dir}/b.sock") as broker, Client(broker.endpoint) as client:
        for options in ({"code": "return '\ud800'"}, {"lane": "\udc00"}):
            code = options.pop("code", "return 1")
            r = client.run("python", code, **options)
            assert r.status is Status.REJECTED and "not valid Unicode" in r.message
        assert broker.of_type(p.Submit) == []


# -- the asyncio twin ------------------------------------------------------------------------------


def test_async_first_answer_wins_and_results_arrive(ipc_dir):
    def twice(submit: p.Submit) -> list[tuple[float, p.Message]]:
        return [(0.0, ok_result(submit.id, submit.code)), (0.0, ok_result(submit.id, "again"))]

    async def main(endpoint: str) -> list:
        async with AsyncClient(endpoint) as client:
            results = await asyncio.gather(*(client.run("python", str(i)) for i in range(20)))
            return [r.value for r in results]

    with FakeBroker(f"ipc://{ipc_dir}/b.sock", twice) as broker:
        assert run_async(main(broker.endpoint)) == [str(i) for i in range(20)]


def test_async_wait_for_timing_out_cancels_the_task(ipc_dir):
    """[6] asyncio.wait_for timing out sent nothing; the task ran on and its entry stayed."""
    async def main(endpoint: str) -> tuple[str, int]:
        async with AsyncClient(endpoint) as client:
            handle = await client.submit("python", "return 1")
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(handle, 0.1)
            await asyncio.sleep(0.1)
            return handle.id, len(client._pending)

    with FakeBroker(f"ipc://{ipc_dir}/b.sock", hold) as broker:
        task_id, pending = run_async(main(broker.endpoint))
        time.sleep(0.1)
        assert pending == 0
        assert [c.id for c in broker.of_type(p.Cancel)] == [task_id]


def test_async_cancelling_the_awaiting_coroutine_cancels_the_task(ipc_dir):
    async def main(endpoint: str) -> int:
        async with AsyncClient(endpoint) as client:
            running = asyncio.ensure_future(client.run("python", "return 1"))
            await asyncio.sleep(0.1)
            running.cancel()
            with pytest.raises(asyncio.CancelledError):
                await running
            await asyncio.sleep(0.1)
            return len(client._pending)

    with FakeBroker(f"ipc://{ipc_dir}/b.sock", hold) as broker:
        assert run_async(main(broker.endpoint)) == 0
        time.sleep(0.1)
        assert len(broker.of_type(p.Cancel)) == 1


def test_async_deadline_and_close_cancel_what_is_awaited(ipc_dir):
    async def main(endpoint: str) -> tuple[str, str, object]:
        client = AsyncClient(endpoint, queue_timeout_s=0, grace_s=0.2)
        expired = await client.run("python", "return 1", timeout_s=0.1)
        waiting = await client.submit("python", "return 2")
        await client.aclose()
        return expired.message, waiting.id, (await waiting).message

    with FakeBroker(f"ipc://{ipc_dir}/b.sock", hold) as broker:
        expired, waiting_id, closed = run_async(main(broker.endpoint))
        assert expired.startswith("no answer from the broker") and closed == CLOSED_MESSAGE
        time.sleep(0.2)
        assert len(broker.of_type(p.Cancel)) == 2
        assert broker.of_type(p.Cancel)[1].id == waiting_id


def test_async_submits_to_a_broker_that_is_down_are_bounded(ipc_dir):
    endpoint = f"ipc://{ipc_dir}/nobody.sock"

    async def main() -> set:
        async with AsyncClient(endpoint, queue_timeout_s=0.3) as client:
            return {(r.status, r.message) for r in
                    [await client.run("python", "return 1") for _ in range(200)]}

    assert run_async(main()) == {
        (Status.REJECTED, f"cannot reach the broker at {endpoint} within 1 s (is it running?)")}


def test_async_refused_key_is_said_at_once(keys):
    server, good, stranger = keys

    async def main(endpoint: str, curve: CurveClient) -> list:
        async with AsyncClient(endpoint, curve=curve) as client:
            return [await client.run("python", "return 1") for _ in range(2)]

    with FakeBroker("tcp://127.0.0.1:*", curve=server) as broker:
        refused = run_async(main(broker.endpoint, stranger))
        assert [r.status for r in refused] == [Status.REJECTED] * 2
        assert all(r.message.startswith("the server refused this key") for r in refused)
        assert [r.status for r in run_async(main(broker.endpoint, good))] == [Status.OK] * 2


def test_async_lone_surrogate_is_rejected(ipc_dir):
    async def main(endpoint: str):  # noqa: ANN202
        async with AsyncClient(endpoint) as client:
            return await client.run("python", "return '\ud800'")

    with FakeBroker(f"ipc://{ipc_dir}/b.sock") as broker:
        r = run_async(main(broker.endpoint))
        assert r.status is Status.REJECTED and "not valid Unicode" in r.message


# -- bad input data is named as the data, not the result (issue 14, item 7) ---------------------


@pytest.mark.parametrize(("data", "message"), [
    (object(), "data cannot be sent to the sandbox: data: object of type 'object' is not "
               "serializable"),
    ({"k": {1.5: 2}}, "data cannot be sent to the sandbox: data['k']: dict key 1.5 of type "
                      "'float' is not allowed (keys must be str or int)"),
    (b"x" * p.MAX_DATA_BYTES, f"data cannot be sent to the sandbox: the data is "
                              f"{p.MAX_DATA_BYTES + 5} bytes encoded, over the "
                              f"{p.MAX_DATA_BYTES}-byte limit"),
])
def test_data_that_cannot_be_sent_is_named_as_the_data(data, message):
    """[14.7] The threaded and async clients said 'result: object of type ...' and 'the
    result is 104857605 bytes encoded' of the task's input."""
    from sandbox.client.base import ClientBase
    from sandbox.config import Limits
    from sandbox.request import Options
    from sandbox.result import Result

    built = ClientBase(Limits(), 30.0).request("python", "return 1", data, Options())
    assert isinstance(built, Result)
    assert (built.status, built.message) == (Status.REJECTED, message)


def test_what_is_not_an_endpoint_is_refused_when_the_client_is_made():
    """[14.4] `Client("foo")` failed later with ZeroMQ's 'Invalid argument'."""
    from sandbox.errors import ConfigError

    with pytest.raises(ConfigError, match="'foo' is not an endpoint"):
        Client("foo")
    with pytest.raises(ConfigError, match="'tcp://host' is not an endpoint"):
        AsyncClient("tcp://host", insecure=True)
