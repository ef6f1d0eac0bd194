"""The messages of n8n 2.41's task-runner protocol: JSON text frames over one WebSocket.

Every message is an object with a ``type``. Broker -> runner messages are parsed here into
frozen dataclasses, each field checked for its type; anything else (not JSON, not an
object, an unknown type, a missing or mistyped field, settings that are not a Code node's)
raises ``N8nProtocolError`` and nothing else. Runner -> broker messages are dataclasses
too, written with ``encode``. The broker's side of the same boundary (``parse_runner``,
``encode_broker``) is what the benchmarks' stand-in for n8n's broker speaks.

Connection (outside the WebSocket): ``POST /runners/auth {"token"}`` gives a single-use
grant; the WebSocket is ``GET /runners/_ws?id=RUNNER_ID`` with ``Authorization: Bearer``.

Handshake: broker:inforequest -> runner:info -> broker:runnerregistered -> runner:taskoffer.
Per task: broker:taskofferaccept -> runner:taskaccepted | runner:taskrejected;
broker:tasksettings (settings that are not a Code node's are ``SettingsRefused``, so that
the task they name is answered at once); for JavaScript runner:taskdatarequest -> broker:taskdataresponse;
runner:rpc -> broker:rpcresponse (console output); runner:taskdone | runner:taskerror, or
broker:taskcancel (then nothing more). broker:drain when n8n shuts down.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sandbox.errors import N8nProtocolError

TASK_TYPES = ("javascript", "python")
NODE_MODES = ("runOnceForAllItems", "runOnceForEachItem")
AUTH_PATH = "/runners/auth"
WS_PATH = "/runners/_ws"
RPC_LOG = "logNodeOutput"
#: What a Code node may call of n8n while it runs (n8n 2.41's EXPOSED_RPC_METHODS): n8n runs
#: them, the runner forwards each call as ``runner:rpc`` and n8n's answer back.
RPC_HELPERS = ("helpers.assertBinaryData", "helpers.getBinaryDataBuffer",
               "helpers.prepareBinaryData", "helpers.setBinaryDataBuffer",
               "helpers.binaryToString", "helpers.httpRequest", "helpers.request")


class _Absent:
    """An rpc answer without ``data`` (JavaScript's undefined there), apart from null."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()

# -- broker -> runner ------------------------------------------------------------------------


@dataclass(frozen=True)
class InfoRequest:
    pass


@dataclass(frozen=True)
class RunnerRegistered:
    pass


@dataclass(frozen=True)
class Drain:
    pass


@dataclass(frozen=True)
class TaskOfferAccept:
    offer_id: str
    task_id: str


@dataclass(frozen=True)
class Chunk:
    start_index: int
    count: int


@dataclass(frozen=True)
class Settings:
    """A Code node task. Python tasks carry their items inline; JavaScript tasks ask for
    their data (``chunk`` in each-item mode)."""

    code: str
    node_mode: str
    workflow_mode: str
    continue_on_fail: bool
    items: list[Any] | None = None  # python
    query: Any = None  # python, the AI Code Tool's input
    chunk: Chunk | None = None  # javascript, each-item mode
    node_name: str = ""
    node_id: str = ""
    workflow_name: str = ""
    workflow_id: str = ""
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class TaskSettings:
    task_id: str
    settings: Settings


@dataclass(frozen=True)
class SettingsRefused:
    """A ``broker:tasksettings`` frame that names its task but whose settings are not a
    Code node task we can run (``reason`` says why): the task is answered at once."""

    task_id: str
    reason: str


@dataclass(frozen=True)
class TaskCancel:
    task_id: str
    reason: str


@dataclass(frozen=True)
class TaskDataResponse:
    task_id: str
    request_id: str
    data: dict[str, Any]
    # the frame's JSON text as n8n sent it: a JavaScript task's child parses the items from
    # it, so they are not encoded again (javascript_node.job)
    frame: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True)
class RpcResponse:
    task_id: str
    call_id: str
    status: str
    data: Any = ABSENT  # n8n sent no data (None: it sent null)


