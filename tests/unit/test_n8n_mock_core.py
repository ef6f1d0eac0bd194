"""The mock n8n broker's decisions, without sockets: n8n 2.41's rules, frame by frame, with
runner frames as n8n's own runner writes them (``captures/19``), and one answer per task."""

from __future__ import annotations

import json
import random
from itertools import count

from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.n8n_mock import core as c
from benchmarks.n8n_mock import data
from sandbox.n8n import protocol as p

TOKEN = "secret"
TRIVIAL = c.TaskSpec("return [{json: {x: 6 * 7}}]")


def broker(**kw) -> c.BrokerCore:
    grants = count(1)
    return c.BrokerCore(TOKEN, lambda: f"grant-{next(grants)}", **kw)


def frames(actions: list[c.Action], conn: int | None = None) -> list[dict]:
    return [json.loads(a.text) for a in actions if isinstance(a, c.Send) and conn in (None, a.conn)]


def answers(actions: list[c.Action]) -> list[c.Outcome]:
    return [a.outcome for a in actions if isinstance(a, c.Answer)]


def msg(**fields) -> str:
    return json.dumps(fields)


def registered(b: c.BrokerCore, conn: int = 1, runner_id: str = "r1", offers: int = 1,
               now: float = 0.0) -> None:
    b.connected(conn, runner_id, now)
    b.frame(conn, msg(type="runner:info", name="JS Task Runner", types=["javascript"]), now)
    for i in range(offers):
        b.frame(conn, msg(type="runner:taskoffer", offerId=f"o{conn}-{i}", taskType="javascript",
                          validFor=5000), now)


def accepted_task(b: c.BrokerCore, handle: int = 1, now: float = 0.0) -> str:
    """Submit one task to a registered runner on conn 1 and accept it; its task id."""
    (accept,) = frames(b.submit(handle, TRIVIAL, now))
    b.frame(1, msg(type="runner:taskaccepted", taskId=accept["taskId"]), now)
    return accept["taskId"]


# -- auth and upgrade ---------------------------------------------------------------------


def test_a_wrong_auth_token_is_forbidden_as_n8n_answers_it():
    b = broker()
    assert b.auth(b'{"token": "nope"}', 0) == (403, {"code": 403, "message": "Forbidden"})
    assert b.auth(b"not json", 0)[0] == 403
    assert b.auth(b'["secret"]', 0)[0] == 403


def test_a_grant_is_single_use_and_lives_30_s():
    b = broker()
    status, body = b.auth(b'{"token": "secret"}', 0)
    assert status == 200 and body == {"data": {"token": "grant-1"}}
    assert b.admit("r1", "Bearer grant-1", 1) == 101
    assert b.admit("r1", "Bearer grant-1", 1) == 403  # used
    late = b.issue_grant(0)
    assert b.admit("r1", f"Bearer {late}", c.GRANT_S + 0.1) == 403  # expired


def test_an_upgrade_without_id_auth_or_a_known_grant_is_refused_with_n8ns_status():
    b = broker()
    grant = b.issue_grant(0)
    assert b.admit("", f"Bearer {grant}", 0) == 400
    assert b.admit("r1", None, 0) == 401
    assert b.admit("r1", "Bearer bogus", 0) == 403
    assert b.admit("r1", f"Basic {grant}", 0) == 403
    assert b.admit("r1", f"Bearer {grant}", 0) == 101  # the refusals above did not use it up


# -- handshake ------------------------------------------------------------------------------


def test_the_handshake_is_the_captured_one():
    b = broker()
    assert frames(b.connected(1, "r1", 0)) == [{"type": "broker:inforequest"}]
    # before runner:info nothing counts, as in n8n's broker
    offer = msg(type="runner:taskoffer", offerId="o", taskType="javascript", validFor=5000)
    assert b.frame(1, offer, 0) == []
    info = msg(type="runner:info", name="JS Task Runner", types=["javascript"])
    assert frames(b.frame(1, info, 0)) == [{"type": "broker:runnerregistered"}]
    assert b.runners() == [{"id": "r1", "name": "JS Task Runner", "types": ["javascript"],
                            "offers": 0, "tasks": 0}]


