"""The mock n8n broker's I/O over real loopback sockets: HTTP as n8n answers it, the upgrade's
refusals with n8n's statuses, a task driven by a scripted runner, pings, and the drain."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from typing import Any

import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import AcceptConnection, CloseConnection, Ping, RejectConnection, Request, TextMessage

from benchmarks.n8n_mock import MockBroker, MockBrokerError, TaskSpec

TRIVIAL = TaskSpec("return [{json: {x: 6 * 7}}]")


@pytest.fixture
def broker():
    with MockBroker(auth_token="secret") as b:
        yield b


def post(b: MockBroker, path: str, body: Any) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(b.host, b.port, timeout=10)
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")
    finally:
        conn.close()


def get(b: MockBroker, path: str) -> int:
    conn = http.client.HTTPConnection(b.host, b.port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


class ScriptedRunner:
    """A runner that speaks the protocol one frame at a time, as the test says."""

    def __init__(self, b: MockBroker, runner_id: str | None = "r1", grant: str | None = None,
                 headers: list[tuple[bytes, bytes]] | None = None) -> None:
        self.sock = socket.create_connection((b.host, b.port), timeout=10)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.answer_pings = True
        self.pings = 0
        self.closed: CloseConnection | None = None
        target = "/runners/_ws" + (f"?id={runner_id}" if runner_id else "")
        if headers is None:
            headers = [(b"authorization", f"Bearer {grant or b.grant()}".encode())]
        self.sock.sendall(self.ws.send(Request(host=f"{b.host}:{b.port}", target=target,
                                               extra_headers=headers)))
        self.status = 0
        self._pending: list[Any] = []
        while not self.status:
            self.ws.receive_data(self.sock.recv(65536))
            for event in self.ws.events():
                if isinstance(event, AcceptConnection):
                    self.status = 101
                elif isinstance(event, RejectConnection):
                    self.status = event.status_code
                else:
                    self._pending.append(event)
        if self.status != 101:
            self.sock.close()

    def send(self, **msg: Any) -> None:
        self.sock.sendall(self.ws.send(TextMessage(data=json.dumps(msg))))

    def recv(self) -> dict[str, Any] | None:
        """The next text message, or None once the broker closed the connection."""
        while True:
            while self._pending:
                event = self._pending.pop(0)
                if isinstance(event, TextMessage):
                    return json.loads(event.data)
                if isinstance(event, Ping):
                    self.pings += 1
                    # a ping read in one piece with the broker's close is not answered: the
                    # connection is closing (wsproto refuses to send on it)
                    if self.answer_pings and self.ws.state is ConnectionState.OPEN:
                        self.sock.sendall(self.ws.send(event.response()))
                if isinstance(event, CloseConnection):
                    self.closed = event
                    return None
            data = self.sock.recv(65536)
            if not data:
                return None
            self.ws.receive_data(data)
            self._pending += list(self.ws.events())

    def register(self) -> None:
        assert self.recv() == {"type": "broker:inforequest"}
        self.send(type="runner:info", name="scripted", types=["javascript"])
        assert self.recv() == {"type": "broker:runnerregistered"}

    def close(self) -> None:
        self.sock.close()


def test_auth_answers_a_grant_for_the_token_and_403_for_another(broker):
    assert post(broker, "/runners/auth", {"token": "nope"}) == (403, {"code": 403, "message": "Forbidden"})
    status, body = post(broker, "/runners/auth", {"token": "secret"})
    assert status == 200 and isinstance(body["data"]["token"], str)
    assert get(broker, "/healthz") == 200
    assert get(broker, "/elsewhere") == 404


def test_the_upgrade_is_refused_with_n8ns_statuses(broker):
    assert ScriptedRunner(broker, runner_id=None).status == 400
    assert ScriptedRunner(broker, headers=[]).status == 401
    assert ScriptedRunner(broker, grant="bogus").status == 403
    grant = broker.grant()
    first = ScriptedRunner(broker, grant=grant)
    assert first.status == 101
    assert ScriptedRunner(broker, grant=grant).status == 403  # used
    first.close()


def test_a_task_through_a_scripted_runner_gets_its_result_and_time(broker):
    runner = ScriptedRunner(broker)
    runner.register()
    runner.send(type="runner:taskoffer", offerId="o1", taskType="javascript", validFor=5000)
    broker.wait_for_offers("javascript", 1, timeout_s=10)
    handle = broker.submit(TRIVIAL)
    accept = runner.recv()
    assert accept == {"type": "broker:taskofferaccept", "offerId": "o1", "taskId": accept["taskId"]}
    task_id = accept["taskId"]
    runner.send(type="runner:taskaccepted", taskId=task_id)
    assert runner.recv()["settings"]["code"] == TRIVIAL.code
    params = {"dataOfNodes": [], "env": False, "input": {"include": True}, "prevNode": False}
    runner.send(type="runner:taskdatarequest", taskId=task_id, requestId="q", requestParams=params)
    response = runner.recv()
    assert response["type"] == "broker:taskdataresponse"
    assert response["data"]["inputData"] == {"main": [[{"json": {}, "pairedItem": {"item": 0}}]]}
    runner.send(type="runner:rpc", callId="c", taskId=task_id, name="logNodeOutput", params=["'hi'"])
    assert runner.recv()["status"] == "success"
    runner.send(type="runner:taskdone", taskId=task_id, data={"result": [{"json": {"x": 42}}]})
    outcome = handle.result(10)
    assert outcome.status == "done" and outcome.result == [{"json": {"x": 42}}]
    assert outcome.logs == (("'hi'",),) and outcome.duration_s > 0
    runner.close()


def test_a_runner_that_answers_pings_stays_and_one_that_does_not_is_closed_1002():
    # 2 s between pings: the good runner's reader thread must answer within it, and on a
    # loaded machine a thread can wait longer than 0.5 s for the CPU (it was closed 1002 then)
    with MockBroker(heartbeat_s=2.0) as b:
        good, bad = ScriptedRunner(b, "good"), ScriptedRunner(b, "bad")
        good.register()

        def pump() -> None:  # the good runner reads (and so answers every ping) all along
            try:
                while good.recv() is not None:
                    pass
            except OSError:
                pass

        reader = threading.Thread(target=pump)
        reader.start()
        bad.answer_pings = False
        bad.register()
        assert bad.recv() is None  # pinged, did not answer, closed
        assert bad.closed is not None and bad.closed.code == 1002 and bad.pings >= 1
        assert [r["id"] for r in b.runners()] == ["good"] and good.closed is None
        bad.close()
    reader.join(10)  # the broker's close ended the good one's connection too
    assert good.closed is not None and good.closed.code == 1001 and good.pings >= 1
    good.close()


def test_close_drains_the_runners_and_fails_what_is_left():
    b = MockBroker()
    runner = ScriptedRunner(b)
    runner.register()
    handle = b.submit(TRIVIAL)  # no offer: it waits
    b.close()
    assert runner.recv() == {"type": "broker:drain"}
    assert runner.recv() is None and runner.closed is not None and runner.closed.code == 1001
    outcome = handle.result(5)
    assert (outcome.status, outcome.message) == ("failed", "the mock broker stopped")
    with pytest.raises(MockBrokerError):
        b.submit(TRIVIAL)
    runner.close()


def test_a_caller_that_stops_waiting_cancels_and_that_is_the_answer(broker):
    outcome = broker.run(TRIVIAL, timeout_s=0.05)
    assert (outcome.status, outcome.message) == ("failed", "cancelled by its caller")
    assert broker.counters() == {"malformed": 0, "stray": 0, "unanswered": 0}


def test_a_frame_that_is_not_a_message_is_counted_and_the_runner_keeps_going(broker):
    runner = ScriptedRunner(broker)
    runner.register()
    runner.sock.sendall(runner.ws.send(TextMessage(data="{not json")))
    runner.send(type="runner:taskoffer", offerId="o1", taskType="javascript", validFor=5000)
    broker.wait_for_offers("javascript", 1, timeout_s=10)
    assert broker.counters()["malformed"] == 1
    runner.close()
