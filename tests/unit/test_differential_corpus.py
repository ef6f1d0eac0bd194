"""The differential corpus's pure parts: its format, the outcome of a node as n8n recorded it,
and the comparison (tests/n8n/differential)."""

from __future__ import annotations

import pytest

from tests.n8n.differential import compare, corpus, n8n_side, sides, taskdata
from tests.n8n.differential.corpus import ALL, EACH, Case, CorpusError
from tests.n8n.differential.known import KNOWN, WITHOUT_N8N

SETS = {"people": [{"a": 1}], "one": [{"b": 2}]}


def test_a_header_with_two_modes_and_two_sets_is_four_cases():
    cases = corpus.parse("# notes\n### x-1 mode=both input=people,one mask=t\nreturn [];\n", SETS)
    assert [(c.id, c.mode, c.input, c.mask) for c in cases] == [
        ("x-1.all.people", ALL, "people", ("t",)), ("x-1.all.one", ALL, "one", ("t",)),
        ("x-1.each.people", EACH, "people", ("t",)), ("x-1.each.one", EACH, "one", ("t",))]


def test_a_single_case_keeps_its_id_and_code():
    (case,) = corpus.parse("### y\nconst a = 1;\n\nreturn [a];\n\n", SETS)
    assert (case.id, case.code, case.mode, case.input, case.source) == (
        "y", "const a = 1;\n\nreturn [a];\n", ALL, "people", "ours")


@pytest.mark.parametrize("text,message", [
    ("### a input=nope\nreturn [];", "unknown input set 'nope'"),
    ("### a colour=red\nreturn [];", "unknown option 'colour=red'"),
    ("### a mode=some\nreturn [];", "unknown mode"),
    ("### A\nreturn [];", "bad snippet id"),
    ("### a\nreturn [];\n### a\nreturn [];", "duplicate snippet ids: ['a']"),
])
def test_a_malformed_corpus_is_refused_with_the_reason(text, message):
    with pytest.raises(CorpusError, match=message.replace("[", r"\[").replace("]", r"\]")):
        corpus.parse(text, SETS)


def test_the_corpus_has_300_distinct_snippets_and_known_lists_only_its_cases():
    cases = corpus.load()
    assert len({c.code for c in cases}) >= 300
    assert sorted((set(KNOWN) | set(WITHOUT_N8N)) - {c.id for c in cases}) == []


def test_the_recordings_are_of_todays_corpus():
    # golden.json and taskdata.json hold each case's digest: a case changed since is stale
    assert sorted(sides.read_golden()) == sorted(c.id for c in corpus.load())
    assert sides.stale() == []


def test_a_changed_case_is_stale():
    case = corpus.load()[0]
    changed = Case(case.id, case.code + "// changed\n", case.mode, case.input)
    assert sides.stale([changed]) == [case.id]


CASE = Case("c", "return [];", ALL, "people", mask=("ts",))


def test_continue_on_fail_items_are_an_error_with_the_first_message():
    raw = {"ran": True, "node_error": None, "items": [
        {"json": {"ok": 1}, "pairedItem": {"item": 0}},
        {"json": {"error": "boom [line 2]"}, "pairedItem": {"item": 1}}]}
    assert compare.outcome(raw, CASE) == {"status": "error", "items": raw["items"],
                                          "error": "boom [line 2]"}


def test_a_node_error_n8n_caught_is_an_error_with_its_message():
    raw = {"ran": True, "items": [{"json": {"in": 1}}],
           "node_error": {"message": "Code doesn't return items properly", "description": "x"}}
    assert compare.outcome(raw, CASE) == {"status": "error", "items": [{"json": {"in": 1}}],
                                          "error": "Code doesn't return items properly"}


def test_masked_keys_are_compared_by_type_at_any_depth():
    raw = {"ran": True, "node_error": None, "items": [{"json": {"ts": 17, "o": {"ts": "x"}, "k": 1}}]}
    assert compare.outcome(raw, CASE)["items"] == [{"json": {"ts": "<int>", "o": {"ts": "<str>"}, "k": 1}}]


def test_a_node_n8n_never_ran_is_not_run():
    assert compare.outcome({"ran": False, "items": [], "node_error": None}, CASE) == {
        "status": "not-run", "items": [], "error": None}


def test_the_report_counts_agreement_and_categories():
    cases = [Case(i, "", ALL, "people") for i in ("same", "known", "new")]
    ok = {"status": "ok", "items": [{"json": {}}], "error": None}
    err = {"status": "error", "items": [], "error": "e"}
    theirs = {"same": ok, "known": ok, "new": ok}
    ours = {"same": ok, "known": err, "new": {**ok, "items": []}}
    report = compare.report(cases, theirs, ours, {"known": ("luxon", "why")})
    assert (report.agreed, report.categories, report.n8n_ok, report.ours_ok_of_n8n_ok,
            report.agreed_of_n8n_ok) == (["same"], {"known": "luxon", "new": "unlisted"}, 3, 2, 1)
    assert report.differing["known"] == "status: n8n ok (None), ours error ('e')"


# -- the verdict of one case ------------------------------------------------------------------

OK = {"status": "ok", "items": [{"json": {"a": 1}}], "error": None}
OTHER = {"status": "ok", "items": [{"json": {"a": 2}}], "error": None}