def test_a_second_connection_with_the_same_id_replaces_the_first():
    b = broker()
    registered(b, conn=1)
    actions = b.connected(2, "r1", 0)
    assert c.Close(1, c.CLOSE_NORMAL, "replaced by a new connection") in actions
    assert frames(actions, 2) == [{"type": "broker:inforequest"}]
    assert b.runners() == []  # the new one registers with its own runner:info


# -- one task, frame by frame --------------------------------------------------------------


def test_a_task_runs_through_the_captured_frames():
    b = broker(task_timeout_s=60)
    registered(b, now=10.0)
    (accept,) = frames(b.submit(7, TRIVIAL, 10.0))
    assert accept == {"type": "broker:taskofferaccept", "offerId": "o1-0", "taskId": accept["taskId"]}
    task_id = accept["taskId"]
    (settings_msg,) = frames(b.frame(1, msg(type="runner:taskaccepted", taskId=task_id), 10.001))
    assert settings_msg == {"type": "broker:tasksettings", "taskId": task_id, "settings": {
        "code": TRIVIAL.code, "nodeMode": "runOnceForAllItems", "workflowMode": "manual",
        "continueOnFail": False, "additionalProperties": {}}}
    params = {"dataOfNodes": [], "env": False, "input": {"include": False}, "prevNode": False}
    (response,) = frames(b.frame(1, msg(type="runner:taskdatarequest", taskId=task_id, requestId="q1",
                                        requestParams=params), 10.002))
    assert response == {"type": "broker:taskdataresponse", "taskId": task_id, "requestId": "q1",
                        "data": data.task_data(TRIVIAL.code, TRIVIAL.node_mode, list(TRIVIAL.items),
                                               params, "7")}
    log = msg(type="runner:rpc", callId="c1", taskId=task_id, name="logNodeOutput", params=["'hi'", "2"])
    assert frames(b.frame(1, log, 10.003)) == [
        {"type": "broker:rpcresponse", "taskId": task_id, "callId": "c1", "status": "success"}]
    done = b.frame(1, msg(type="runner:taskdone", taskId=task_id, data={"result": [{"json": {"x": 42}}]}),
                   10.004)
    (outcome,) = answers(done)
    assert outcome.handle == 7 and outcome.status == "done" and outcome.result == [{"json": {"x": 42}}]
    assert outcome.logs == (("'hi'", "2"),) and outcome.runner_id == "r1"
    assert abs(outcome.duration_s - 0.004) < 1e-9
    assert b.unanswered == 0 and b.runners()[0]["tasks"] == 0


def test_a_task_error_is_the_answer_with_the_runners_message():
    b = broker()
    registered(b)
    task_id = accepted_task(b)
    error = {"message": "boom [line 1]", "description": None, "lineNumber": 1, "stack": "Error: boom"}
    (outcome,) = answers(b.frame(1, msg(type="runner:taskerror", taskId=task_id, error=error), 1))
    assert (outcome.status, outcome.message, outcome.value) == ("error", "boom [line 1]", error)


def test_other_rpcs_are_answered_with_an_error_and_nodetypes_with_none():
    b = broker()
    registered(b)
    task_id = accepted_task(b)
    rpc = msg(type="runner:rpc", callId="c", taskId=task_id, name="helpers.httpRequest", params=[{}])
    assert frames(b.frame(1, rpc, 0)) == [{"type": "broker:rpcresponse", "taskId": task_id, "callId": "c",
                                           "status": "error",
                                           "data": "the mock broker does not serve helpers.httpRequest"}]
    req = msg(type="runner:nodetypesrequest", taskId=task_id, requestId="n", requestParams=[])
    assert frames(b.frame(1, req, 0)) == [{"type": "broker:nodetypes", "taskId": task_id, "requestId": "n",
                                           "nodeTypes": []}]


def test_each_item_mode_sends_a_chunk_of_every_item():
    b = broker()
    registered(b)
    spec = c.TaskSpec("return $json", "runOnceForEachItem", ({"json": {"a": 1}}, {"json": {"a": 2}}))
    (accept,) = frames(b.submit(1, spec, 0))
    (s,) = frames(b.frame(1, msg(type="runner:taskaccepted", taskId=accept["taskId"]), 0))
    assert s["settings"]["chunk"] == {"startIndex": 0, "count": 2}


