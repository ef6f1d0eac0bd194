"""The differential corpus's pure parts: its format, the outcome of a node as n8n recorded it,
and the comparison (tests/n8n/differential)."""

from __future__ import annotations

import pytest

from tests.n8n.differential import compare, corpus, sides
from tests.n8n.differential.corpus import ALL, EACH, Case, CorpusError
from tests.n8n.differential.known import KNOWN

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
    assert sorted(set(KNOWN) - {c.id for c in cases}) == []


def test_the_golden_file_answers_every_case():
    assert sorted(sides.read_golden()) == sorted(c.id for c in corpus.load())


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
