"""JavaScript Code nodes answer as n8n's own runner (V8 in a ``vm`` context) answers: the
Code node layer (``javascript_node`` + ``code_node.js``) runs in real jails without n8n, and
each expected value is what n8n 2.41.1's runner gives for the same code and items (its
source: packages/@n8n/task-runner/src/js-task-runner/, and ``node -e`` for V8's words).
"""

from __future__ import annotations

import json

import pytest

from sandbox import PoolConfig
from sandbox.config import Limits
from sandbox.n8n import javascript_node
from sandbox.n8n import protocol as p
from sandbox.n8n.task import Finished
from tests.n8n import captures
from tests.n8n.jobs import Jobs

pytestmark = pytest.mark.jail

LIMITS = Limits(timeout_s=10.0, memory_mb=128)
EACH, ALL = "runOnceForEachItem", "runOnceForAllItems"
ITEMS = ({"x": 1}, {"x": 2})


@pytest.fixture(scope="module")
def sb():
    with Jobs(PoolConfig(size=2), runtimes=("javascript",)) as box:
        yield box


def run_js(sb, code, mode=ALL, cof=False, items=ITEMS, include_input=True,
           binary=None) -> Finished:
    chunk = p.Chunk(0, len(items)) if mode == EACH else None
    s = p.Settings(code=code, node_mode=mode, workflow_mode="manual", continue_on_fail=cof,
                   chunk=chunk)
    data = json.loads(json.dumps(
        next(m for m in captures.messages("07") if m["type"] == "broker:taskdataresponse")["data"]))
    main = [{"json": i, "pairedItem": {"item": n}} for n, i in enumerate(items)]
    if binary is not None:
        main[0]["binary"] = binary
    # n8n sends no input when the code does not ask for it (data_request decides)
    data["inputData"] = {"main": [main if include_input else []]}
    job = javascript_node.job(s, data, LIMITS)
    result = sb.run(job)
    return javascript_node.finish(s, result, LIMITS)


def jsons(done: Finished) -> list:
    assert done.error is None, done.error
    assert done.done is not None
    return [item["json"] for item in done.done["result"]]


# -- n8n's names are globals of the context: user code may redeclare them -------------------

@pytest.mark.parametrize("code,mode,expected", [
    ("const items = $input.all();\nreturn items.map(i => ({json: {y: i.json.x}}));", ALL,
     [{"y": 1}, {"y": 2}]),
    ("let item = $input.first();\nreturn [{json: item.json}];", ALL, [{"x": 1}]),
    ("const $json = {z: 9};\nreturn [{json: $json}];", ALL, [{"z": 9}]),
    ("var items = [];\nfor (const i of $input.all()) items.push({json: {n: i.json.x * 10}});\n"
     "return items;", ALL, [{"n": 10}, {"n": 20}]),
    ("const item = $input.item;\nreturn {json: {x2: item.json.x * 2}};", EACH,
     [{"x2": 2}, {"x2": 4}]),
    ("return {json: {seen: item.json.x, i: $itemIndex}};", EACH,
     [{"seen": 1, "i": 0}, {"seen": 2, "i": 1}]),
], ids=["const items", "let item", "const $json", "var items", "each: const item",
        "each: item global"])
def test_users_code_may_declare_n8ns_names(sb, code, mode, expected):
    assert jsons(run_js(sb, code, mode)) == expected


def test_items_is_not_defined_in_each_item_mode(sb):
    # n8n binds `item` per item and no `items` in this mode
    err = run_js(sb, "return {json: {n: items.length}};", EACH).error
    assert err is not None and err["message"] == "items is not defined [line 1]"


# -- results are JSON, as n8n's runner sends them ------------------------------------------

def test_undefined_values_are_dropped_and_null_in_arrays_as_json_does(sb):
    done = run_js(sb, "return [{json: {a: undefined, b: 1, c: [1, undefined, 3], "
                      "d: new Date(0), f: () => 1}}];")
    assert jsons(done) == [{"b": 1, "c": [1, None, 3], "d": "1970-01-01T00:00:00.000Z"}]


# -- $input.item, each-item output ---------------------------------------------------------

def test_input_item_in_run_once_for_all_items_is_the_first_item(sb):
    assert jsons(run_js(sb, "return [{json: $input.item.json}];")) == [{"x": 1}]