# -- matching -------------------------------------------------------------------------------


def test_a_task_waits_for_an_offer_and_takes_the_first_of_its_type():
    b = broker()
    registered(b, offers=0)
    assert b.submit(1, TRIVIAL, 0) == []
    b.frame(1, msg(type="runner:taskoffer", offerId="py", taskType="python", validFor=5000), 0)
    actions = b.frame(1, msg(type="runner:taskoffer", offerId="js", taskType="javascript", validFor=5000), 0)
    assert [f["offerId"] for f in frames(actions)] == ["js"]


def test_an_expired_offer_is_never_accepted_and_minus_one_never_expires():
    b = broker()
    registered(b, offers=0)
    b.frame(1, msg(type="runner:taskoffer", offerId="short", taskType="javascript", validFor=100), 0)
    b.frame(1, msg(type="runner:taskoffer", offerId="ever", taskType="javascript", validFor=-1), 0)
    assert [f["offerId"] for f in frames(b.submit(1, TRIVIAL, 1000.0))] == ["ever"]


def test_a_rejected_task_goes_back_to_the_head_of_the_queue_and_takes_the_next_offer():
    b = broker()
    registered(b, offers=2)
    b.submit(2, TRIVIAL, 0)  # takes o1-0
    (accept,) = frames(b.submit(3, TRIVIAL, 0))  # takes o1-1
    (first,) = [t for t in b._by_id.values() if t.handle == 2]
    reject = msg(type="runner:taskrejected", taskId=first.task_id, reason="No open task slots")
    actions = b.frame(1, reject, 0)
    assert actions == [] and b.unanswered == 2
    actions = b.frame(1, msg(type="runner:taskoffer", offerId="o3", taskType="javascript", validFor=5000), 0)
    (again,) = frames(actions)
    assert again["offerId"] == "o3" and b._by_id[again["taskId"]].handle == 2


def test_an_unacknowledged_offer_is_cancelled_requeued_and_three_in_a_row_close_the_runner():
    b = broker()
    registered(b, offers=1)
    (accept,) = frames(b.submit(1, TRIVIAL, 0))
    assert b.next_deadline() == c.ACCEPT_S
    actions = b.tick(c.ACCEPT_S)
    assert frames(actions) == [{"type": "broker:taskcancel", "taskId": accept["taskId"],
                                "reason": "Acknowledgement window elapsed"}]
    assert answers(actions) == [] and b.unanswered == 1
    for n in (2, 3):
        b.frame(1, msg(type="runner:taskoffer", offerId=f"again{n}", taskType="javascript", validFor=5000),
                n * 10)
        actions = b.tick(n * 10 + c.ACCEPT_S)
    assert c.Close(1, c.CLOSE_PROTOCOL_ERROR, "the runner did not acknowledge 3 tasks in a row") in actions
    assert b.runners() == [] and b.unanswered == 1  # still queued, for another runner


# -- time -----------------------------------------------------------------------------------


def test_a_task_past_its_timeout_is_cancelled_and_fails_with_n8ns_message():
    b = broker(task_timeout_s=20)
    registered(b)
    task_id = accepted_task(b, now=1.0)
    assert b.next_deadline() == 21.0
    assert b.tick(20.9) == []
    actions = b.tick(21.0)
    assert frames(actions) == [{"type": "broker:taskcancel", "taskId": task_id,
                                "reason": "Task execution timed out"}]
    (outcome,) = answers(actions)
    assert (outcome.status, outcome.message) == ("failed", "Task execution timed out after 20 seconds")
    # the runner's late answer is not a second one
    assert b.frame(1, msg(type="runner:taskdone", taskId=task_id, data={"result": []}), 22) == []
    assert b.stray == 1


def test_a_task_no_runner_takes_fails_at_the_request_timeout():
    b = broker(request_timeout_s=5)
    b.submit(1, TRIVIAL, 0)
    (outcome,) = answers(b.tick(5))
    assert (outcome.status, outcome.message) == ("failed", "no task runner took the task within 5 s")


