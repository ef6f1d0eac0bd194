"""A JavaScript Code node task whose items come in n8n's own frame (the runner's path, see
javascript_node.job) answers exactly as one built from the parsed data response: the Code
node API joins the frame to the task in the child as the host used to."""

from __future__ import annotations

import json

import pytest

from sandbox import PoolConfig
from sandbox.config import Limits
from sandbox.n8n import javascript_node
from sandbox.n8n import protocol as p
from tests.n8n import captures
from tests.n8n.jobs import Jobs

pytestmark = pytest.mark.jail

LIMITS = Limits(timeout_s=10.0, memory_mb=128)
CODE = """return {json: {n: items.length, x: $json.x, env: typeof $env, wf: $workflow.name,
  node: $node ? 1 : 0, idx: $itemIndex, prev: $prevNode.name, run: $runIndex,
  params: Object.keys($parameter).sort(), nodes: Object.keys($(NODE).params || {}).length,
  st: JSON.stringify($getWorkflowStaticData('global'))}}"""


@pytest.fixture(scope="module")
def sb():
    with Jobs(PoolConfig(size=2), runtimes=("javascript",)) as box:
        yield box


def _answer(sb, settings, data, frame):
    job = javascript_node.job(settings, data, LIMITS, frame)
    return javascript_node.finish(settings, sb.run(job), LIMITS)


@pytest.mark.parametrize("mode", ["runOnceForAllItems", "runOnceForEachItem"])
def test_the_frame_path_answers_as_the_parsed_path(sb, mode):
    message = next(m for m in captures.messages("07") if m["type"] == "broker:taskdataresponse")
    message = json.loads(json.dumps(message))
    message["data"]["inputData"] = {"main": [[{"json": {"x": i}, "pairedItem": {"item": i}}
                                              for i in range(3)]]}
    code = CODE.replace("NODE", json.dumps(message["data"]["workflow"]["nodes"][0]["name"]))
    chunk = p.Chunk(1, 2) if mode == "runOnceForEachItem" else None
    # each item returns one object; all items, a list (and only they have ``items``)
    settings = p.Settings(code=code.replace("items.length", "1") if chunk else code, node_mode=mode,
                          workflow_mode="manual", continue_on_fail=False, chunk=chunk)
    frame = json.dumps(message)
    by_frame = _answer(sb, settings, message["data"], frame)
    by_parsed = _answer(sb, settings, message["data"], "")
    assert by_frame.error is None and by_frame == by_parsed
