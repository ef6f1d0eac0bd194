"""The two sides of the comparison, each a real n8n 2.41.1 running the whole corpus.

- ``theirs``: n8n in internal runner mode: n8n launches its own JavaScript runner
  (``@n8n/task-runner``) as a child, as a user who never configured runners gets it.
- ``ours``: n8n in external mode served by ``sandbox n8n-runner`` (``RunnerProcess``).

Both n8n instances get the same environment but the runner mode, so what a snippet can read
of n8n (its time zone, its settings) is the same on both sides. The golden file is the
``theirs`` side recorded, so that ours can be compared without starting n8n's runner; and
``run_ours_in_jails`` is ours without n8n at all: the recorded task data (taskdata.json)
through our Code node layer, then n8n's steps after the runner (n8n_side.py).
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.n8n.jobs import Jobs
from sandbox.config import Limits
from sandbox.n8n import javascript_node
from sandbox.n8n.protocol import Chunk, Settings, TaskDone, TaskError, encode
from sandbox.n8n.task import Finished, JobError
from tests.n8n.differential import compare, n8n_side, taskdata
from tests.n8n.differential.corpus import EACH, HERE, Case, load
from tests.n8n.differential.run import run_corpus, run_stopping
from benchmarks.n8n_peer.peer import N8n, RunnerProcess

GOLDEN = HERE / "golden.json"
TASK_DATA = HERE / "taskdata.json"
REPO = HERE.parents[2]

#: What both n8n instances and our runner are configured with, as an operator would: a time
#: zone other than the machine's (UTC), so that zone handling shows, and the one built-in
#: module real snippets require most (n8n's launcher passes both variables to its runners).
SHARED_ENV = {"GENERIC_TIMEZONE": "Europe/Berlin", "NODE_FUNCTION_ALLOW_BUILTIN": "crypto"}

#: n8n's task timeout on both sides (its default).
N8N_TASK_TIMEOUT_S = 60

#: Our runner's flags: enough concurrency and time that no snippet of the corpus meets a limit
#: n8n's runner would not (the same task timeout as n8n's).
RUNNER_FLAGS = ("--max-concurrency", "4", "--task-timeout", str(N8N_TASK_TIMEOUT_S), "--memory", "256")


def outcomes(raw: dict[str, dict[str, Any]], cases: Sequence[Case]) -> dict[str, dict[str, Any]]:
    return {c.id: compare.outcome(raw[c.id], c) for c in cases}


def failing(outcomes: dict[str, dict[str, Any]]) -> set[str]:
    """The cases n8n's own runner fails: those whose error a user sees without "continue on
    fail" is compared too (``stopped``)."""
    return {cid for cid, outcome in outcomes.items() if outcome["status"] == "error"}


def _with_stopped(n8n: N8n, out: dict[str, dict[str, Any]], cases: Sequence[Case],
                  stop: set[str]) -> dict[str, dict[str, Any]]:
    stopped = run_stopping(n8n, [c for c in cases if c.id in stop])
    for cid, error in stopped.items():
        out[cid]["stopped"] = error
    return out


def run_theirs(cases: Sequence[Case] | None = None) -> dict[str, dict[str, Any]]:
    """Normalised outcomes from n8n's own JavaScript runner (internal mode)."""
    cases = cases or load()
    internal = {**SHARED_ENV, "N8N_RUNNERS_MODE": "internal"}
    with N8n.start(task_timeout_s=N8N_TASK_TIMEOUT_S, extra_env=internal) as n8n:
        out = outcomes(run_corpus(n8n, cases), cases)
        return _with_stopped(n8n, out, cases, failing(out))


def run_ours_on(n8n: N8n, cases: Sequence[Case], stop: set[str],
                flags: Sequence[str] = RUNNER_FLAGS) -> dict[str, dict[str, Any]]:
    """Normalised outcomes from ``sandbox n8n-runner`` serving an external-mode ``n8n``
    (which no other runner may serve meanwhile); ``stop``: the cases whose error without
    "continue on fail" is compared (``failing`` of n8n's side)."""
    runner = RunnerProcess(n8n, *flags, env=SHARED_ENV).wait_registered()
    try:
        return _with_stopped(n8n, outcomes(run_corpus(n8n, cases), cases), cases, stop)
    finally:
        runner.stop()


def run_ours(cases: Sequence[Case], stop: set[str]) -> dict[str, dict[str, Any]]:
    with N8n.start(task_timeout_s=N8N_TASK_TIMEOUT_S, extra_env=SHARED_ENV) as n8n:
        return run_ours_on(n8n, cases, stop)


