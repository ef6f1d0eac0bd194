"""What n8n 2.41.1 records of a Code node, given its runner's answer: n8n's own steps after
the runner, rewritten in Python so that our runner's answers can be compared with the golden
file without an n8n. Pure.

The steps, from n8n's sources (n8n-nodes-base ``nodes/Code``: ``JsTaskRunnerSandbox``,
``result-validation``, ``JsCodeValidator``, ``ValidationError``; n8n-core
``normalizeItems``, ``WorkflowExecute.assignPairedItems`` and ``handleNodeExecutionError``):

1. each-item mode: ``$input.first()/last()/all()/itemMatching()`` in the code fails the node
   before any runner sees it;
2. a runner's error answer (``taskerror``) fails the node with its message;
3. a ``taskdone`` result is validated and normalised (plain objects wrapped in ``json``),
   all items at once or each item's result on its own; a validation error fails the node;
4. items without ``pairedItem`` get one: by index when there are as many items as input
   items, item 0 when there is one input item or one output item;
5. a failed node with "continue (regular output)" passes its input items on, and keeps the
   error;
6. an item with an ``error`` key gets ``json: {error: error.message}`` (n8n's
   ``normalizeNodeErrors``).

And before the runner runs, what n8n's broker sends it of what it asked for
(``DataRequestResponseStripper``): ``strip``.

Whether it is right is measured, not assumed: the golden test compares what this gives for
our runner's answers with what the same n8n recorded for them (``python -m
tests.n8n.differential --check-n8n-side``).
"""

from __future__ import annotations

import copy
import math
import re
from typing import Any

from tests.n8n.differential.corpus import EACH, Case

ITEM_KEYS = ("json", "binary", "pairedItem", "error", "index")
_DISALLOWED_EACH = re.compile(r"\$input\.(?P<method>first|last|all|itemMatching)")


class NodeError(Exception):
    """The Code node failed in n8n: message and description as n8n records them."""

    def __init__(self, message: str, description: str | None = None, *,
                 item: int | None = None, line: int | None = None) -> None:
        if line is not None and item is not None:
            message = f"{message} [line {line}, for item {item}]"
        elif line is not None:
            message = f"{message} [line {line}]"
        elif item is not None:
            message = f"{message} [item {item}]"
        super().__init__(message)
        self.message = message
        self.description = description


def _is_object(value: Any) -> bool:
    return isinstance(value, dict)


def _truthy(value: Any) -> bool:
    """JavaScript's truthiness of a JSON value."""
    if value is None or value is False or value == "" or (isinstance(value, (int, float))
                                                          and not isinstance(value, bool)
                                                          and (value == 0 or math.isnan(value))):
        return False
    return True


def _check_disallowed_each(code: str) -> None:
    match = _DISALLOWED_EACH.search(code)
    if not match:
        return
    method = match.group("method")
    for number, line in enumerate(code.split("\n"), start=1):
        stripped = line.lstrip()
        if method in stripped and not stripped.startswith(("//", "/*", "*")):
            raise NodeError(f"Can't use .{method}() here",
                            "This is only available in 'Run Once for All Items' mode",
                            item=0, line=number)


def _normalize(result: Any) -> list[Any]:
    if isinstance(result, dict):
        result = [result] if _truthy(result.get("json")) else [{"json": result}]
    if all(isinstance(i, dict) and "json" in i for i in result):
        return list(result)
    if any(isinstance(i, dict) and "json" in i for i in result):
        raise NodeError("Inconsistent item format")
    if all(isinstance(i, dict) and "binary" in i for i in result):
        return [{"json": {k: v for k, v in i.items() if k != "binary"}, "binary": i["binary"]}
                for i in result]
    if any(isinstance(i, dict) and "binary" in i for i in result):
        raise NodeError("Inconsistent item format")
    return [{"json": i} for i in result]


def _check_item(item: dict[str, Any], index: int) -> None:
    if not _is_object(item.get("json")):
        raise NodeError("A 'json' property isn't an object",
                        "In the returned data, every key named 'json' must point to an object.",
                        item=index)
    if "binary" in item and not _is_object(item["binary"]):
        raise NodeError("A 'binary' property isn't an object",
                        "In the returned data, every key named 'binary' must point to an object.",
                        item=index)


# n8n's ReservedKeyFoundError (nodes/Code/reserved-key-found-error.ts)
_RESERVED_KEY_DESCRIPTION = (
    "An output item contains the reserved key <code>{key}</code>. To get around this, please "
    "wrap each item in an object, under a key called <code>json</code>. <a href=\"https://docs."
    "n8n.io/data/data-structure/#data-structure\" target=\"_blank\">Example</a>")


def _check_top_level_keys(item: dict[str, Any], index: int) -> None:
    reserved = next((k for k in item if k in ITEM_KEYS), None)
    unknown = [k for k in item if k not in ITEM_KEYS]
    if unknown:
        if reserved is not None:
            raise NodeError("Invalid output format", _RESERVED_KEY_DESCRIPTION.format(key=reserved),
                            item=index)
        raise NodeError(f"Unknown top-level item key: {unknown[0]}",
                        "Access the properties of an item under `.json`, e.g. `item.json`",
                        item=index)


