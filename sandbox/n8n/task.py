"""What a Code node task becomes on our side, and how our outcomes read in n8n.

A task's settings (and, for JavaScript, its data) become one ``Job``: a snippet for one of
our runtimes whose code is a trusted wrapper (shipped by the host, run inside the jail like
any snippet) and whose ``data`` carries the user's code and items. The wrapper gives the
user's code n8n's API and returns ``{"result": items}`` or ``{"error": {...}}`` plus the
console output; ``Finished`` is that, turned into the frames n8n expects.

Our statuses beyond ``ok`` mean the kernel layers stopped the task; ``limit_error`` words
them for an n8n user (which limit, and how to raise it). Pure: no I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from runtimes.outcome import Status
from sandbox.config import Limits
from sandbox.result import Result


@dataclass(frozen=True)
class Job:
    """One snippet for the pools: ``runtime``, the wrapper ``code``, codec-encoded ``data``;
    ``workflow``: the id of the workflow whose Code node it is (a warm worker serves one);
    ``calls``: what of n8n it may call while it runs (``protocol.RPC_HELPERS``)."""

    runtime: str
    code: str
    data: bytes
    limits: Limits
    workflow: str = ""
    calls: tuple[str, ...] = ()


@dataclass(frozen=True)
class Finished:
    """A task's answer: console lines first (one ``logNodeOutput`` rpc each), then either
    ``taskdone`` data or a ``taskerror`` error."""

    logs: list[list[str]] = field(default_factory=list)
    done: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    # ``done["result"]`` as the JSON text it was read from, when it is that text unchanged
    # (the JavaScript runtime makes its items as JSON): sent as it is (protocol.TaskDone)
    result_json: str = field(default="", compare=False, repr=False)


class JobError(Exception):
    """A task that cannot become a job (its items cannot be sent into the jail, say)."""


#: How n8n shows a failed task when the node continues on fail: one item with the message.
def continued(message: str) -> dict[str, Any]:
    return {"result": [{"json": {"error": message}}]}


def fail(message: str, continue_on_fail: bool, logs: list[list[str]] | None = None,
         **details: Any) -> Finished:
    """A failed task, answered the way n8n's runners do (``continueOnFail`` included)."""
    if continue_on_fail:
        return Finished(logs or [], done=continued(message))
    return Finished(logs or [], error={"message": message, **details})


def limit_error(result: Result, limits: Limits) -> tuple[str, str]:
    """(message, description) for a task our layers ended; ``result`` is not ``ok``."""
    status = result.status
    if status is Status.TIMEOUT:
        if "CPU" in result.message:
            return (f"Task exceeded its CPU time limit ({limits.timeout_s:g} s of CPU) and was "
                    "stopped", "The limit is the runner's task timeout "
                    "(N8N_RUNNERS_TASK_TIMEOUT, --task-timeout)")
        return (f"Task execution timed out after {limits.timeout_s:g} seconds (this runner's "
                f"limit)", "Raise it with N8N_RUNNERS_TASK_TIMEOUT (--task-timeout) on the "
                "runner, and keep n8n's own N8N_RUNNERS_TASK_TIMEOUT at least as high")
    if status is Status.MEMORY_LIMIT:
        return (f"Task ran out of memory: this runner allows each task {limits.memory_mb} MB",
                "Raise the cap with --memory MB (SANDBOX_N8N_MEMORY_MB) on the runner, or "
                "process fewer items per execution")
    if status is Status.VIOLATION:
        return ("Task tried an operation that is not allowed in this runner (processes, "
                "sockets, exec, ... are blocked) and was stopped", result.message)
    if status is Status.OUTPUT_LIMIT:
        return (f"Task result is too large: this runner allows "
                f"{limits.result_bytes // (1024 * 1024)} MiB", result.message)
    if status is Status.REJECTED:
        return f"Task could not run: {result.message}", "rejected by the sandbox"
    if status is Status.ERROR and result.error is not None:
        return f"{result.error.type}: {result.error.message}", result.error.type
    return f"Task failed: {result.message}", str(status)


def format_log_arg(value: Any) -> str:
    """One argument of a print as n8n's Python runner shows it: a string quoted, other
    scalars as Python prints them, the rest as JSON."""
    if isinstance(value, str):
        return f"'{value}'"
    if value is None or isinstance(value, (bool, int, float)):
        return str(value)
    return json.dumps(value, ensure_ascii=False, default=str)


def jsonable(value: Any) -> Any:
    """A decoded result as JSON n8n parses: bytes and datetimes as text (what ``default=str``
    gives), non-finite floats as null (JSON has none), int keys as strings."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return str(value)
