"""The runner's pure core: captured n8n frames in, the actions n8n's own runners take out.

No sockets and no jails: outcomes are ``Result`` values made here, the clock is a number.
"""

from __future__ import annotations

import itertools
import json
import random

import pytest

from runtimes import codec
from runtimes.outcome import Status
from sandbox.n8n import core as c
from sandbox.n8n import protocol as p
from sandbox.result import ErrorInfo, Result
from tests.n8n import captures


def make_core(**config) -> c.RunnerCore:
    counter = itertools.count()
    return c.RunnerCore(c.CoreConfig(**config), rng=random.Random(7),
                        ids=lambda: f"id{next(counter)}")


def frame(msg: dict) -> p.BrokerMessage:
    return p.parse(json.dumps(msg))


def sent(actions: list[c.Action]) -> list[p.RunnerMessage]:
    return [a.msg for a in actions if isinstance(a, c.Send)]


def registered(core: c.RunnerCore, now: float = 0.0) -> list[p.TaskOffer]:
    core.connected(now)
    assert sent(core.frame(p.InfoRequest(), now)) == [p.RunnerInfo("snippet-sandbox", core.config.task_types)]
    offers = sent(core.frame(p.RunnerRegistered(), now))
    assert all(isinstance(o, p.TaskOffer) for o in offers)
    return offers  # type: ignore[return-value]


def offer_for(offers: list[p.TaskOffer], task_type: str) -> str:
    return next(o.offer_id for o in offers if o.task_type == task_type)


def ok(value) -> Result:
    return Result(Status.OK, "ok", value=codec.decode(codec.encode(value)))


def test_handshake_then_one_offer_per_free_slot_and_type():
    offers = registered(make_core(max_concurrency=3))
    assert sorted(o.task_type for o in offers) == ["javascript"] * 3 + ["python"] * 3
    assert all(5000 <= o.valid_for_ms <= 5500 for o in offers)


def test_python_task_replayed_from_the_capture():
    core = make_core(max_concurrency=1)
    offers = registered(core)
    accept, _, settings, done = captures.messages("04")
    accept = dict(accept, offerId=offer_for(offers, "python"))
    assert sent(core.frame(frame(accept), 1.0)) == [p.TaskAccepted("Wq1W7iuw")]
    (start,) = core.frame(frame(settings), 1.0)
    assert isinstance(start, c.Start) and start.task_id == "Wq1W7iuw" and start.job.runtime == "python"
    # the wrapper's answer for this task, as the jail would give it
    value = {"result": done["msg"]["data"]["result"] if "msg" in done else done["data"]["result"],
             "prints": [], "dropped": 0}
    actions = core.finished("Wq1W7iuw", ok(value), 1.2)
    (offer, answer) = sent(actions)  # the slot is offered again before the answer goes
    assert isinstance(offer, p.TaskOffer) and answer == p.TaskDone("Wq1W7iuw", done["data"])
    assert core.running == 0


def test_print_output_goes_first_and_the_answer_waits_for_its_acknowledgement():
    core = make_core(max_concurrency=1)
    offers = registered(core)
    accept, _, settings, rpc, _, done = captures.messages("05")
    core.frame(frame(dict(accept, offerId=offer_for(offers, "python"))), 1.0)
    core.frame(frame(settings), 1.0)
    value = {"result": done["data"]["result"], "prints": [["py all got", 3, "items"]], "dropped": 0}
    offer, call, *rest = sent(core.finished("ljp4ZLVj", ok(value), 1.1))
    first = [offer, call, *rest]
    assert isinstance(offer, p.TaskOffer)  # the slot, offered again before anything else
    assert isinstance(call, p.Rpc) and call.name == "logNodeOutput" and call.params == rpc["params"]
    assert not any(isinstance(m, p.TaskDone) for m in first)
    response = p.RpcResponse("ljp4ZLVj", call.call_id, "success")
    assert sent(core.frame(response, 1.2)) == [p.TaskDone("ljp4ZLVj", done["data"])]