def test_each_item_mode_returns_one_item_per_input_item_when_the_code_reads_no_input(sb):
    done = run_js(sb, "return {json: {k: 'constant'}};", EACH, include_input=False)
    assert done.done == {"result": [{"json": {"k": "constant"}, "pairedItem": {"item": 0}},
                                    {"json": {"k": "constant"}, "pairedItem": {"item": 1}}]}


def test_binary_is_undefined_without_input_and_metadata_without_data(sb):
    # n8n asks for no input for code that reads $binary alone (its BuiltInsParser): there
    # $binary is undefined (golden binary-in-all-mode), so the key is dropped from the JSON
    assert jsons(run_js(sb, "return [{json: {b: $binary}}];", include_input=False)) == [{}]
    done = run_js(sb, "return [{json: {b: $binary}}];",
                  binary={"f": {"data": "QQ==", "mimeType": "text/plain", "fileName": "a.txt"}})
    assert jsons(done) == [{"b": {"f": {"mimeType": "text/plain", "fileName": "a.txt"}}}]


@pytest.mark.parametrize("mode", [ALL, EACH])
def test_binary_of_an_input_item_without_files_is_an_empty_object(sb, mode):
    # n8n's data proxy (nodeDataGetter): {} for an item without binary data, in both modes
    code = "return [{json: {b: $binary, n: $input.all().length}}];" if mode == ALL else \
        "return {json: {b: $binary, n: $input.all().length}};"
    assert jsons(run_js(sb, code, mode))[0] == {"b": {}, "n": 2}


def test_each_item_binary_without_input_is_undefined(sb):
    # golden each-binary-empty: the code reads no input, so n8n sends none
    code = "return {json: {has: $binary !== undefined && $binary !== null}};"
    s = p.Settings(code=code, node_mode=EACH, workflow_mode="manual", continue_on_fail=False,
                   chunk=p.Chunk(0, 2))
    include = javascript_node.data_request(s)["input"]["include"]
    assert jsons(run_js(sb, code, EACH, include_input=include)) == [{"has": False}, {"has": False}]


# -- $('Node').item: paired items followed back as n8n-workflow's WorkflowDataProxy does ------

def _node(name, *after):
    return name, after


def run_chain(sb, code, mode, runs, input_items, *, pinned=(), connections=None,
              exec_mode="manual") -> Finished:
    """A Code node ("Code") after a chain of nodes that ran: ``runs`` maps a node to (its
    source nodes, its output items). Connections follow the sources unless given. (Each
    expected value below is what n8n-workflow 2.41.1's WorkflowDataProxy gives for the same
    workflow, run data and input items under Node.)"""
    chunk = p.Chunk(0, len(input_items)) if mode == EACH else None
    s = p.Settings(code=code, node_mode=mode, workflow_mode="manual", continue_on_fail=False,
                   chunk=chunk)
    data = json.loads(json.dumps(
        next(m for m in captures.messages("07") if m["type"] == "broker:taskdataresponse")["data"]))
    last = list(runs)[-1]
    if connections is None:
        connections = {}
        for name, (sources, _) in runs.items():
            for src in sources:
                connections.setdefault(src, {"main": [[]]})["main"][0].append(
                    {"node": name, "type": "main", "index": 0})
        connections.setdefault(last, {"main": [[]]})["main"][0].append(
            {"node": "Code", "type": "main", "index": 0})
    names = [*runs, "Code"]
    data["workflow"]["nodes"] = [{"name": n, "parameters": {}, "type": "n8n-nodes-base.code"
                                  if n == "Code" else "n8n-nodes-base.noOp"} for n in names]
    data["workflow"]["connections"] = connections
    data["workflow"]["pinData"] = {n: [{"json": i["json"]} for i in runs[n][1]] for n in pinned}
    data["mode"] = exec_mode
    data["activeNodeName"] = data["contextNodeName"] = "Code"
    data["node"] = {"name": "Code", "parameters": {}}
    data["runExecutionData"]["resultData"]["runData"] = {
        name: [{"source": [{"previousNode": src, "previousNodeOutput": 0, "previousNodeRun": 0}
                           for src in sources],
                "data": {"main": [items]}}]
        for name, (sources, items) in runs.items()}
    data["connectionInputSource"] = {"main": [{"previousNode": last, "previousNodeOutput": 0,
                                               "previousNodeRun": 0}]}
    data["inputData"] = {"main": [input_items]}
    job = javascript_node.job(s, data, LIMITS)
    return javascript_node.finish(s, sb.run(job), LIMITS)