@dataclass(frozen=True)
class NodeTypes:
    task_id: str
    request_id: str
    node_types: list[Any] = field(default_factory=list)


BrokerMessage = (InfoRequest | RunnerRegistered | Drain | TaskOfferAccept | TaskSettings
                 | SettingsRefused | TaskCancel | TaskDataResponse | RpcResponse | NodeTypes)

# -- runner -> broker ------------------------------------------------------------------------


@dataclass(frozen=True)
class RunnerInfo:
    name: str
    types: tuple[str, ...]


@dataclass(frozen=True)
class TaskOffer:
    offer_id: str
    task_type: str
    valid_for_ms: int


@dataclass(frozen=True)
class TaskAccepted:
    task_id: str


@dataclass(frozen=True)
class TaskRejected:
    task_id: str
    reason: str


@dataclass(frozen=True)
class TaskDataRequest:
    task_id: str
    request_id: str
    params: dict[str, Any]


@dataclass(frozen=True)
class TaskDone:
    task_id: str
    data: dict[str, Any]  # {result, customData?, staticData?}
    # ``data["result"]`` as JSON text, checked already (javascript_node.finish): written into
    # the frame as it is, so the items are not encoded a second time
    result_json: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True)
class TaskError:
    task_id: str
    error: dict[str, Any]  # {message, description?, stack?, lineNumber?, ...}


@dataclass(frozen=True)
class Rpc:
    call_id: str
    task_id: str
    name: str
    params: list[Any]


@dataclass(frozen=True)
class NodeTypesRequest:
    """n8n's own runner asks for node descriptions when the code reaches every node's data."""

    task_id: str
    request_id: str
    params: Any


RunnerMessage = (RunnerInfo | TaskOffer | TaskAccepted | TaskRejected | TaskDataRequest
                 | TaskDone | TaskError | Rpc | NodeTypesRequest)


def encode(msg: RunnerMessage) -> str:
    """The JSON text frame of a runner message."""
    body: dict[str, Any]
    match msg:
        case RunnerInfo(name, types):
            body = {"type": "runner:info", "name": name, "types": list(types)}
        case TaskOffer(offer_id, task_type, valid_for):
            body = {"type": "runner:taskoffer", "offerId": offer_id, "taskType": task_type,
                    "validFor": valid_for}
        case TaskAccepted(task_id):
            body = {"type": "runner:taskaccepted", "taskId": task_id}
        case TaskRejected(task_id, reason):
            body = {"type": "runner:taskrejected", "taskId": task_id, "reason": reason}
        case TaskDataRequest(task_id, request_id, params):
            body = {"type": "runner:taskdatarequest", "taskId": task_id, "requestId": request_id,
                    "requestParams": params}
        case TaskDone(task_id, data, result_json) if result_json:
            rest = _dumps({k: v for k, v in data.items() if k != "result"})
            return (f'{{"type":"runner:taskdone","taskId":{_dumps(task_id)},"data":{{"result":'
                    f'{result_json}{"}" if rest == "{}" else "," + rest[1:]}}}')
        case TaskDone(task_id, data):
            body = {"type": "runner:taskdone", "taskId": task_id, "data": data}
        case TaskError(task_id, error):
            body = {"type": "runner:taskerror", "taskId": task_id, "error": error}
        case Rpc(call_id, task_id, name, params):
            body = {"type": "runner:rpc", "callId": call_id, "taskId": task_id, "name": name,
                    "params": params}
        case NodeTypesRequest(task_id, request_id, params):
            body = {"type": "runner:nodetypesrequest", "taskId": task_id, "requestId": request_id,
                    "requestParams": params}
        case _:
            raise TypeError(f"not a runner message: {msg!r}")
    return _dumps(body)


