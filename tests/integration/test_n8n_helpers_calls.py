"""A Code node's ``this.helpers.*`` as calls of its host, in real jails without n8n: the job
calls, the runner's port to the pools (``PoolsBackend``, through ``tests.n8n.jobs``) hands
the call over and carries the answer back, as the runner does with n8n's ``runner:rpc``
(n8n's own side: test_n8n_e2e.py). And the walls: a task offered no calls cannot make one,
and a process that forges a call frame its task does not offer ends ``crashed``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from runtimes import codec
from runtimes.outcome import Status
from sandbox import PoolConfig, Sandbox
from sandbox.config import Limits
from sandbox.n8n import javascript_node
from sandbox.n8n import protocol as p
from sandbox.n8n.task import Finished, Job
from tests.n8n import captures
from tests.n8n.jobs import Jobs

pytestmark = pytest.mark.jail

LIMITS = Limits(timeout_s=10.0, memory_mb=128)
Answerer = Any  # (name, params) -> (ok, data), or None: never answered


def settings(code: str) -> p.Settings:
    return p.Settings(code=code, node_mode="runOnceForAllItems", workflow_mode="manual",
                      continue_on_fail=False)


def task_data() -> dict[str, Any]:
    data = json.loads(json.dumps(
        next(m for m in captures.messages("07") if m["type"] == "broker:taskdataresponse")["data"]))
    data["inputData"] = {"main": [[{"json": {"x": 1}, "pairedItem": {"item": 0}}]]}
    return data


@pytest.fixture(scope="module")
def backend():
    state: dict[str, Any] = {"calls": [], "answer": None}

    def on_call(key: str, call_id: int, name: str, params: list[Any]) -> None:
        state["calls"].append((name, params))
        answered = state["answer"](name, params)
        if answered is not None:
            jobs.answer(key, call_id, *answered)

    with Jobs(PoolConfig(size=2), on_call=on_call) as jobs:
        yield jobs, state


def run(backend, code: str, answer: Answerer, limits: Limits = LIMITS) -> tuple[Finished, list]:
    jobs, state = backend
    state["answer"], state["calls"] = answer, []
    s = settings(code)
    result = jobs.run(javascript_node.job(s, task_data(), limits))
    return javascript_node.finish(s, result, limits), state["calls"]


def test_a_helper_call_reaches_the_host_with_its_arguments_and_returns_its_answer(backend):
    done, calls = run(backend, "const r = await this.helpers.httpRequest({url: 'http://h/', json: true});\n"
                               "return [{json: {r}}];", lambda name, params: (True, {"body": "hi"}))
    assert (calls, done.done) == ([("helpers.httpRequest", [{"url": "http://h/", "json": True}])],
                                  {"result": [{"json": {"r": {"body": "hi"}}}]})


def test_a_serialised_buffer_answer_is_a_buffer_as_n8ns_runner_makes_it(backend):
    done, _ = run(backend, "const b = await helpers.getBinaryDataBuffer(0, 'data');\n"
                           "return [{json: {is: Buffer.isBuffer(b), text: b.toString()}}];",
                  lambda name, params: (True, {"type": "Buffer", "data": [104, 105]}))
    assert done.done == {"result": [{"json": {"is": True, "text": "hi"}}]}


def test_an_error_answer_is_thrown_where_the_snippet_awaits_it(backend):
    done, _ = run(backend, "try { await this.helpers.httpRequest({url: 'http://127.0.0.1:9/'}); }\n"
                           "catch (e) { return [{json: {caught: e.message}}]; }",
                  lambda name, params: (False, "connect ECONNREFUSED 127.0.0.1:9"))
    assert done.done == {"result": [{"json": {"caught": "connect ECONNREFUSED 127.0.0.1:9"}}]}


def test_a_helper_n8n_does_not_offer_throws_n8ns_words_and_calls_nothing(backend):
    done, calls = run(backend, "this.helpers.getSSHClient(); return [];", lambda name, params: None)
    assert (calls, done.error and done.error["message"]) == (
        [], 'The function "helpers.getSSHClient" is not supported in the Code Node')


def test_a_call_never_answered_ends_at_the_tasks_timeout(backend):
    limits = Limits(timeout_s=2.0, memory_mb=128)
    done, calls = run(backend, "await this.helpers.httpRequest({url: 'http://h/'}); return [];",
                      lambda name, params: None, limits)
    assert (len(calls), done.error and done.error["message"]) == (
        1, "Task execution timed out after 2 seconds (this runner's limit)")


def test_a_task_offered_no_calls_cannot_make_one():
    """A runner port with no call handler offers no calls: the helper fails naming what is
    offered (none), and nothing reaches the host."""
    s = settings("await this.helpers.httpRequest({url: 'http://h/'}); return [];")
    with Jobs(PoolConfig(size=1)) as jobs:
        done = javascript_node.finish(s, jobs.run(javascript_node.job(s, task_data(), LIMITS)), LIMITS)
    assert done.error is not None and done.error["message"] == (
        "helpers.httpRequest is not offered to this task (offered: none)")


def forge(*ids: int) -> str:
    """A Python snippet that writes call frames of its own on its task channel, one per id
    (each ``[id, "x", "[]"]``), then waits to be ended."""
    return f"""
import os, stat, struct
for i in {list(ids)!r}:
    body = bytes([1, 0x93, i, 0xa1]) + b"x" + bytes([0xa2]) + b"[]"
    for fd in range(3, 64):
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                os.write(fd, struct.pack(">I", len(body)) + body)
        except OSError:
            pass
import time
time.sleep(5)
return "not reached"
"""


def test_a_process_that_forges_a_call_its_task_does_not_offer_ends_crashed():
    """Capability denied: calling the host's functions without the task's offer."""
    with Sandbox(PoolConfig(size=1, stdlib_allow=("*",)), runtimes=("python",)) as sb:
        result = sb.run("python", forge(1), timeout_s=10)
    assert (result.status, result.message) == (
        Status.CRASHED, "the sandboxed process called 'x', which its task does not offer")


def test_a_second_call_before_the_first_is_answered_ends_crashed():
    """Calls are one at a time: a process that calls again while its host has not answered
    breaks the protocol (an honest child waits for the answer), and only the first call
    reaches the host."""
    calls: list[str] = []
    with Jobs(PoolConfig(size=1, stdlib_allow=("*",)), runtimes=("python",),
              on_call=lambda key, call_id, name, params: calls.append(name)) as jobs:
        result = jobs.run(Job("python", forge(1, 2), codec.encode(None), LIMITS, calls=("x",)))
    assert (calls, result.status, result.message) == (
        ["x"], Status.CRASHED, "the sandboxed process made a call before its last call was answered")


def test_an_answer_beyond_the_frame_limit_is_thrown_as_an_error_naming_its_size(backend):
    """The pools never send the child a frame over protocol.MAX_TASK_BYTES (64 MiB): the
    snippet gets an error in its place, and the task goes on."""
    done, _ = run(backend, "try { await this.helpers.httpRequest({url: 'http://h/'}); }\n"
                           "catch (e) { return [{json: {m: e.message}}]; }",
                  lambda name, params: (True, "x" * (65 << 20)))
    message = done.done["result"][0]["json"]["m"]
    assert message.endswith("exceeds the limit of 67108864 bytes"), message
