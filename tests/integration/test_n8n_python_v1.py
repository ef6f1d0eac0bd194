"""Python Code nodes written for n8n 1.x (its Pyodide runner), run unchanged in real jails.

n8n 2.x's own runner dropped that API; ours accepts it beside the native one. The cases are
written in the shapes public workflow collections show (n8n's own templates first), with the
runner's default settings: the ordinary standard library, the instance's time zone.
"""

from __future__ import annotations

import dataclasses

import pytest

from sandbox.config import Limits
from sandbox.n8n import python_node
from sandbox.n8n import protocol as p
from sandbox.n8n.config import N8nRunnerConfig
from sandbox.n8n.task import Finished
from tests.n8n.python_v1 import ALL, ORDERS, V1
from tests.n8n.jobs import Jobs

pytestmark = pytest.mark.jail

LIMITS = Limits(timeout_s=10.0, memory_mb=128)


@pytest.fixture(scope="module")
def sb():
    config = N8nRunnerConfig.load(env={"N8N_RUNNERS_AUTH_TOKEN": "t", "TZ": "Europe/Berlin"})
    with Jobs(dataclasses.replace(config.pool_config(), size=2), runtimes=("python",)) as box:
        yield box


def run(sb: Jobs, code: str, mode: str = ALL, items=None, response=None) -> Finished:
    s = p.Settings(code=code, node_mode=mode, workflow_mode="manual", continue_on_fail=False,
                   items=[{"json": dict(i)} for i in (ORDERS if items is None else items)],
                   workflow_id="wf1", workflow_name="Orders")
    job = python_node.job(s, LIMITS, response)
    return python_node.finish(s, sb.run(job), LIMITS)


def jsons(done: Finished) -> list:
    assert done.error is None, done.error
    assert done.done is not None
    return [i["json"] for i in done.done["result"]]




@pytest.mark.parametrize("why,mode,code,expected", V1, ids=[c[0] for c in V1])
def test_python_code_nodes_written_for_n8n_1x_run_unchanged(sb, why, mode, code, expected):
    assert jsons(run(sb, code, mode)) == expected


def test_local_time_is_the_runners_tz_as_in_n8ns_runner_process(sb):
    out = jsons(run(sb, "from datetime import datetime\nimport time\n"
                        "return [{'json': {'zone': list(time.tzname), "
                        "'offset': datetime.now().astimezone().utcoffset().total_seconds()}}]"))
    assert out[0]["zone"] == ["CET", "CEST"] and out[0]["offset"] in (3600.0, 7200.0)


RUN_DATA = {"runExecutionData": {"resultData": {"runData": {
    "Webhook": [{"data": {"main": [[{"json": {"body": {"user": "ada"}}}]]}}],
    "Config": [{"data": {"main": [[{"json": {"rate": 1}}]]}},
               {"data": {"main": [[{"json": {"rate": 2}}, {"json": {"rate": 3}}]]}}]}}}}


def test_another_nodes_items_as_n8n_1x_read_them(sb):
    code = ("user = _('Webhook').first().json.body.user\n"
            "rates = [c.json.rate for c in _(\"Config\").all()]\n"
            "return [{'json': {'user': user, 'rates': rates, 'last': _('Config').last().json.rate}}]")
    assert jsons(run(sb, code, response=RUN_DATA)) == [{"user": "ada", "rates": [2, 3], "last": 3}]


@pytest.mark.parametrize("code,message", [
    ("return _('Missing').all()", "Node 'Missing' hasn't been executed"),
    ("n = 'Webhook'\nreturn _(n).all()", "_('Webhook') is not available in this runner: write the "
                                          "node's name as a literal (_('Node')), so that n8n is "
                                          "asked for its items"),
    ("return _('Webhook').item.json", "_('Webhook').item is not available in this runner for "
                                      "Python (paired items are not followed): use "
                                      "_('Webhook').all()[index] or .first()"),
])
def test_what_cannot_be_read_of_another_node_fails_naming_it(sb, code, message):
    done = run(sb, code, response=RUN_DATA)
    assert done.error is not None and done.error["message"] == message


def test_env_is_blocked_as_n8n_blocks_it(sb):
    done = run(sb, "return [{'json': {'h': _env.HOME}}]")
    assert done.error is not None and done.error["message"] == "access to env vars denied"


def test_a_module_outside_the_ordinary_standard_library_is_refused_naming_the_setting(sb):
    done = run(sb, "import subprocess\nreturn []")
    assert done.error is not None
    assert done.error["message"] == ("import of standard-library module 'subprocess' is not "
                                     "allowed here; the operator can allow it with "
                                     "N8N_RUNNERS_STDLIB_ALLOW (--stdlib-allow)")