def test_an_unacknowledged_print_does_not_hold_the_answer_for_ever():
    core = make_core(max_concurrency=1)
    offers = registered(core)
    accept, _, settings, _, _, _ = captures.messages("05")
    core.frame(frame(dict(accept, offerId=offer_for(offers, "python"))), 1.0)
    core.frame(frame(settings), 1.0)
    core.finished("ljp4ZLVj", ok({"result": [], "prints": [["x"]], "dropped": 0}), 1.0)
    assert not any(isinstance(m, p.TaskDone) for m in sent(core.tick(1.0 + c.LOGS_TIMEOUT_S - 0.1)))
    assert p.TaskDone("ljp4ZLVj", {"result": []}) in sent(core.tick(1.0 + c.LOGS_TIMEOUT_S))


@pytest.mark.parametrize("capture", ["02", "03", "07"])
def test_javascript_data_request_asks_what_n8ns_runner_asks(capture):
    core = make_core(max_concurrency=1)
    offers = registered(core)
    accept, _, settings, request, response, *_ = captures.messages(capture)
    core.frame(frame(dict(accept, offerId=offer_for(offers, "javascript"))), 1.0)
    (ask,) = sent(core.frame(frame(settings), 1.0))
    assert isinstance(ask, p.TaskDataRequest) and ask.params == request["requestParams"]
    (start,) = core.frame(frame(dict(response, requestId=ask.request_id)), 1.1)
    assert isinstance(start, c.Start) and start.job.runtime == "javascript"


def test_a_data_response_for_another_request_is_ignored():
    core = make_core(max_concurrency=1)
    offers = registered(core)
    accept, _, settings, _, response, *_ = captures.messages("02")
    core.frame(frame(dict(accept, offerId=offer_for(offers, "javascript"))), 1.0)
    core.frame(frame(settings), 1.0)
    assert core.frame(frame(dict(response, requestId="someone-else")), 1.1) == []


def _running(core: c.RunnerCore, task_id: str = "T1", now: float = 1.0) -> None:
    offers = registered(core)
    core.frame(p.TaskOfferAccept(offer_for(offers, "python"), task_id), now)
    settings = frame(captures.messages("11")[2]).settings  # type: ignore[union-attr]
    (start,) = core.frame(p.TaskSettings(task_id, settings), now)
    assert isinstance(start, c.Start)


@pytest.mark.parametrize("reason", ["Task execution timed out", "Task cancelled by user"])
def test_cancel_kills_the_child_at_once_and_sends_nothing_more(reason):
    core = make_core(max_concurrency=1)
    _running(core)
    assert core.frame(p.TaskCancel("T1", reason), 2.0) == [c.Cancel("T1")]
    assert core.frame(p.TaskCancel("T1", reason), 2.0) == []  # a repeat changes nothing
    killed = Result(Status.CRASHED, "cancelled")
    actions = core.finished("T1", killed, 2.1)
    assert not any(isinstance(m, (p.TaskDone, p.TaskError)) for m in sent(actions))
    # the slot is offered again (the javascript offer made for it at registration still holds)
    assert [m.task_type for m in sent(actions) if isinstance(m, p.TaskOffer)] == ["python"]


def test_cancel_before_settings_frees_the_slot_without_a_kill():
    core = make_core(max_concurrency=1)
    offers = registered(core)
    core.frame(p.TaskOfferAccept(offer_for(offers, "python"), "T1"), 1.0)
    actions = core.frame(p.TaskCancel("T1", "Acknowledgement window elapsed"), 3.0)
    assert not any(isinstance(a, c.Cancel) for a in actions)
    assert core.running == 0


