"""The n8n runner's port to our pools, in worker mode: which warm worker a job may take."""

from __future__ import annotations

from sandbox.config import Limits
from sandbox.n8n import javascript_node, python_node
from sandbox.n8n.backend import reuse_key_of
from sandbox.n8n.protocol import Settings
from sandbox.n8n.task import Job
from sandbox.request import MAX_REUSE_KEY_CHARS


def _job(workflow: str) -> Job:
    return Job("python", "return 1", b"\xc0", Limits(), workflow)


def test_a_job_is_bound_to_its_workflows_workers():
    assert reuse_key_of(_job("wf-1")) == "workflow/wf-1"


def test_a_job_naming_no_workflow_takes_no_worker():
    assert reuse_key_of(_job("")) is None


def test_a_workflow_id_too_long_for_a_key_is_never_cut_to_one():
    """Cut, two long ids could share a key and so a worker: such a job gets a fresh process."""
    assert reuse_key_of(_job("w" * MAX_REUSE_KEY_CHARS)) is None


def test_a_code_node_job_carries_its_workflows_id():
    settings = Settings(code="return []", node_mode="runOnceForAllItems", workflow_mode="manual",
                        continue_on_fail=False, workflow_id="wf-7")
    assert python_node.job(settings, Limits()).workflow == "wf-7"


def test_a_javascript_job_carries_the_workflow_id_of_its_data_response():
    """n8n's settings of a JavaScript task name no workflow; the data it asks for does."""
    settings = Settings(code="return []", node_mode="runOnceForAllItems", workflow_mode="manual",
                        continue_on_fail=False)
    response = {"workflow": {"id": "wf-9", "name": "w", "nodes": []}, "inputData": {"main": [[]]}}
    assert javascript_node.job(settings, response, Limits()).workflow == "wf-9"


class _RecordedAnswers:
    """Stands in for the pools: what the port answers a job's call."""

    def __init__(self) -> None:
        self.answers: list[tuple[str, int, bool, str]] = []

    def answer(self, key: str, call_id: int, ok: bool, data: str) -> None:
        self.answers.append((key, call_id, ok, data))


def test_a_call_whose_arguments_are_no_json_array_is_answered_an_error_and_not_passed_on():
    """What a child sends is untrusted: arguments n8n could not take never reach n8n."""
    from sandbox import PoolConfig
    from sandbox.n8n.backend import PoolsBackend

    backend = PoolsBackend(PoolConfig(size=1))
    passed_on: list[object] = []
    backend._on_call = lambda *call: passed_on.append(call)
    recorded = backend._worker = _RecordedAnswers()
    backend._call("task-1", 7, "helpers.httpRequest", '{"url": "http://h/"}')
    assert (recorded.answers, passed_on) == (
        [("task-1", 7, False, '"helpers.httpRequest: its arguments are not a JSON array"')], [])