def test_a_runner_that_misses_a_ping_is_closed_and_its_running_task_fails():
    b = broker(heartbeat_s=10)
    registered(b)
    accepted_task(b)
    assert b.tick(10) == [c.Ping(1)]
    b.pong(1)
    assert b.tick(20) == [c.Ping(1)]
    actions = b.tick(30)  # no pong since the last ping
    assert c.Close(1, c.CLOSE_PROTOCOL_ERROR, "failed heartbeat check") in actions
    (outcome,) = answers(actions)
    assert (outcome.status, outcome.message) == ("failed", "the task runner (r1) disconnected")


def test_a_runner_that_goes_away_fails_its_running_tasks_and_requeues_the_ones_it_was_accepting():
    b = broker()
    registered(b, offers=2)
    accepted_task(b, handle=1)
    b.submit(2, TRIVIAL, 0)  # offered, not yet accepted
    (outcome,) = answers(b.closed(1, 1))
    assert outcome.handle == 1 and outcome.status == "failed"
    assert b.unanswered == 1 and b.closed(1, 1) == []  # idempotent
    registered(b, conn=2, runner_id="r2")
    assert b.runners()[0]["tasks"] == 1  # the requeued task went to the new runner's offer


# -- callers and shutdown ---------------------------------------------------------------------


def test_a_cancel_is_the_answer_and_a_running_task_is_cancelled_at_the_runner():
    b = broker()
    b.submit(1, TRIVIAL, 0)
    (outcome,) = answers(b.cancel(1, 1))
    assert (outcome.status, outcome.message) == ("failed", "cancelled by its caller")
    registered(b)
    task_id = accepted_task(b, handle=2)
    actions = b.cancel(2, 2)
    assert frames(actions) == [{"type": "broker:taskcancel", "taskId": task_id,
                                "reason": "Task cancelled by user"}]
    assert len(answers(actions)) == 1 and b.cancel(2, 3) == []


def test_stop_drains_every_runner_and_fails_every_task():
    b = broker()
    registered(b)
    accepted_task(b, handle=1)
    b.submit(2, TRIVIAL, 0)
    actions = b.stop(1)
    assert frames(actions) == [{"type": "broker:drain"}]
    assert c.Close(1, c.CLOSE_GOING_AWAY, "the broker is shutting down") in actions
    assert sorted(o.handle for o in answers(actions)) == [1, 2]
    (late,) = answers(b.submit(3, TRIVIAL, 2))
    assert (late.status, late.message) == ("failed", "the mock broker is stopped")


def test_malformed_frames_and_frames_about_other_runners_tasks_are_counted_and_ignored():
    b = broker()
    registered(b, conn=1)
    registered(b, conn=2, runner_id="r2", offers=0)
    task_id = accepted_task(b)
    assert b.frame(1, "not json", 0) == [] and b.frame(1, msg(type="runner:nope"), 0) == []
    assert b.malformed == 2
    assert b.frame(2, msg(type="runner:taskdone", taskId=task_id, data={"result": []}), 0) == []
    assert b.frame(2, msg(type="runner:taskaccepted", taskId="unknown"), 0) == []
    assert b.stray == 2 and b.unanswered == 1


# -- every task gets exactly one answer, whatever the runners do ---------------------------------

_EVENTS = st.lists(st.tuples(st.sampled_from(["submit", "offer", "accept", "reject", "data", "done",
                                              "error", "tick", "close", "connect", "cancel", "pong"]),
                             st.integers(0, 3), st.floats(0, 5)), max_size=60)