@pytest.mark.parametrize("setup,reason", [
    ("unknown", "Offer expired - not accepted"),
    ("expired", "Offer expired - not accepted"),
    ("full", "No capacity: all 1 slots are busy"),
    ("draining", "the runner is draining (n8n is shutting down)"),
])
def test_an_accept_that_cannot_be_served_is_rejected_with_the_reason(setup, reason):
    core = make_core(max_concurrency=1)
    offers = registered(core)
    offer, now = offer_for(offers, "python"), 1.0
    if setup == "unknown":
        offer = "nope"
    elif setup == "expired":
        now = 10.0
    elif setup == "full":
        core.frame(p.TaskOfferAccept(offer_for(offers, "javascript"), "T0"), 1.0)
    else:
        core.frame(p.Drain(), 1.0)
    assert sent(core.frame(p.TaskOfferAccept(offer, "T1"), now)) == [p.TaskRejected("T1", reason)]


def test_offers_are_renewed_before_they_expire_and_the_old_one_still_holds():
    core = make_core(max_concurrency=1, task_types=("python",))
    (first,) = registered(core)
    renew = first.valid_for_ms / 1000 - c.OFFER_RENEW_MS / 1000
    assert sent(core.tick(renew - 0.01)) == []
    (second,) = sent(core.tick(renew))
    assert isinstance(second, p.TaskOffer) and second.offer_id != first.offer_id
    # a late accept of the first offer, before it expired, is served
    assert sent(core.frame(p.TaskOfferAccept(first.offer_id, "T1"), renew + 0.5)) == [p.TaskAccepted("T1")]
    # and the slot is now taken: the second offer is over capacity
    assert sent(core.frame(p.TaskOfferAccept(second.offer_id, "T2"), renew + 0.6)) == [
        p.TaskRejected("T2", "No capacity: all 1 slots are busy")]


def test_next_deadline_never_lies_in_the_past_for_a_renewed_offer():
    core = make_core(max_concurrency=1, task_types=("python",))
    (first,) = registered(core)
    renew = first.valid_for_ms / 1000 - c.OFFER_RENEW_MS / 1000
    core.tick(renew)
    assert core.next_deadline(renew + 0.1) > renew + 0.1


def test_settings_that_never_come_are_answered_and_free_the_slot():
    core = make_core(max_concurrency=1)
    offers = registered(core)
    core.frame(p.TaskOfferAccept(offer_for(offers, "python"), "T1"), 1.0)
    msgs = sent(core.tick(1.0 + c.SETTINGS_TIMEOUT_S))
    assert p.TaskError("T1", {"message": "n8n did not send the task's settings in time"}) in msgs
    assert core.running == 0


def test_drain_kills_running_tasks_answers_them_and_stops_offering():
    core = make_core(max_concurrency=1)
    _running(core)
    actions = core.frame(p.Drain(), 2.0)
    assert c.Cancel("T1") in actions
    stopped = {"message": "Task stopped: n8n is shutting down (broker:drain)"}
    assert p.TaskError("T1", stopped) in sent(actions)
    assert sent(core.finished("T1", Result(Status.CRASHED, "cancelled"), 2.1)) == []
    assert sent(core.tick(3.0)) == []


def test_a_lost_connection_kills_what_runs_and_forgets_everything():
    core = make_core(max_concurrency=1)
    _running(core)
    assert core.disconnected(2.0) == [c.Cancel("T1")]
    assert core.running == 0 and core.offers == {}
    assert sent(core.finished("T1", Result(Status.CRASHED, "cancelled"), 2.1)) == []


def test_auto_shutdown_after_idle_time_only():
    core = make_core(max_concurrency=1, auto_shutdown_s=5.0)
    _running(core, now=1.0)
    assert not any(isinstance(a, c.Exit) for a in core.tick(100.0))  # busy: never
    core.finished("T1", ok({"result": [], "prints": [], "dropped": 0}), 100.0)
    assert not any(isinstance(a, c.Exit) for a in core.tick(104.9))
    assert c.Exit("idle for 5 s (auto-shutdown)") in core.tick(105.0)