def _validate_all(result: Any) -> list[dict[str, Any]]:
    if not isinstance(result, (dict, list)):
        raise NodeError("Code doesn't return items properly",
                        "Please return an array of objects, one for each item you would like to output.")
    if isinstance(result, list):
        for item in result:
            if not _is_object(item):
                raise NodeError("Code doesn't return items properly", "Please return an array of "
                                "objects, one for each item you would like to output.")
        if any(k in ITEM_KEYS for item in result for k in item):
            for index, item in enumerate(result):
                _check_top_level_keys(item, index)
    items = _normalize(result)
    for index, item in enumerate(items):
        _check_item(item, index)
    return items


def _validate_each(result: Any, index: int) -> dict[str, Any]:
    if not isinstance(result, (dict, list)):
        raise NodeError("Code doesn't return an object", None, item=index)
    if isinstance(result, list):
        raise NodeError("Code doesn't return a single object", None, item=index)
    (item,) = _normalize([result])
    _check_item(item, index)
    _check_top_level_keys(item, index)
    return item


def _assign_paired_items(items: list[dict[str, Any]], input_count: int) -> list[dict[str, Any]]:
    single_in_out = input_count == 1
    same_count = input_count == len(items)
    single_out = len(items) == 1 and input_count > 1
    for index, item in enumerate(items):
        if "pairedItem" not in item:
            if single_in_out:
                item["pairedItem"] = {"item": 0}
            elif same_count:
                item["pairedItem"] = {"item": index}
            elif single_out:
                item["pairedItem"] = {"item": 0}
            else:
                break
    return items


def _normalize_node_errors(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for item in items:
        json = item.get("json")
        if isinstance(json, dict) and json.get("$error") is not None and json.get("$json") is not None:
            item["error"] = json["$error"]
            item["json"] = _without_undefined({"error": _message(item["error"])})
        elif item.get("error") is not None:
            item["json"] = _without_undefined({"error": _message(item["error"])})
    return items


def _message(error: Any) -> Any:
    return error.get("message") if isinstance(error, dict) else None


def _without_undefined(obj: dict[str, Any]) -> dict[str, Any]:
    # JSON, as n8n stores it, has no undefined: a missing message leaves no key
    return {k: v for k, v in obj.items() if v is not None}


def strip(response: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The data response n8n's broker sends a runner that asked for ``params`` (its
    ``requestParams``), from a response holding everything."""
    out = dict(response)
    nodes = params.get("dataOfNodes", "all")
    wanted = set(nodes) if nodes != "all" else set()
    if params.get("prevNode") and nodes != "all":
        source = ((response.get("connectionInputSource") or {}).get("main") or [{}])[0] or {}
        wanted.add(source.get("previousNode", ""))
    inp = params.get("input") or {}
    if not inp.get("include"):
        out["inputData"] = {}
    elif inp.get("chunk") and (response.get("inputData") or {}).get("main"):
        chunk = inp["chunk"]
        items = response["inputData"]["main"][0]
        out["inputData"] = {**response["inputData"], "main": [
            items[chunk["startIndex"]:chunk["startIndex"] + chunk["count"]]]}
    if not params.get("env"):
        env = response.get("envProviderState") or {}
        out["envProviderState"] = {"env": {}, "isEnvAccessBlocked": env.get("isEnvAccessBlocked"),
                                   "isProcessAvailable": env.get("isProcessAvailable")}
    if nodes != "all":
        red = copy.deepcopy(response["runExecutionData"])
        result = red["resultData"]
        result["runData"] = {k: v for k, v in result.get("runData", {}).items() if k in wanted}
        if result.get("pinData") is not None:
            result["pinData"] = {k: v for k, v in result["pinData"].items() if k in wanted}
        out["runExecutionData"] = red
    return out


def record(case: Case, input_items: list[dict[str, Any]], done: dict[str, Any] | None,
           error: dict[str, Any] | None, continue_on_fail: bool = True) -> dict[str, Any]:
    """What n8n records of the node (as ``run.node_result`` reads it) when its runner
    answered ``done`` (``taskdone`` data) or ``error`` (``taskerror``); both None when n8n
    asked no runner. With ``continue_on_fail`` the node has "continue (regular output)" on,
    as in the corpus's workflows; without, a failed node ends the workflow with no items."""
    try:
        if case.mode == EACH:
            _check_disallowed_each(case.code)
        if error is not None or done is None:
            raise NodeError(str((error or {}).get("message", "Unknown error")),
                            (error or {}).get("description"))
        result = copy.deepcopy(done.get("result"))
        if case.mode == EACH:
            items = [_validate_each(r, i) for i, r in enumerate(result or [])]
        else:
            items = _validate_all(result)
        return {"ran": True, "node_error": None, "items": _normalize_node_errors(
            _assign_paired_items(items, len(input_items)))}
    except NodeError as exc:
        passed_on = copy.deepcopy(input_items) if continue_on_fail else []
        return {"ran": True, "items": _normalize_node_errors(passed_on),
                "node_error": {"message": exc.message, "description": exc.description}}