CONFIG = {"Start": ((), [{"json": {}}]),
          "Config": (("Start",), [{"json": {"currency": "EUR"}, "pairedItem": {"item": 0}}]),
          "people": (("Config",), [{"json": {"id": n}, "pairedItem": {"item": 0}} for n in range(3)])}
PEOPLE_INPUT = [{"json": {"id": n}, "pairedItem": {"item": n}} for n in range(3)]


def test_item_follows_each_items_own_pairing_past_the_items_of_the_node_before(sb):
    # golden node-item-each-mode: item 2 of the input pairs with item 2 of people, which
    # pairs with item 0 of Config (one Config item, three people)
    done = run_chain(sb, "return {json: {q: $('Config').item.json.currency, id: $json.id}};",
                     EACH, CONFIG, PEOPLE_INPUT, pinned=("Config", "people"))
    assert jsons(done) == [{"q": "EUR", "id": n} for n in range(3)]


def test_item_of_the_node_before_is_its_output_item(sb):
    # n8n gives the earlier node's item itself (its pairedItem), not the input item
    done = run_chain(sb, "return {json: {p: $('people').item.pairedItem}};", EACH, CONFIG,
                     PEOPLE_INPUT)
    assert jsons(done) == [{"p": {"item": 0}}] * 3


def test_an_item_made_of_several_items_resolves_when_they_lead_to_one_item(sb):
    # people 1 and 2 both come from Config's item 1: Merge's one item made of them leads there
    runs = {"Start": ((), [{"json": {}}]),
            "Config": (("Start",), [{"json": {"currency": c}, "pairedItem": {"item": 0}}
                                    for c in ("EUR", "USD")]),
            "people": (("Config",), [{"json": {"id": n}, "pairedItem": {"item": c}}
                                     for n, c in enumerate((0, 1, 1))]),
            "Merge": (("people",), [{"json": {}, "pairedItem": [{"item": 1}, {"item": 2}]}])}
    code = "return [{json: {q: $('Config').item.json.currency}}];"
    assert jsons(run_chain(sb, code, ALL, runs, [{"json": {}, "pairedItem": {"item": 0}}])) \
        == [{"q": "USD"}]


@pytest.mark.parametrize("code,pinned,message", [
    ("$('people').item", (), "Multiple matches"),
    ("$('people').item", ("people",), "Unpin 'people' to execute"),
    ("$('Other').item", (), "Invalid expression"),
    ("$('Config').itemMatching()", (), "Missing item index for .itemMatching()"),
], ids=["several items of the node named", "the same, pinned", "not before this node",
        "itemMatching without an index"])
def test_paired_item_errors_read_as_n8ns(sb, code, pinned, message):
    runs = {**CONFIG, "Other": ((), [{"json": {}}]),
            "Merge": (("people",), [{"json": {}, "pairedItem": [{"item": 0}, {"item": 1}]}])}
    connections = {"Start": {"main": [[{"node": "Config", "type": "main", "index": 0}]]},
                   "Config": {"main": [[{"node": "people", "type": "main", "index": 0}]]},
                   "people": {"main": [[{"node": "Merge", "type": "main", "index": 0}]]},
                   "Merge": {"main": [[{"node": "Code", "type": "main", "index": 0}]]}}
    done = run_chain(sb, f"return [{{json: {{v: {code}}}}}];", ALL, runs,
                     [{"json": {}, "pairedItem": {"item": 0}}], pinned=pinned,
                     connections=connections)
    assert done.error is not None and done.error["message"] == message


# -- n8n's vm wrapper: what it replaces before the user's code runs -------------------------

def test_the_vm_wrappers_replacements_hold_for_the_users_code(sb):
    # n8n's createVmExecutableCode (its context's own Object and Reflect): prototypes read as
    # a fresh object and cannot be set, properties cannot be defined; `global` and `module`
    # (the expected value is what that wrapper gives under node:vm)
    code = ("const o = {}; const proto = Object.getPrototypeOf(o);\n"
            "return [{json: {proto: proto === Object.prototype, fresh: proto !== Object.getPrototypeOf(o),\n"
            " rproto: Reflect.getPrototypeOf([]) === Array.prototype,\n"
            " set: Object.setPrototypeOf(o, null), rset: Reflect.setPrototypeOf(o, null),\n"
            " still: o instanceof Object,\n"
            " def: JSON.stringify(Object.defineProperty(o, 'x', {value: 1, enumerable: true})),\n"
            " defs: JSON.stringify(Object.defineProperties(o, {y: {value: 2, enumerable: true}})),\n"
            " keys: Object.keys(o), global: global === globalThis, module: JSON.stringify(module)}}];")
    assert jsons(run_js(sb, code)) == [{
        "proto": False, "fresh": True, "rproto": False, "set": False, "rset": False, "still": True,
        "def": "{}", "defs": "{}", "keys": [], "global": True, "module": '{"exports":{}}'}]