def test_a_task_error_with_continue_on_fail_is_an_error_item():
    core = make_core(max_concurrency=1)
    offers = registered(core)
    settings_msg, done = captures.messages("17")
    core.frame(p.TaskOfferAccept(offer_for(offers, "python"), "89VcWxpK"), 1.0)
    core.frame(frame(settings_msg), 1.0)
    error = {"message": "soft fail", "description": "RuntimeError", "stack": "", "lineNumber": 1}
    actions = core.finished("89VcWxpK", ok({"error": error, "prints": [], "dropped": 0}), 1.1)
    (_offer, answer) = sent(actions)
    assert answer == p.TaskDone("89VcWxpK", done["data"])


@pytest.mark.parametrize("status,message", [
    (Status.MEMORY_LIMIT, "Task ran out of memory: this runner allows each task 256 MB"),
    (Status.TIMEOUT, "Task execution timed out after 300 seconds (this runner's limit)"),
    (Status.VIOLATION, "Task tried an operation that is not allowed in this runner (processes, "
                       "sockets, exec, ... are blocked) and was stopped"),
    (Status.OUTPUT_LIMIT, "Task result is too large: this runner allows 16 MiB"),
])
def test_our_statuses_read_as_n8n_errors(status, message):
    core = make_core(max_concurrency=1)
    _running(core)
    (_offer, error) = sent(core.finished("T1", Result(status, "why"), 2.0))
    assert isinstance(error, p.TaskError) and error.error["message"] == message


def test_an_unserializable_result_is_an_error_naming_it():
    core = make_core(max_concurrency=1)
    _running(core)
    bad = Result(Status.ERROR, "x", error=ErrorInfo("UnserializableResult", "result.x: a function", ""))
    (_offer, error) = sent(core.finished("T1", bad, 2.0))
    assert isinstance(error, p.TaskError)
    assert error.error == {"message": "UnserializableResult: result.x: a function",
                           "description": "UnserializableResult"}


def test_a_finished_tasks_slot_is_offered_before_its_answer_goes():
    """The answer moves the workflow on to its next Code node: that task finds our offer at
    n8n already, instead of waiting for it behind the answer."""
    core = make_core(max_concurrency=1)
    _running(core)
    actions = core.finished("T1", ok({"result": [], "prints": [], "dropped": 0}), 2.0)
    assert [type(m) for m in sent(actions)] == [p.TaskOffer, p.TaskDone]


def test_a_task_whose_settings_are_refused_is_answered_at_once():
    core = make_core(max_concurrency=1)
    offers = registered(core)
    core.frame(p.TaskOfferAccept(offer_for(offers, "python"), "T1"), 1.0)
    msg = frame({"type": "broker:tasksettings", "taskId": "T1",
                 "settings": {"code": "return []", "nodeMode": "runCode"}})
    msgs = sent(core.frame(msg, 1.5))
    (error,) = [m for m in msgs if isinstance(m, p.TaskError)]
    assert error.task_id == "T1"
    assert error.error["message"].startswith("n8n sent settings this runner cannot run: ")
    assert "nodeMode 'runCode' is not a Code node mode" in error.error["message"]
    assert core.running == 0


# -- shutting down (SIGTERM): n8n's 2026 runner contract ----------------------------------


def test_a_runner_asked_to_shut_down_keeps_serving_through_its_grace_period():
    core = make_core(max_concurrency=1, task_types=("python",))
    _running(core, now=1.0)
    assert core.shutdown(2.0, grace_s=30.0, margin_s=10.0) == []
    assert not any(isinstance(a, (c.Exit, c.Cancel)) for a in core.tick(20.0))
    # the task finishes in the grace period: answered as ever, and its slot offered again
    msgs = sent(core.finished("T1", ok({"result": [], "prints": [], "dropped": 0}), 21.0))
    assert isinstance(msgs[0], p.TaskOffer) and isinstance(msgs[-1], p.TaskDone)
    offer = msgs[0].offer_id
    assert sent(core.frame(p.TaskOfferAccept(offer, "T2"), 22.0)) == [p.TaskAccepted("T2")]