def test_an_unlisted_case_passes_when_it_agrees_and_fails_saying_how_it_differs():
    assert compare.verdict("c", OK, OK, {}) is None
    assert compare.verdict("c", OK, OTHER, {}) == (
        "c differs from n8n's own runner: items: n8n [{'json': {'a': 1}}], ours [{'json': {'a': 2}}]")


def test_a_listed_case_passes_while_it_differs_and_fails_once_fixed():
    known = {"c": ("luxon", "DateTime is missing")}
    assert compare.verdict("c", OK, OTHER, known) is None
    assert compare.verdict("c", OK, OK, known) == (
        "c now agrees with n8n's own runner: take it off tests/n8n/differential/known.py "
        "(was luxon: DateTime is missing)")


# -- n8n's part after the runner (n8n_side) ---------------------------------------------------

PEOPLE = [{"json": {"n": i}, "pairedItem": {"item": i}} for i in range(3)]


def _record(code: str, result, mode: str = ALL, inputs=PEOPLE):
    return n8n_side.record(Case("c", code, mode, "people"), inputs, {"result": result}, None)


def test_plain_objects_are_wrapped_and_paired_by_index_when_as_many_as_the_input():
    assert _record("", [{"a": 1}, {"a": 2}, {"a": 3}])["items"] == [
        {"json": {"a": 1}, "pairedItem": {"item": 0}}, {"json": {"a": 2}, "pairedItem": {"item": 1}},
        {"json": {"a": 3}, "pairedItem": {"item": 2}}]


def test_one_object_of_three_inputs_is_paired_with_item_0_and_two_with_none():
    assert _record("", {"a": 1})["items"] == [{"json": {"a": 1}, "pairedItem": {"item": 0}}]
    assert _record("", [{"a": 1}, {"a": 2}])["items"] == [{"json": {"a": 1}}, {"json": {"a": 2}}]


@pytest.mark.parametrize("result,message", [
    ("text", "Code doesn't return items properly"),
    ([{"json": {}}, {"b": 2}], "Unknown top-level item key: b [item 1]"),
    ([{"json": {}, "extra": 1}], "Invalid output format [item 0]"),
    ([{"json": "x"}], "A 'json' property isn't an object [item 0]"),
])
def test_results_n8n_refuses_fail_the_node_and_pass_the_input_on(result, message):
    out = _record("", result)
    assert (out["items"], out["node_error"]["message"]) == (PEOPLE, message)


def test_each_item_mode_refuses_input_first_before_any_runner_with_its_line():
    out = n8n_side.record(Case("c", "// $input.first()\nconst a = $input.first();", EACH, "people"),
                          PEOPLE, None, None)
    assert out["node_error"]["message"] == "Can't use .first() here [line 2, for item 0]"


def test_an_item_with_an_error_key_shows_the_errors_message_as_its_json():
    assert _record("", [{"json": {"a": 1}, "error": {"message": "x"}}], inputs=PEOPLE[:1])["items"] == [
        {"json": {"error": "x"}, "error": {"message": "x"}, "pairedItem": {"item": 0}}]


def test_strip_keeps_what_a_runner_asked_for():
    response = {
        "inputData": {"main": [PEOPLE]},
        "connectionInputSource": {"main": [{"previousNode": "people"}]},
        "envProviderState": {"env": {"A": "1"}, "isEnvAccessBlocked": False, "isProcessAvailable": True},
        "runExecutionData": {"resultData": {"runData": {"people": [1], "Config": [2], "Webhook": [3]}}}}
    out = n8n_side.strip(response, {"dataOfNodes": ["Config"], "prevNode": True, "env": False,
                                    "input": {"include": True, "chunk": {"startIndex": 1, "count": 1}}})
    run_data = out["runExecutionData"]["resultData"]["runData"]
    assert (out["inputData"], out["envProviderState"]["env"], run_data) == (
        {"main": [PEOPLE[1:2]]}, {}, {"people": [1], "Config": [2]})


def test_every_case_has_recorded_task_data_unless_n8n_refuses_it_before_a_runner():
    doc = sides.read_task_data()
    missing = [c.id for c in corpus.load() if taskdata.response(doc, c) is None]
    assert missing == ["each-items-first", "str-trim-clean.each.one"]


def test_the_error_without_continue_on_fail_is_compared_where_recorded():
    theirs = {**OK, "stopped": {"message": "x [line 1]", "description": "RangeError"}}
    ours = {**OK, "stopped": {"message": "x [line 1]", "description": "InternalError"}}
    assert compare.verdict("c", theirs, ours, {}) == (
        "c differs from n8n's own runner: error without continue-on-fail: "
        "n8n {'message': 'x [line 1]', 'description': 'RangeError'}, "
        "ours {'message': 'x [line 1]', 'description': 'InternalError'}")


def test_without_continue_on_fail_a_failed_node_passes_nothing_on():
    out = n8n_side.record(Case("c", "", ALL, "people"), PEOPLE, None,
                          {"message": "boom [line 1]", "description": "TypeError"}, continue_on_fail=False)
    assert out == {"ran": True, "items": [],
                   "node_error": {"message": "boom [line 1]", "description": "TypeError"}}