def write_golden(theirs: dict[str, dict[str, Any]], path: Path = GOLDEN) -> None:
    """Record n8n's outcomes, each with the digest of the case it answers."""
    digests = {c.id: c.digest for c in load()}
    doc = {cid: {"digest": digests[cid], **outcome} for cid, outcome in theirs.items()}
    path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def read_golden(path: Path = GOLDEN) -> dict[str, dict[str, Any]]:
    """n8n's recorded outcomes by case id."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    return {cid: {k: v for k, v in entry.items() if k != "digest"} for cid, entry in doc.items()}


def stale(cases: Sequence[Case] | None = None) -> list[str]:
    """Cases whose recordings (golden.json, taskdata.json) were made for another version of
    the case, or are missing: re-record them (see ``__main__``)."""
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    recorded = read_task_data()
    out = []
    for case in cases or load():
        entry = recorded["cases"].get(case.id)
        if golden.get(case.id, {}).get("digest") != case.digest or (
                entry is not None and entry.get("digest") != case.digest):
            out.append(case.id)
    return out


def record_task_data(cases: Sequence[Case] | None = None) -> list[dict[str, Any]]:
    """The ``broker:taskdataresponse`` messages n8n sends for the corpus, one per Code node,
    each with everything a task may ask for (``tap.py``), served by our runner."""
    cases = cases or load()
    with tempfile.NamedTemporaryFile(suffix=".jsonl") as out, \
            N8n.start(task_timeout_s=N8N_TASK_TIMEOUT_S, extra_env=SHARED_ENV) as n8n:
        runner = RunnerProcess(n8n, *RUNNER_FLAGS, env={**SHARED_ENV, "PYTHONPATH": str(REPO)},
                               command=[sys.executable, "-m", "tests.n8n.differential.tap", out.name])
        try:
            runner.wait_registered()
            run_corpus(n8n, cases)
        finally:
            runner.stop()
        return [json.loads(line) for line in Path(out.name).read_text(encoding="utf-8").splitlines()]


def write_task_data(messages: list[dict[str, Any]], path: Path = TASK_DATA) -> None:
    doc = taskdata.compact(messages, {c.id: c for c in load()})
    path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def read_task_data(path: Path = TASK_DATA) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


#: Our runner's limits in ``RUNNER_FLAGS``, for running our Code node layer without n8n.
LIMITS = Limits(timeout_s=float(N8N_TASK_TIMEOUT_S), memory_mb=256)
#: What our runner reads of ``SHARED_ENV``, for the same.
OPTIONS = javascript_node.CodeOptions(
    allow_builtin=tuple(SHARED_ENV["NODE_FUNCTION_ALLOW_BUILTIN"].split(",")),
    timezone=SHARED_ENV["GENERIC_TIMEZONE"])


def _sendable(finished: Finished) -> bool:
    """Whether the runner can send this answer over n8n's WebSocket (UTF-8 text)."""
    # as the runner sends it: the items as the child's JSON text, where it gave one
    message = TaskDone("task", finished.done, finished.result_json) \
        if finished.done is not None else TaskError("task", finished.error or {})
    try:
        encode(message).encode("utf-8")
    except (UnicodeEncodeError, ValueError, TypeError):
        return False
    return True


def _in_jail(sb: Jobs, doc: dict[str, Any], case: Case, continue_on_fail: bool) -> dict[str, Any]:
    """What n8n would record of ``case`` answered by our Code node layer in a real jail."""
    response = taskdata.response(doc, case)
    done: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    if response is None:
        input_items = taskdata.input_items(doc, case)
    else:
        input_items = response["inputData"]["main"][0]
        settings = Settings(code=case.code, node_mode=case.mode, workflow_mode="manual",
                            continue_on_fail=continue_on_fail, node_name=case.id,
                            chunk=Chunk(0, len(input_items)) if case.mode == EACH else None)
        # what n8n's broker would send for what our layer asks: the recording holds all
        response = n8n_side.strip(response, javascript_node.data_request(settings))
        try:
            job = javascript_node.job(settings, response, LIMITS, options=OPTIONS)
        except JobError as exc:
            error = {"message": str(exc)}
        else:
            result = sb.run(job)
            finished = javascript_node.finish(settings, result, LIMITS)
            done, error = finished.done, finished.error
            if not _sendable(finished):
                # the runner cannot send this answer (text that is not UTF-8, a lone
                # surrogate): n8n hears nothing and fails the task at its own timeout
                done, error = None, {"message": f"Task execution timed out after "
                                                f"{N8N_TASK_TIMEOUT_S} seconds"}
    return n8n_side.record(case, input_items, done, error, continue_on_fail=continue_on_fail)


def run_ours_in_jails(sb: Jobs, cases: Sequence[Case] | None = None,
                      doc: dict[str, Any] | None = None,
                      stop: set[str] | None = None) -> dict[str, dict[str, Any]]:
    """Normalised outcomes of our Code node layer without n8n: each case's recorded task
    data (``taskdata.json``) through ``javascript_node`` in real jails, as the runner runs
    it, then what n8n would record of the answer (``n8n_side``). ``stop``: the cases whose
    error without "continue on fail" is compared (default: those n8n's runner failed in the
    golden file)."""
    cases = cases or load()
    doc = doc or read_task_data()
    stop = failing(read_golden()) if stop is None else stop
    out: dict[str, dict[str, Any]] = {}
    for case in cases:
        out[case.id] = compare.outcome(_in_jail(sb, doc, case, True), case)
        if case.id in stop:
            out[case.id]["stopped"] = _in_jail(sb, doc, case, False)["node_error"]
    return out