def test_after_the_grace_period_an_accept_is_rejected_and_running_tasks_may_finish():
    core = make_core(max_concurrency=2, task_types=("python",))
    _running(core, now=1.0)
    offers = [o for o in core.offers]
    core.shutdown(2.0, grace_s=30.0, margin_s=10.0)
    actions = core.tick(32.0)
    assert not any(isinstance(a, (c.Exit, c.Cancel)) for a in actions)
    assert sent(core.frame(p.TaskOfferAccept(offers[0], "T2"), 32.5)) == [
        p.TaskRejected("T2", "the runner is shutting down")]
    assert sent(core.tick(33.0)) == []  # no new offers
    msgs = sent(core.finished("T1", ok({"result": [], "prints": [], "dropped": 0}), 35.0))
    assert [type(m) for m in msgs] == [p.TaskDone]
    assert c.Exit("shut down (SIGTERM)") in core.tick(35.0)


def test_broker_drain_ends_the_grace_period_at_once():
    core = make_core(max_concurrency=1, task_types=("python",))
    registered(core)
    core.shutdown(2.0, grace_s=30.0, margin_s=10.0)
    core.frame(p.Drain(), 3.0)
    assert c.Exit("shut down (SIGTERM)") in core.tick(3.0)


def test_a_task_still_running_past_the_margin_is_killed_and_answered_then_the_runner_exits():
    core = make_core(max_concurrency=1, task_types=("python",))
    _running(core, now=1.0)
    core.shutdown(2.0, grace_s=30.0, margin_s=10.0)
    core.tick(32.0)
    actions = core.tick(42.0)
    assert c.Cancel("T1") in actions
    assert p.TaskError("T1", {"message": "Task stopped: the runner is shutting down (SIGTERM) "
                                         "and the task ran past its grace period"}) in sent(actions)
    assert not any(isinstance(a, c.Exit) for a in actions)
    core.finished("T1", Result(Status.CRASHED, "cancelled"), 42.1)
    assert c.Exit("shut down (SIGTERM)") in core.tick(42.1)


def test_an_idle_runner_that_is_not_connected_exits_at_once():
    core = make_core(max_concurrency=1)
    assert core.shutdown(1.0, grace_s=30.0, margin_s=10.0) == [c.Exit("shut down (SIGTERM)")]


def test_a_due_exit_has_a_deadline_that_stays_in_the_past():
    # the shell's loop compares the deadline with its own later clock reading: "now" would
    # never be due, and the loop would spin without ever ticking the exit out
    core = make_core(max_concurrency=1, task_types=("python",))
    _running(core, now=1.0)
    core.shutdown(2.0, grace_s=1.0, margin_s=10.0)
    core.tick(3.5)
    core.finished("T1", ok({"result": [], "prints": [], "dropped": 0}), 4.0)
    assert core.next_deadline(5.0) <= 4.0


def test_python_code_naming_another_node_asks_n8n_for_its_items():
    # n8n 1.x's _('Node'): n8n sends a Python task its own items only
    core = make_core(max_concurrency=1, task_types=("python",))
    offers = registered(core)
    core.frame(p.TaskOfferAccept(offer_for(offers, "python"), "T1"), 1.0)
    settings = p.Settings(code="return _('Seed').all()", node_mode="runOnceForAllItems",
                          workflow_mode="manual", continue_on_fail=False, items=[])
    (request,) = sent(core.frame(p.TaskSettings("T1", settings), 1.0))
    assert isinstance(request, p.TaskDataRequest)
    assert request.params == {"dataOfNodes": ["Seed"], "prevNode": False,
                              "input": {"include": False}, "env": False}
    seed = {"runExecutionData": {"resultData": {"runData": {"Seed": [
        {"data": {"main": [[{"json": {"x": 1}}]]}}]}}}}
    (start,) = core.frame(p.TaskDataResponse("T1", request.request_id, seed), 1.1)
    assert isinstance(start, c.Start) and start.job.runtime == "python"
    assert codec.decode(start.job.data)["nodes"] == {"Seed": [{"json": {"x": 1}}]}


