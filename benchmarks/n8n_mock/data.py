"""What n8n's broker answers a JavaScript task's data request with (``broker:taskdataresponse``).

The task is a Code node fed by a Manual Trigger, the smallest workflow n8n runs: the data
is shaped field by field as n8n 2.41 shapes it (``tests/n8n/captures/19-...``, the response
to the trivial task ``return [{json:{x:1}},{json:{x:2}}]``), and holds only what the request
asks for, as n8n's does: the input items when ``input.include`` (the chunk's, in each-item
mode), the trigger's run when ``dataOfNodes`` names it (or is ``"all"``). Pure.
"""

from __future__ import annotations

from typing import Any

TRIGGER = "Start"
NODE = "Code"
WORKFLOW_ID = "mockBench00000001"
WORKFLOW_NAME = "mock broker benchmark"
BASE_URL = "http://127.0.0.1:5678"  # n8n's own address, as the runner's code may print it
TRIGGER_ID = "6f2c0e1a-5b7d-4c1e-9a3f-000000000001"
NODE_ID = "6f2c0e1a-5b7d-4c1e-9a3f-000000000002"


def code_node(code: str, node_mode: str) -> dict[str, Any]:
    return {"id": NODE_ID, "name": NODE,
            "type": "n8n-nodes-base.code", "typeVersion": 2, "position": [200, 0],
            "parameters": {"mode": node_mode, "language": "javaScript", "jsCode": code,
                           "notice": ""}}


def workflow(code: str, node_mode: str) -> dict[str, Any]:
    trigger = {"id": TRIGGER_ID, "name": TRIGGER,
               "type": "n8n-nodes-base.manualTrigger", "typeVersion": 1, "position": [0, 0],
               "parameters": {"notice": ""}}
    return {"id": WORKFLOW_ID, "name": WORKFLOW_NAME, "active": False,
            "connections": {TRIGGER: {"main": [[{"node": NODE, "type": "main", "index": 0}]]}},
            "nodes": [trigger, code_node(code, node_mode)], "pinData": {},
            "settings": {"executionOrder": "v1"}, "staticData": {}}


def _input_items(items: list[dict[str, Any]], chunk: Any) -> list[dict[str, Any]]:
    paired = [{**item, "pairedItem": {"item": i}} for i, item in enumerate(items)]
    if isinstance(chunk, dict) and isinstance(chunk.get("startIndex"), int) \
            and isinstance(chunk.get("count"), int):
        start = max(0, chunk["startIndex"])
        return paired[start:start + max(0, chunk["count"])]
    return paired


def task_data(code: str, node_mode: str, items: list[dict[str, Any]], params: dict[str, Any],
              execution_id: str) -> dict[str, Any]:
    """The ``data`` of the answer to a data request with ``requestParams`` ``params``."""
    source = {"previousNode": TRIGGER, "previousNodeOutput": 0, "previousNodeRun": 0}
    inp = params.get("input")
    if not isinstance(inp, dict):
        inp = {}
    input_data: dict[str, Any] = {}
    if inp.get("include"):
        input_data = {"main": [_input_items(items, inp.get("chunk"))]}
    nodes = params.get("dataOfNodes")
    run_data: dict[str, Any] = {}
    if nodes == "all" or (isinstance(nodes, list) and TRIGGER in nodes):
        run_data[TRIGGER] = [{"startTime": 0, "executionIndex": 0, "source": [], "hints": [],
                              "executionTime": 0, "executionStatus": "success",
                              "data": {"main": [[dict(item) for item in items]]}}]
    return {
        "workflow": workflow(code, node_mode),
        "inputData": input_data,
        "connectionInputSource": {"main": [source]},
        "itemIndex": 0,
        "activeNodeName": NODE,
        "contextNodeName": NODE,
        "defaultReturnRunIndex": -1,
        "mode": "manual",
        "envProviderState": {"env": {}, "isEnvAccessBlocked": True, "isProcessAvailable": True},
        "node": code_node(code, node_mode),
        "runExecutionData": {
            "version": 1, "startData": {},
            "resultData": {"runData": run_data, "pinData": {}, "lastNodeExecuted": TRIGGER},
            "executionData": {"contextData": {}, "nodeExecutionStack": [], "metadata": {},
                              "waitingExecution": {}, "waitingExecutionSource": {}},
        },
        "runIndex": 0,
        "selfData": {},
        "siblingParameters": {},
        "additionalData": {
            "formWaitingBaseUrl": f"{BASE_URL}/form-waiting", "instanceBaseUrl": f"{BASE_URL}/",
            "restApiUrl": f"{BASE_URL}/rest", "variables": {},
            "webhookBaseUrl": f"{BASE_URL}/webhook", "webhookTestBaseUrl": f"{BASE_URL}/webhook-test",
            "webhookWaitingBaseUrl": f"{BASE_URL}/webhook-waiting", "executionId": execution_id,
        },
    }
