"""Differential test: every Code node of the corpus (tests/n8n/differential) through one real
n8n 2.41.1 twice, once with n8n's own JavaScript runner (internal mode) and once with ours
(external mode, ``sandbox n8n-runner``), same pinned input items.

Per snippet, the outcome (status, output items, error text) must be the same on both sides,
unless the snippet is a known difference (``known.py``: its category and reason), which is
then asserted to still differ: a fixed difference fails here until it is taken off the list.
The agreement report (rate, count per category) is printed at the end of the session; the
same report comes from ``python -m tests.n8n.differential``.
"""

from __future__ import annotations

from typing import Any

import pytest

from sandbox import PoolConfig
from tests.n8n.jobs import Jobs
from tests.n8n import differential
from tests.n8n.differential import compare, sides
from tests.n8n.differential.corpus import Case, load
from tests.n8n.differential.known import KNOWN, WITHOUT_N8N
from benchmarks.n8n_peer.install import ensure_installed

pytestmark = pytest.mark.jail

CASES = load()

Outcomes = dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def outcomes() -> tuple[Outcomes, Outcomes]:
    """Both sides' outcomes, by case id: two n8n starts and the whole corpus on each."""
    try:
        ensure_installed()
    except (RuntimeError, OSError) as exc:
        pytest.skip(f"n8n cannot be installed on this host: {exc}")
    theirs = sides.run_theirs(CASES)
    ours = sides.run_ours(CASES, sides.failing(theirs))
    report = compare.report(CASES, theirs, ours, KNOWN)
    differential.SUMMARY.append(report.text(verbose=False))
    return theirs, ours


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_snippet_runs_as_on_n8ns_own_runner(outcomes: tuple[Outcomes, Outcomes], case: Case):
    theirs, ours = outcomes
    failure = compare.verdict(case.id, theirs[case.id], ours[case.id], KNOWN)
    assert failure is None, failure


def test_golden_file_is_what_n8ns_own_runner_answers_today(outcomes: tuple[Outcomes, Outcomes]):
    # The fast comparison reads n8n's side from the golden file: it must be what n8n's runner
    # answers (re-record with `python -m tests.n8n.differential --write-golden`).
    theirs, _ = outcomes
    golden = sides.read_golden()
    assert sorted(cid for cid in theirs if golden.get(cid) != theirs[cid]) == []


def test_our_layer_without_n8n_answers_as_through_n8n(outcomes: tuple[Outcomes, Outcomes]):
    # The golden test (test_n8n_differential_golden.py) runs our Code node layer on recorded
    # task data and does n8n's part after the runner in Python (n8n_side.py): it must give
    # what this n8n recorded of our runner, case by case.
    theirs, ours = outcomes
    with Jobs(PoolConfig(size=2), runtimes=("javascript",)) as sb:
        in_jails = sides.run_ours_in_jails(sb, CASES, stop=sides.failing(theirs))
    # (but where n8n answers the task's calls while it runs: WITHOUT_N8N)
    assert sorted(cid for cid in ours if in_jails[cid] != ours[cid] and cid not in WITHOUT_N8N) == []