def encode_broker(msg: BrokerMessage) -> str:
    """The JSON text frame of a broker message, as n8n's broker writes it."""
    body: dict[str, Any]
    match msg:
        case InfoRequest():
            body = {"type": "broker:inforequest"}
        case RunnerRegistered():
            body = {"type": "broker:runnerregistered"}
        case Drain():
            body = {"type": "broker:drain"}
        case TaskOfferAccept(offer_id, task_id):
            body = {"type": "broker:taskofferaccept", "offerId": offer_id, "taskId": task_id}
        case TaskSettings(task_id, settings):
            body = {"type": "broker:tasksettings", "taskId": task_id,
                    "settings": settings.raw or _settings_body(settings)}
        case SettingsRefused(task_id, _):
            raise TypeError("refused settings are not written back into a frame")
        case TaskCancel(task_id, reason):
            body = {"type": "broker:taskcancel", "taskId": task_id, "reason": reason}
        case TaskDataResponse(task_id, request_id, data):
            body = {"type": "broker:taskdataresponse", "taskId": task_id, "requestId": request_id,
                    "data": data}
        case RpcResponse(task_id, call_id, status, data):
            body = {"type": "broker:rpcresponse", "taskId": task_id, "callId": call_id,
                    "status": status}
            if data is not ABSENT:
                body["data"] = data
        case NodeTypes(task_id, request_id, node_types):
            body = {"type": "broker:nodetypes", "taskId": task_id, "requestId": request_id,
                    "nodeTypes": node_types}
        case _:
            raise TypeError(f"not a broker message: {msg!r}")
    return _dumps(body)


def _dumps(body: Any) -> str:
    # NaN is not JSON: n8n's JSON.parse would reject the whole frame
    return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _settings_body(s: Settings) -> dict[str, Any]:
    """Settings built in code (not parsed from a frame), in n8n's field names."""
    body: dict[str, Any] = {"code": s.code, "nodeMode": s.node_mode, "workflowMode": s.workflow_mode,
                            "continueOnFail": s.continue_on_fail}
    if s.items is not None:  # python: the data comes inline
        body.update(items=s.items, nodeId=s.node_id, nodeName=s.node_name,
                    workflowId=s.workflow_id, workflowName=s.workflow_name)
        if s.query is not None:
            body["query"] = s.query
    else:  # javascript: the runner asks for its data
        if s.chunk is not None:
            body["chunk"] = {"startIndex": s.chunk.start_index, "count": s.chunk.count}
        body["additionalProperties"] = {}
    return body


# -- parsing ---------------------------------------------------------------------------------


def _get(msg: dict[str, Any], name: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = msg.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, (int, float))):
        raise N8nProtocolError(f"{what}: field {name!r} is missing or not "
                               f"{getattr(kind, '__name__', kind)}")
    return value


def _settings(raw: Any) -> Settings:
    what = "broker:tasksettings"
    if not isinstance(raw, dict):
        raise N8nProtocolError(f"{what}: settings is not an object")
    mode = _get(raw, "nodeMode", str, what)
    if mode not in NODE_MODES:
        raise N8nProtocolError(f"{what}: nodeMode {mode!r} is not a Code node mode "
                               f"({', '.join(NODE_MODES)})")
    items = raw.get("items")
    if items is not None and not isinstance(items, list):
        raise N8nProtocolError(f"{what}: items is not an array")
    chunk = None
    if raw.get("chunk") is not None:
        c = raw["chunk"]
        if not isinstance(c, dict):
            raise N8nProtocolError(f"{what}: chunk is not an object")
        start, count = _get(c, "startIndex", int, what), _get(c, "count", int, what)
        if start < 0 or count < 0:
            raise N8nProtocolError(f"{what}: chunk {start}+{count} is negative")
        chunk = Chunk(start, count)
    cof = raw.get("continueOnFail", False)
    if not isinstance(cof, bool):
        raise N8nProtocolError(f"{what}: continueOnFail is not a boolean")
    optional = {}
    for key, name in (("nodeName", "node_name"), ("nodeId", "node_id"),
                      ("workflowName", "workflow_name"), ("workflowId", "workflow_id"),
                      ("workflowMode", "workflow_mode")):
        value = raw.get(key, "")
        optional[name] = value if isinstance(value, str) else str(value)
    return Settings(code=_get(raw, "code", str, what), node_mode=mode,
                    continue_on_fail=cof, items=items, query=raw.get("query"), chunk=chunk,
                    raw=raw, **optional)


