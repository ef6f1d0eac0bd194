"""n8n 2.41's task-runner messages: every captured broker frame parses, every runner message
we write matches what n8n's runners write, and bad frames fail one way."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox.errors import N8nProtocolError
from sandbox.n8n import protocol as p
from tests.n8n import captures

KINDS = {
    "broker:inforequest": p.InfoRequest, "broker:runnerregistered": p.RunnerRegistered,
    "broker:taskofferaccept": p.TaskOfferAccept, "broker:tasksettings": p.TaskSettings,
    "broker:taskcancel": p.TaskCancel, "broker:taskdataresponse": p.TaskDataResponse,
    "broker:rpcresponse": p.RpcResponse, "broker:drain": p.Drain, "broker:nodetypes": p.NodeTypes,
}


@pytest.mark.parametrize("source,msg", captures.every("broker:", captures.BROKER_DIRS),
                         ids=lambda v: v if isinstance(v, str) else v["type"])
def test_every_captured_broker_frame_parses(source, msg):
    parsed = p.parse(json.dumps(msg))
    assert type(parsed) is KINDS[msg["type"]]


def test_settings_keep_what_a_code_node_task_needs():
    msg = captures.messages("04")[2]
    s = p.parse(json.dumps(msg))
    assert isinstance(s, p.TaskSettings) and s.task_id == "Wq1W7iuw"
    assert s.settings.node_mode == "runOnceForEachItem" and s.settings.continue_on_fail is False
    assert [i["json"]["x"] for i in s.settings.items] == [1, 2, 3]
    assert s.settings.node_name == "Py Each" and s.settings.workflow_id == "labE2E00000000001"
    js = p.parse(json.dumps(captures.messages("03")[2])).settings
    assert js.chunk == p.Chunk(0, 3) and js.items is None


def _ours(msg: dict) -> p.RunnerMessage:
    """The runner message of ours that corresponds to a captured one."""
    t = msg["type"]
    if t == "runner:info":
        return p.RunnerInfo(msg["name"], tuple(msg["types"]))
    if t == "runner:taskoffer":
        return p.TaskOffer(msg["offerId"], msg["taskType"], msg["validFor"])
    if t == "runner:taskaccepted":
        return p.TaskAccepted(msg["taskId"])
    if t == "runner:taskrejected":
        return p.TaskRejected(msg["taskId"], msg["reason"])
    if t == "runner:taskdatarequest":
        return p.TaskDataRequest(msg["taskId"], msg["requestId"], msg["requestParams"])
    if t == "runner:taskdone":
        return p.TaskDone(msg["taskId"], msg["data"])
    if t == "runner:taskerror":
        return p.TaskError(msg["taskId"], msg["error"])
    assert t == "runner:rpc"
    return p.Rpc(msg["callId"], msg["taskId"], msg["name"], msg["params"])


@pytest.mark.parametrize("source,msg", captures.every("runner:", captures.RUNNER_DIRS),
                         ids=lambda v: v if isinstance(v, str) else v["type"])
def test_runner_messages_are_written_as_n8ns_runners_write_them(source, msg):
    assert json.loads(p.encode(_ours(msg))) == msg


BAD = [
    ("not json", "frame is not JSON"),
    ("[1, 2]", "frame is a JSON list, not an object"),
    ('{"type": "broker:nope"}', "unknown message type 'broker:nope'"),
    ('{"type": "broker:taskofferaccept", "offerId": "o"}', "field 'taskId' is missing"),
    ('{"type": "broker:taskofferaccept", "offerId": 5, "taskId": "t"}', "field 'offerId'"),
    ('{"type": "broker:tasksettings", "settings": {}}', "field 'taskId' is missing"),
    ('{"type": "broker:taskdataresponse", "taskId": "t", "requestId": "r", "data": []}', "field 'data'"),
    ("[" * 100_000, "frame is not JSON"),
]


REFUSED_SETTINGS = [
    ('{"type": "broker:tasksettings", "taskId": "t"}', "settings is not an object"),
    ('{"type": "broker:tasksettings", "taskId": "t", "settings": {"code": "x", "nodeMode": "runCode"}}',
     "nodeMode 'runCode' is not a Code node mode"),
    ('{"type": "broker:tasksettings", "taskId": "t", "settings": {"nodeMode": "runOnceForAllItems"}}',
     "field 'code' is missing"),
    ('{"type": "broker:tasksettings", "taskId": "t", "settings": {"code": "", '
     '"nodeMode": "runOnceForAllItems", "items": {}}}', "items is not an array"),
    ('{"type": "broker:tasksettings", "taskId": "t", "settings": {"code": "", '
     '"nodeMode": "runOnceForEachItem", "chunk": {"startIndex": -1, "count": 2}}}', "is negative"),
    ('{"type": "broker:tasksettings", "taskId": "t", "settings": {"code": "", '
     '"nodeMode": "runOnceForEachItem", "chunk": {"startIndex": true, "count": 2}}}', "startIndex"),
    ('{"type": "broker:tasksettings", "taskId": "t", "settings": {"code": "", '
     '"nodeMode": "runOnceForAllItems", "continueOnFail": "yes"}}', "continueOnFail is not a boolean"),
]


@pytest.mark.parametrize("text,why", BAD)
def test_a_bad_frame_fails_with_one_error_naming_the_problem(text, why):
    with pytest.raises(N8nProtocolError, match=None) as info:
        p.parse(text)
    assert why in str(info.value)


@pytest.mark.parametrize("text,why", REFUSED_SETTINGS)
def test_settings_that_are_not_a_code_nodes_are_refused_for_their_task(text, why):
    # the frame names its task: the runner answers that task at once (core.py)
    msg = p.parse(text)
    assert isinstance(msg, p.SettingsRefused) and msg.task_id == "t"
    assert why in msg.reason


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                     lambda kids: st.lists(kids) | st.dictionaries(st.text(), kids), max_leaves=20)


@given(st.one_of(st.binary(), st.text()))
def test_untrusted_bytes_fail_one_way(data):
    try:
        p.parse(data)
    except N8nProtocolError:
        pass


@given(st.sampled_from(sorted(KINDS)), st.dictionaries(st.sampled_from(
    ["taskId", "offerId", "requestId", "callId", "status", "settings", "data", "reason"]), _json))
def test_messages_with_arbitrary_fields_fail_one_way(kind, fields):
    try:
        p.parse(json.dumps({"type": kind, **fields}))
    except N8nProtocolError:
        pass


def test_nan_is_never_written_into_a_frame():
    with pytest.raises(ValueError):
        p.encode(p.TaskDone("t", {"result": [{"json": {"x": float("nan")}}]}))


# -- the broker's side: what the benchmarks' stand-in for n8n's broker reads and writes ------


@pytest.mark.parametrize("source,msg", captures.every("runner:", captures.RUNNER_DIRS),
                         ids=lambda v: v if isinstance(v, str) else v["type"])
def test_every_captured_runner_frame_parses_on_the_broker_side(source, msg):
    assert p.parse_runner(json.dumps(msg)) == _ours(msg)


@pytest.mark.parametrize("source,msg", captures.every("broker:", captures.BROKER_DIRS),
                         ids=lambda v: v if isinstance(v, str) else v["type"])
def test_broker_messages_are_written_as_n8ns_broker_writes_them(source, msg):
    assert json.loads(p.encode_broker(p.parse(json.dumps(msg)))) == msg


def test_settings_made_in_code_are_written_in_n8ns_names():
    js = p.Settings(code="return []", node_mode="runOnceForAllItems", workflow_mode="manual",
                    continue_on_fail=False)
    assert json.loads(p.encode_broker(p.TaskSettings("t", js)))["settings"] == {
        "code": "return []", "nodeMode": "runOnceForAllItems", "workflowMode": "manual",
        "continueOnFail": False, "additionalProperties": {}}
    each = p.Settings(code="return $json", node_mode="runOnceForEachItem", workflow_mode="manual",
                      continue_on_fail=True, chunk=p.Chunk(0, 3))
    assert json.loads(p.encode_broker(p.TaskSettings("t", each)))["settings"]["chunk"] == {
        "startIndex": 0, "count": 3}


def test_a_nodetypes_request_reads_back():
    msg = p.NodeTypesRequest("t", "r", [{"name": "n8n-nodes-base.code", "version": 2}])
    assert p.parse_runner(p.encode(msg)) == msg


BAD_RUNNER = [
    ('{"type": "runner:nope"}', "unknown message type 'runner:nope'"),
    ('{"type": "runner:info", "name": "r", "types": ["javascript", 3]}', "not a string"),
    ('{"type": "runner:taskoffer", "offerId": "o", "taskType": "javascript", "validFor": true}',
     "field 'validFor'"),
    ('{"type": "runner:taskdone", "taskId": "t", "data": []}', "field 'data'"),
    ('{"type": "runner:rpc", "callId": "c", "taskId": "t", "name": "logNodeOutput"}', "field 'params'"),
    ("[]", "frame is a JSON list, not an object"),
]


@pytest.mark.parametrize("text,why", BAD_RUNNER)
def test_a_bad_runner_frame_fails_with_one_error_naming_the_problem(text, why):
    with pytest.raises(N8nProtocolError) as info:
        p.parse_runner(text)
    assert why in str(info.value)


@given(st.one_of(st.binary(), st.text()))
def test_untrusted_runner_bytes_fail_one_way(data):
    try:
        p.parse_runner(data)
    except N8nProtocolError:
        pass


@pytest.mark.parametrize("data, body", [(p.ABSENT, {}), (None, {"data": None}), (0, {"data": 0})])
def test_an_rpc_response_made_in_code_says_no_data_as_n8ns_message_does(data, body):
    """One spelling of "n8n sent no data": the default a mock writes is what parsing n8n's
    message without ``data`` gives (the snippet's await gets undefined), and a null n8n sent
    stays null."""
    made = (p.RpcResponse("t", "c", "success") if data is p.ABSENT
            else p.RpcResponse("t", "c", "success", data))
    text = p.encode_broker(made)
    assert json.loads(text) == {"type": "broker:rpcresponse", "taskId": "t", "callId": "c",
                                "status": "success", **body}
    assert p.parse(text) == made
