"""What a JavaScript Code node task hands its child (sandbox/n8n/javascript_node.py): n8n's
data response as n8n sent it, and the little worked out of it on the host."""

from __future__ import annotations

import json

from runtimes import codec
from runtimes.outcome import Status
from sandbox.config import Limits
from sandbox.n8n import javascript_node
from sandbox.n8n import protocol as p
from sandbox.result import Result

SETTINGS = p.Settings(code="return $input.all()", node_mode="runOnceForAllItems",
                      workflow_mode="manual", continue_on_fail=False)
RESPONSE = {"workflow": {"id": "wf-1", "name": "w", "nodes": []},
            "inputData": {"main": [[{"json": {"x": 1}}, {"json": {"x": 2}}]]}}
FRAME = json.dumps({"type": "broker:taskdataresponse", "taskId": "t", "requestId": "r",
                    "data": RESPONSE})


def test_the_frame_n8n_sent_reaches_the_child_as_it_was_sent():
    job = javascript_node.job(SETTINGS, RESPONSE, Limits(), FRAME)
    assert codec.decode(job.data)[1] == FRAME


def test_the_shell_keeps_the_frame_of_a_data_response():
    msg = p.parse(FRAME)
    assert isinstance(msg, p.TaskDataResponse) and msg.frame == FRAME


def test_what_the_host_works_out_is_small_and_holds_no_items():
    job = javascript_node.job(SETTINGS, RESPONSE, Limits(), FRAME)
    task = json.loads(codec.decode(job.data)[0])
    assert (task["each"], task["start"], task["count"], "items" in task) == (False, 0, 2, False)


def test_items_sent_as_the_text_the_child_made_are_the_same_json():
    done = p.TaskDone("t", {"result": [{"json": {"a": "é"}}], "customData": {"k": "v"}},
                      '[{"json":{"a":"é"}}]')
    assert json.loads(p.encode(done)) == json.loads(p.encode(p.TaskDone("t", done.data)))


def test_items_alone_are_sent_as_their_text():
    done = p.TaskDone("t", {"result": []}, "[]")
    assert p.encode(done) == '{"type":"runner:taskdone","taskId":"t","data":{"result":[]}}'


def _finish(result_text):
    return javascript_node.finish(SETTINGS, Result(Status.OK, "ok", value={"result": result_text}),
                                  Limits())


def test_a_result_that_is_not_json_is_never_sent_as_it_is():
    """NaN parses in Python but is not JSON: n8n would reject the whole frame."""
    done = _finish("[NaN]")
    assert (done.done, done.result_json, done.error["message"]) == (
        None, "", "Task result could not be read: NaN is not JSON")


def test_a_result_read_whole_is_sent_as_the_child_wrote_it():
    done = _finish('[{"json":{"x":1}}]')
    assert (done.done, done.result_json) == ({"result": [{"json": {"x": 1}}]}, '[{"json":{"x":1}}]')


def _asks_input(code: str) -> bool:
    settings = p.Settings(code=code, node_mode="runOnceForEachItem", workflow_mode="manual",
                          continue_on_fail=False, chunk=p.Chunk(0, 2))
    return bool(javascript_node.data_request(settings)["input"]["include"])


def test_binary_and_item_index_alone_ask_for_no_input_as_n8ns_parser_decides():
    """n8n's BuiltInsParser asks for the input for $input, $json, items and item only: code
    that reads $binary alone gets no items there, and so its $binary is undefined."""
    assert [_asks_input(c) for c in ("return {json: {b: $binary}};",
                                     "return {json: {i: $itemIndex}};",
                                     "return {json: {b: $binary, x: $json.x}};")] == [False, False, True]