def _object(text: str | bytes) -> dict[str, Any]:
    try:
        msg = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise N8nProtocolError(f"frame is not JSON: {exc}") from exc
    if not isinstance(msg, dict):
        raise N8nProtocolError(f"frame is a JSON {type(msg).__name__}, not an object")
    return msg


def parse(text: str | bytes) -> BrokerMessage:
    """One broker frame, validated. Raises N8nProtocolError, and only that."""
    msg = _object(text)
    kind = msg.get("type")
    what = str(kind)
    match kind:
        case "broker:inforequest":
            return InfoRequest()
        case "broker:runnerregistered":
            return RunnerRegistered()
        case "broker:drain":
            return Drain()
        case "broker:taskofferaccept":
            return TaskOfferAccept(_get(msg, "offerId", str, what), _get(msg, "taskId", str, what))
        case "broker:tasksettings":
            task_id = _get(msg, "taskId", str, what)
            try:
                return TaskSettings(task_id, _settings(msg.get("settings")))
            except N8nProtocolError as exc:
                return SettingsRefused(task_id, str(exc))
        case "broker:taskcancel":
            reason = msg.get("reason", "")
            return TaskCancel(_get(msg, "taskId", str, what), reason if isinstance(reason, str) else "")
        case "broker:taskdataresponse":
            return TaskDataResponse(_get(msg, "taskId", str, what), _get(msg, "requestId", str, what),
                                    _get(msg, "data", dict, what), text if isinstance(text, str) else "")
        case "broker:rpcresponse":
            return RpcResponse(_get(msg, "taskId", str, what), _get(msg, "callId", str, what),
                               _get(msg, "status", str, what), msg.get("data", ABSENT))
        case "broker:nodetypes":
            types = msg.get("nodeTypes")
            return NodeTypes(_get(msg, "taskId", str, what), _get(msg, "requestId", str, what),
                             types if isinstance(types, list) else [])
        case _:
            raise N8nProtocolError(f"unknown message type {kind!r}")


def parse_runner(text: str | bytes) -> RunnerMessage:
    """One runner frame, validated (the broker's side). Raises N8nProtocolError, and only that."""
    msg = _object(text)
    kind = msg.get("type")
    what = str(kind)
    match kind:
        case "runner:info":
            types = _get(msg, "types", list, what)
            if not all(isinstance(t, str) for t in types):
                raise N8nProtocolError(f"{what}: types holds a value that is not a string")
            return RunnerInfo(_get(msg, "name", str, what), tuple(types))
        case "runner:taskoffer":
            return TaskOffer(_get(msg, "offerId", str, what), _get(msg, "taskType", str, what),
                             _get(msg, "validFor", int, what))
        case "runner:taskaccepted":
            return TaskAccepted(_get(msg, "taskId", str, what))
        case "runner:taskrejected":
            reason = msg.get("reason", "")
            return TaskRejected(_get(msg, "taskId", str, what), reason if isinstance(reason, str) else "")
        case "runner:taskdatarequest":
            return TaskDataRequest(_get(msg, "taskId", str, what), _get(msg, "requestId", str, what),
                                   _get(msg, "requestParams", dict, what))
        case "runner:taskdone":
            return TaskDone(_get(msg, "taskId", str, what), _get(msg, "data", dict, what))
        case "runner:taskerror":
            return TaskError(_get(msg, "taskId", str, what), _get(msg, "error", dict, what))
        case "runner:rpc":
            return Rpc(_get(msg, "callId", str, what), _get(msg, "taskId", str, what),
                       _get(msg, "name", str, what), _get(msg, "params", list, what))
        case "runner:nodetypesrequest":
            return NodeTypesRequest(_get(msg, "taskId", str, what), _get(msg, "requestId", str, what),
                                    msg.get("requestParams"))
        case _:
            raise N8nProtocolError(f"unknown message type {kind!r}")
