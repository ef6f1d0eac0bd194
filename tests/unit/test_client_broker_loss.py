"""A broker that dies under its clients (real sockets, a fake runner, no jails): every caller
waiting for an answer learns it at once, and an idempotent task runs again on the broker
that comes back, within its caller's deadline; nothing is answered twice."""

from __future__ import annotations

import asyncio
import threading
import time

from broker.core import BrokerConfig
from broker.server import BrokerServer
from sandbox import Status
from sandbox.client import AsyncClient, Client
from sandbox.client.fakes import FakeRunner


class Broker:
    def __init__(self, directory: str) -> None:
        self.endpoint = f"ipc://{directory}/clients.sock"
        self.runners = f"ipc://{directory}/runners.sock"
        self.server = BrokerServer([self.endpoint], BrokerConfig(heartbeat_s=0.2),
                                   runner_endpoints=[self.runners])
        self.stop = threading.Event()
        self.loop = threading.Thread(target=self.server.serve, args=(self.stop,), daemon=True)
        self.loop.start()

    def kill(self) -> None:
        self.stop.set()
        self.loop.join(5)
        self.server.close()


def _until(check, within_s: float = 10.0) -> None:
    end = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < end, "not within the bound"
        time.sleep(0.02)


def went_away(endpoint: str) -> str:
    return f"the broker at {endpoint} went away before it answered (the task may have run)"


def test_a_broker_crash_answers_the_threaded_clients_callers_at_once(tmp_path):
    """37 of 3,000 in-flight callers waited 40 s (their whole deadline) for 'no answer'
    after a broker crash, although the client's socket monitor saw the disconnect at once."""
    first = Broker(str(tmp_path))
    runner = FakeRunner(first.runners, slots=2, delay_s=120)
    runner.start()
    try:
        with Client(first.endpoint) as client:
            plain = client.submit("python", "return 1", timeout_s=60)
            again = client.submit("python", "return 2", timeout_s=60, idempotent=True,
                                  max_attempts=2)
            _until(lambda: len(runner.tasks) == 2)
            first.kill()  # with its runner still there: no 'runner left' comes first
            runner.close()
            result = plain.result(timeout=10)  # its deadline is 95 s away
            assert (result.status, result.message) == (Status.CRASHED, went_away(first.endpoint))
            second = Broker(str(tmp_path))
            with FakeRunner(second.runners, slots=2, delay_s=0.0):
                assert again.result(timeout=30).status is Status.OK  # sent again, answered
            second.kill()
    finally:
        runner.close()


def test_a_broker_crash_answers_the_async_clients_callers_at_once(tmp_path):
    async def main() -> None:
        first = Broker(str(tmp_path))
        runner = FakeRunner(first.runners, slots=2, delay_s=120)
        runner.start()
        try:
            async with AsyncClient(first.endpoint) as client:
                plain = await client.submit("python", "return 1", timeout_s=60)
                again = await client.submit("python", "return 2", timeout_s=60, idempotent=True,
                                            max_attempts=2)
                end = time.monotonic() + 10
                while len(runner.tasks) < 2:
                    assert time.monotonic() < end
                    await asyncio.sleep(0.02)
                first.kill()  # with its runner still there: no 'runner left' comes first
                runner.close()
                result = await asyncio.wait_for(plain, 10)  # its deadline is 95 s away
                assert (result.status, result.message) == (Status.CRASHED,
                                                           went_away(first.endpoint))
                second = Broker(str(tmp_path))
                with FakeRunner(second.runners, slots=2, delay_s=0.0):
                    assert (await asyncio.wait_for(again, 30)).status is Status.OK
                second.kill()
        finally:
            runner.close()

    asyncio.run(main())
