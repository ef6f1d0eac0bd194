"""A corpus of Python Code nodes written for n8n 1.x (its Pyodide runner), in the shapes
public workflow collections show (n8n's own templates first; none copied), with the items
they run on and what they return under 1.x's semantics (Pyodide's proxies over the items):
run in jails (tests/integration/test_n8n_python_v1.py) and through a real n8n 2.41 with our
runner (tests/integration/test_n8n_e2e.py); n8n's own runner fails all but the native case."""

from __future__ import annotations

EACH, ALL = "runOnceForEachItem", "runOnceForAllItems"

ORDERS = [{"id": 1, "name": "ada", "price": 2.5, "qty": 4, "active": True,
           "payload": '{"k": [1, 2]}', "n": 1},
          {"id": 2, "name": "bob", "price": 10, "qty": 1, "active": False,
           "payload": '{"k": []}', "n": 2}]

#: (why, mode, code, the items' json it returns)
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
    ("the workflow and the mode", ALL,
     "return [{'json': {'named': bool(_workflow.name) and bool(_workflow.id), 'mode': _mode}}]",
     [{"named": True, "mode": "manual"}]),
]
