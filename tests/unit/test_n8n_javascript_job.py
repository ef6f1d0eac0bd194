"""What a JavaScript Code node task hands its child (sandbox/n8n/javascript_node.py): n8n's
data response as n8n sent it, and the little worked out of it on the host."""

from __future__ import annotations

import json

from runtimes import codec
from sandbox.config import Limits
from sandbox.n8n import javascript_node
from sandbox.n8n import protocol as p

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