def test_the_librarys_modules_keep_the_real_functions_as_n8ns_realm_does(sb):
    # what n8n runs in its own realm (luxon, Buffer, TextDecoder, jmespath) is out of the
    # wrapper's reach there; here the modules, loaded while the user's code runs, still work
    code = ("const d = DateTime.fromISO('2024-01-02T03:04:05Z', {zone: 'utc'}).plus({days: 1}).toISODate();\n"
            "let err; try { Duration.fromObject(5); } catch (e) { err = e.message; }\n"
            "return [{json: {d, err, b: Buffer.from('aGk=', 'base64').toString(),\n"
            " t: new TextDecoder().decode(new Uint8Array([104, 105])), j: $jmespath({a: [1, 2]}, 'a[1]')}}];")
    assert jsons(run_js(sb, code)) == [{
        "d": "2024-01-03", "err": "Duration.fromObject: argument expected to be an object, got number",
        "b": "hi", "t": "hi", "j": 2}]


# -- legacy $item / $items -----------------------------------------------------------------

def test_legacy_item_and_items(sb):
    done = run_js(sb, "return [{json: {second: $item(1).$json.x, n: $items().length}}];")
    assert jsons(done) == [{"second": 2, "n": 2}]


# -- errors as n8n's runner words them -----------------------------------------------------

ERRORS = [
    ("member call", "const s = $json;\nreturn [{json: {p: s.x.split(',')}}];",
     "s.x.split is not a function [line 2]", "TypeError"),
    ("identifier call", "const f = 1;\nf();\nreturn [];", "f is not a function [line 2]",
     "TypeError"),
    ("call on a call", "const x = [1];\nx.map(v => v).filter2(v => v);\nreturn [];",
     "x.map(...).filter2 is not a function [line 2]", "TypeError"),
    ("first line member call", "return [{json: {p: $json.x.toUpperCase()}}];",
     "$json.x.toUpperCase is not a function [line 1]", "TypeError"),
    ("index key", "const a = {b: {}};\na['b'].zz();", "a.b.zz is not a function [line 2]",
     "TypeError"),
    ("read of undefined", "const a = {};\nreturn [{json: {v: a.b.c}}];",
     "Cannot read properties of undefined (reading 'c') [line 2]", "TypeError"),
    ("not iterable", "const o = {};\nfor (const k of o.list) {}\nreturn [];",
     "o.list is not iterable [line 2]", "TypeError"),
    ("assignment to const", "const a = 1;\na = 2;\nreturn [];",
     "Assignment to constant variable. [line 2]", "TypeError"),
    ("multi-line message: its first line", "throw new Error('first\\nsecond');",
     "first [line 1]", None),
    ("a colon: n8n 2.41 splits the type off at the first one",
     "throw new Error('Request failed: 404');", "Request failed: 404 [line 1]", None),
    ("innermost named function's line", "function check(v) {\n  return v.y.z;\n}\n"
     "return [{json: {r: check({})}}];",
     "Cannot read properties of undefined (reading 'z') [line 2]", "TypeError"),
    ("JSON.parse: at the user's line", "const t = '{\\n\"a\": 1,\\n}';\nconst v = JSON.parse(t);\n"
     "return [];",
     "Expected double-quoted property name in JSON at position 10 (line 3 column 1) [line 2]",
     "SyntaxError"),
    ("JSON.parse of text", "return [{json: JSON.parse('abc')}];",
     "Unexpected token 'a', \"abc\" is not valid JSON [line 1]", "SyntaxError"),
    ("a thrown string: its JSON", "throw 'oops';", '"oops"', None),
    ("a thrown number", "throw 404;", "404", None),
    ("a thrown object with a message", "throw {message: 'm', code: 1};", "m", None),
]


@pytest.mark.parametrize("why,code,message,description", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_are_worded_as_n8ns_runner_words_them(sb, why, code, message, description):
    err = run_js(sb, code).error
    assert err is not None
    assert (err["message"], err.get("description")) == (message, description)