@settings(max_examples=200, deadline=None)
@given(_EVENTS, st.integers(0, 2**32))
def test_every_task_gets_exactly_one_answer(events, seed):
    rng = random.Random(seed)
    b = broker(task_timeout_s=3, heartbeat_s=2, request_timeout_s=4)
    now, handles, answered = 0.0, count(1), []
    submitted: list[int] = []
    conns = {1}
    registered(b)

    def task_ids(conn: int) -> list[str]:
        return [tid for tid, t in b._by_id.items() if t.conn == conn] or ["unknown"]

    for kind, k, dt in events:
        now += dt
        conn = rng.choice(sorted(conns)) if conns else 1
        tid = rng.choice(task_ids(conn))
        if kind == "submit":
            submitted.append(next(handles))
            actions = b.submit(submitted[-1], TRIVIAL, now)
        elif kind == "offer":
            actions = b.frame(conn, msg(type="runner:taskoffer", offerId=f"o{rng.random()}",
                                        taskType="javascript", validFor=rng.choice([-1, 100, 5000])), now)
        elif kind == "accept":
            actions = b.frame(conn, msg(type="runner:taskaccepted", taskId=tid), now)
        elif kind == "reject":
            actions = b.frame(conn, msg(type="runner:taskrejected", taskId=tid, reason="x"), now)
        elif kind == "data":
            actions = b.frame(conn, msg(type="runner:taskdatarequest", taskId=tid, requestId="q",
                                        requestParams={"input": {"include": True}}), now)
        elif kind == "done":
            actions = b.frame(conn, msg(type="runner:taskdone", taskId=tid, data={"result": []}), now)
        elif kind == "error":
            actions = b.frame(conn, msg(type="runner:taskerror", taskId=tid, error={"message": "e"}), now)
        elif kind == "tick":
            actions = b.tick(now)
        elif kind == "close":
            conns.discard(conn)
            actions = b.closed(conn, now)
        elif kind == "connect":
            new = max(conns | {1}) + 1
            conns.add(new)
            actions = b.connected(new, f"r{k}", now)
            actions += b.frame(new, msg(type="runner:info", name="n", types=["javascript"]), now)
        elif kind == "cancel":
            actions = b.cancel(rng.choice(submitted) if submitted else 0, now)
        else:
            b.pong(conn)
            actions = []
        for action in actions:
            if isinstance(action, c.Close):
                conns.discard(action.conn)
        answered += [o.handle for o in answers(actions)]
        assert len(answered) == len(set(answered))  # never a second answer
    answered += [o.handle for o in answers(b.stop(now))]
    assert sorted(answered) == sorted(submitted)  # and, by the end, every one answered
    assert b.unanswered == 0


def test_the_data_of_a_trivial_task_has_the_shape_n8n_sends():
    from tests.n8n import captures

    (captured,) = [m for m in captures.messages("19", captures.BROKER_DIRS)
                   if m["type"] == "broker:taskdataresponse" and m["taskId"] == "5oeYr2l9"]
    ours = data.task_data(TRIVIAL.code, TRIVIAL.node_mode, [{"json": {}}],
                          {"dataOfNodes": [], "env": False, "input": {"include": False}, "prevNode": False},
                          "1")
    theirs = captured["data"]
    assert set(ours) == set(theirs)
    for key in ("workflow", "envProviderState", "node", "connectionInputSource"):
        assert set(ours[key]) == set(theirs[key]), key
    assert set(ours["runExecutionData"]) == set(theirs["runExecutionData"]) - {"resumeToken"}
    assert set(ours["additionalData"]) == set(theirs["additionalData"]) - {"userId"}
    assert ours["inputData"] == {} and ours["runExecutionData"]["resultData"]["runData"] == {}


def test_the_data_holds_the_input_and_the_trigger_only_when_asked():
    items = [{"json": {"a": i}} for i in range(5)]
    asked = data.task_data("return $json", "runOnceForEachItem", items,
                           {"dataOfNodes": "all", "input": {"include": True, "chunk": {"startIndex": 1,
                                                                                      "count": 2}}}, "1")
    assert asked["inputData"] == {"main": [[{"json": {"a": 1}, "pairedItem": {"item": 1}},
                                            {"json": {"a": 2}, "pairedItem": {"item": 2}}]]}
    run = asked["runExecutionData"]["resultData"]["runData"][data.TRIGGER]
    assert run[0]["data"] == {"main": [items]}
    named = data.task_data("return $('Start').all()", "runOnceForAllItems", items,
                           {"dataOfNodes": ["Start"], "input": {"include": False}}, "1")
    assert set(named["runExecutionData"]["resultData"]["runData"]) == {data.TRIGGER}


def test_settings_are_a_parsable_code_node_task():
    b = broker()
    registered(b)
    (accept,) = frames(b.submit(1, TRIVIAL, 0))
    (s,) = [a for a in b.frame(1, msg(type="runner:taskaccepted", taskId=accept["taskId"]), 0)
            if isinstance(a, c.Send)]
    parsed = p.parse(s.text)  # what our own runner reads
    assert isinstance(parsed, p.TaskSettings) and parsed.settings.code == TRIVIAL.code
