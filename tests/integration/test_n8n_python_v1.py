"""Python Code nodes written for n8n 1.x (its Pyodide runner), run unchanged in real jails.

n8n 2.x's own runner dropped that API; ours accepts it beside the native one. The cases are
written in the shapes public workflow collections show (n8n's own templates first), with the
runner's default settings: the ordinary standard library, the instance's time zone.
"""

from __future__ import annotations

import dataclasses

import pytest

from sandbox import Sandbox
from sandbox.config import Limits
from sandbox.n8n import python_node
from sandbox.n8n import protocol as p
from sandbox.n8n.config import N8nRunnerConfig
from sandbox.n8n.task import Finished
from sandbox.result import Result

pytestmark = pytest.mark.jail

LIMITS = Limits(timeout_s=10.0, memory_mb=128)
EACH, ALL = "runOnceForEachItem", "runOnceForAllItems"
ORDERS = [{"id": 1, "name": "ada", "price": 2.5, "qty": 4, "active": True,
           "payload": '{"k": [1, 2]}', "n": 1},
          {"id": 2, "name": "bob", "price": 10, "qty": 1, "active": False,
           "payload": '{"k": []}', "n": 2}]


@pytest.fixture(scope="module")
def sb():
    config = N8nRunnerConfig.load(env={"N8N_RUNNERS_AUTH_TOKEN": "t",
                                       "GENERIC_TIMEZONE": "Europe/Berlin"})
    with Sandbox(dataclasses.replace(config.pool_config(), size=2), runtimes=("python",)) as box:
        yield box


def run(sb: Sandbox, code: str, mode: str = ALL, items=None, response=None) -> Finished:
    s = p.Settings(code=code, node_mode=mode, workflow_mode="manual", continue_on_fail=False,
                   items=[{"json": dict(i)} for i in (ORDERS if items is None else items)],
                   workflow_id="wf1", workflow_name="Orders")
    job = python_node.job(s, LIMITS, response)
    envelope = sb.run_encoded(job.runtime, job.code, job.data, timeout_s=LIMITS.timeout_s,
                              memory_mb=LIMITS.memory_mb)
    return python_node.finish(s, Result.from_wire(envelope, max_bytes=LIMITS.envelope_bytes), LIMITS)


def jsons(done: Finished) -> list:
    assert done.error is None, done.error
    assert done.done is not None
    return [i["json"] for i in done.done["result"]]


V1 = [
    ("n8n 1.x's all-items template: attribute writes reach the items", ALL,
     "for item in _input.all():\n  item.json.myNewField = 1\nreturn _input.all()",
     [dict(ORDERS[0], myNewField=1), dict(ORDERS[1], myNewField=1)]),
    ("items with subscripts, returned as they are", ALL,
     "for item in items:\n    item['json']['total'] = item['json']['price'] * item['json']['qty']\n"
     "return items",
     [dict(ORDERS[0], total=10.0), dict(ORDERS[1], total=10)]),
    ("to_py() copies an item's json out", ALL,
     "data = [i.json.to_py() for i in _input.all()]\ndata[0]['name'] = 'changed'\n"
     "return [{'json': {'count': len(data), 'first': _input.first().json.name}}]",
     [{"count": 2, "first": "ada"}]),
    ("new items from fields read as attributes", ALL,
     "out = []\nfor item in _input.all():\n    out.append({'json': {'id': item.json.id, "
     "'label': f'#{item.json.id} {item.json.name}'}})\nreturn out",
     [{"id": 1, "label": "#1 ada"}, {"id": 2, "label": "#2 bob"}]),
    ("filtering with get()", ALL,
     "return [i for i in _input.all() if i.json.get('active')]", [ORDERS[0]]),
    ("first(), last(), len() and .length", ALL,
     "a = _input.all()\nreturn {'json': {'n': len(a), 'length': a.length, "
     "'first': _input.first().json.id, 'last': _input.last().json.id, 'json0': _json.id}}",
     [{"n": 2, "length": 2, "first": 1, "last": 2, "json0": 1}]),
    ("json.loads of a field", ALL,
     "import json\nreturn [{'json': json.loads(_input.first().json.payload)}]", [{"k": [1, 2]}]),
    ("zoneinfo, imported as users write it", ALL,
     "from datetime import datetime\nfrom zoneinfo import ZoneInfo\n"
     "d = datetime(2024, 7, 1, 12, tzinfo=ZoneInfo('UTC')).astimezone(ZoneInfo('America/New_York'))\n"
     "return [{'json': {'d': d.isoformat()}}]",
     [{"d": "2024-07-01T08:00:00-04:00"}]),
    ("sqlite3 in memory to aggregate", ALL,
     "import sqlite3\ndb = sqlite3.connect(':memory:')\ndb.execute('create table o (name, total)')\n"
     "db.executemany('insert into o values (?, ?)', [(i.json.name, i.json.price * i.json.qty) "
     "for i in _input.all()])\n"
     "return [{'json': {'sum': db.execute('select sum(total) from o').fetchone()[0]}}]",
     [{"sum": 20.0}]),
    ("a top-level await with asyncio", ALL,
     "import asyncio\nasync def double(x):\n    await asyncio.sleep(0)\n    return x * 2\n"
     "res = await asyncio.gather(*(double(i.json.n) for i in _input.all()))\n"
     "return [{'json': {'r': list(res)}}]",
     [{"r": [2, 4]}]),
    ("the native API is unchanged beside it", ALL,
     "return [{'json': {'names': [i['json']['name'] for i in _items], 'plain': type(_items[0]) is dict}}]",
     [{"names": ["ada", "bob"], "plain": True}]),
    ("n8n 1.x's each-item template", EACH,
     "_input.item.json.myNewField = 1\nreturn _input.item",
     [dict(ORDERS[0], myNewField=1), dict(ORDERS[1], myNewField=1)]),
    ("_json and item in each-item mode", EACH,
     "return {'json': {'upper': _json.name.upper(), 'same': item.json.id == _json.id, "
     "'index': _itemIndex}}",
     [{"upper": "ADA", "same": True, "index": 0}, {"upper": "BOB", "same": True, "index": 1}]),
    ("regular expressions on a field, a new dict per item", EACH,
     "import re\nm = re.search(r'\\[(\\d+)', _json.payload)\n"
     "return {'json': {'id': _json.id, 'firstK': int(m.group(1)) if m else None}}",
     [{"id": 1, "firstK": 1}, {"id": 2, "firstK": None}]),
    ("the workflow's name", ALL, "return [{'json': {'wf': _workflow.name, 'mode': _mode}}]",
     [{"wf": "Orders", "mode": "manual"}]),
]


@pytest.mark.parametrize("why,mode,code,expected", V1, ids=[c[0] for c in V1])
def test_python_code_nodes_written_for_n8n_1x_run_unchanged(sb, why, mode, code, expected):
    assert jsons(run(sb, code, mode)) == expected


def test_local_time_is_the_instances_time_zone(sb):
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
