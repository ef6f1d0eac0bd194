"""The differential test without n8n: our Code node layer, in real jails, against what n8n's
own JavaScript runner answered (tests/n8n/differential/golden.json).

Each case's task data as n8n sent it (taskdata.json, recorded with everything a task may ask
for) goes through ``javascript_node`` as our runner runs it; n8n's steps after the runner are
done in Python (n8n_side.py), and ``test_n8n_differential.py`` checks that these give what n8n
itself recorded of our runner. Same known differences as the live test, asserted alike.
"""

from __future__ import annotations

from typing import Any

import pytest

from sandbox import PoolConfig
from tests.n8n.jobs import Jobs
from tests.n8n.differential import compare, sides
from tests.n8n.differential.corpus import Case, load
from tests.n8n.differential.known import KNOWN, WITHOUT_N8N

pytestmark = pytest.mark.jail

CASES = load()


@pytest.fixture(scope="module")
def outcomes() -> tuple[dict[str, Any], dict[str, Any]]:
    with Jobs(PoolConfig(size=2), runtimes=("javascript",)) as sb:
        return sides.read_golden(), sides.run_ours_in_jails(sb, CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_snippet_answers_as_n8ns_own_runner_did(outcomes, case: Case):
    theirs, ours = outcomes
    failure = compare.verdict(case.id, theirs[case.id], ours[case.id], KNOWN | WITHOUT_N8N)
    assert failure is None, failure