def test_a_javascript_result_of_undefined_goes_without_result_as_n8ns_runner_sends_it():
    """n8n then says "Code doesn't return items properly", as for its own runner: an empty
    answer must not become ``{"result": []}``, which n8n takes as no items."""
    core = make_core(max_concurrency=1)
    offers = registered(core)
    accept, _, settings, request, response, *_ = captures.messages("07")
    core.frame(frame(dict(accept, offerId=offer_for(offers, "javascript"))), 1.0)
    (ask,) = sent(core.frame(frame(settings), 1.0))
    (start,) = core.frame(frame(dict(response, requestId=ask.request_id)), 1.1)
    task_id = start.task_id
    answer = {"result": None, "failed": [], "logs": [], "customData": {}}
    (_offer, done) = sent(core.finished(task_id, ok(answer), 2.0))
    assert isinstance(done, p.TaskDone) and done.data == {}


# -- a running job's calls of n8n (helpers.*) -----------------------------------------------


def running_javascript_task(core: c.RunnerCore) -> str:
    offers = registered(core)
    accept, _, settings, request, response, *_ = captures.messages("07")
    core.frame(frame(dict(accept, offerId=offer_for(offers, "javascript"))), 1.0)
    (ask,) = sent(core.frame(frame(settings), 1.0))
    assert isinstance(ask, p.TaskDataRequest)
    (start,) = core.frame(frame(dict(response, requestId=ask.request_id)), 1.1)
    assert isinstance(start, c.Start) and start.job.calls == p.RPC_HELPERS
    return start.task_id


def test_a_jobs_call_goes_to_n8n_as_rpc_and_n8ns_answer_comes_back_to_the_job():
    core = make_core(max_concurrency=1)
    task_id = running_javascript_task(core)
    (rpc,) = sent(core.call(task_id, 1, "helpers.httpRequest", [{"url": "http://x/"}]))
    assert rpc == p.Rpc(rpc.call_id, task_id, "helpers.httpRequest", [{"url": "http://x/"}])
    answer = core.frame(frame({"type": "broker:rpcresponse", "taskId": task_id,
                               "callId": rpc.call_id, "status": "success", "data": {"a": 1}}), 1.2)
    assert answer == [c.Answer(task_id, 1, True, {"a": 1})]


def test_n8ns_error_answer_is_the_jobs_error_and_no_data_is_not_null():
    core = make_core(max_concurrency=1)
    task_id = running_javascript_task(core)
    (rpc,) = sent(core.call(task_id, 7, "helpers.request", []))
    answer = core.frame(frame({"type": "broker:rpcresponse", "taskId": task_id,
                               "callId": rpc.call_id, "status": "error"}), 1.2)
    assert answer == [c.Answer(task_id, 7, False, p.ABSENT)]


def test_a_call_of_an_ended_task_is_not_sent_and_a_late_answer_finds_nothing():
    core = make_core(max_concurrency=1)
    task_id = running_javascript_task(core)
    (rpc,) = sent(core.call(task_id, 1, "helpers.httpRequest", []))
    core.finished(task_id, Result(Status.TIMEOUT, "timed out"), 2.0)
    assert core.call(task_id, 2, "helpers.httpRequest", []) == []
    late = core.frame(frame({"type": "broker:rpcresponse", "taskId": task_id,
                             "callId": rpc.call_id, "status": "success", "data": 1}), 2.1)
    assert late == []
