"""The two sides of the comparison, each a real n8n 2.41.1 running the whole corpus.

- ``theirs``: n8n in internal runner mode: n8n launches its own JavaScript runner
  (``@n8n/task-runner``) as a child, as a user who never configured runners gets it.
- ``ours``: n8n in external mode served by ``sandbox n8n-runner`` (``RunnerProcess``).

Both n8n instances get the same environment but the runner mode, so what a snippet can read
of n8n (its time zone, its settings) is the same on both sides. The golden file is the
``theirs`` side recorded, so that ours can be compared without starting n8n's runner.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.n8n.differential import compare
from tests.n8n.differential.corpus import HERE, Case, load
from tests.n8n.differential.run import run_corpus
from tests.n8n.peer import N8n, RunnerProcess

GOLDEN = HERE / "golden.json"

#: What both n8n instances and our runner are configured with, as an operator would: a time
#: zone other than the machine's (UTC), so that zone handling shows, and the one built-in
#: module real snippets require most (n8n's launcher passes both variables to its runners).
SHARED_ENV = {"GENERIC_TIMEZONE": "Europe/Berlin", "NODE_FUNCTION_ALLOW_BUILTIN": "crypto"}

#: Our runner's flags: enough concurrency and time that no snippet of the corpus meets a limit
#: n8n's runner would not (n8n's own task timeout is 60 s by default; ours the same here).
RUNNER_FLAGS = ("--max-concurrency", "4", "--task-timeout", "60", "--memory", "256")


def outcomes(raw: dict[str, dict[str, Any]], cases: Sequence[Case]) -> dict[str, dict[str, Any]]:
    return {c.id: compare.outcome(raw[c.id], c) for c in cases}


def run_theirs(cases: Sequence[Case] | None = None) -> dict[str, dict[str, Any]]:
    """Normalised outcomes from n8n's own JavaScript runner (internal mode)."""
    cases = cases or load()
    with N8n.start(task_timeout_s=60, extra_env={**SHARED_ENV, "N8N_RUNNERS_MODE": "internal"}) as n8n:
        return outcomes(run_corpus(n8n, cases), cases)


def run_ours_on(n8n: N8n, cases: Sequence[Case] | None = None,
                flags: Sequence[str] = RUNNER_FLAGS) -> dict[str, dict[str, Any]]:
    """Normalised outcomes from ``sandbox n8n-runner`` serving an external-mode ``n8n``
    (which no other runner may serve meanwhile)."""
    cases = cases or load()
    runner = RunnerProcess(n8n, *flags, env=SHARED_ENV).wait_registered()
    try:
        return outcomes(run_corpus(n8n, cases), cases)
    finally:
        runner.stop()


def run_ours(cases: Sequence[Case] | None = None) -> dict[str, dict[str, Any]]:
    with N8n.start(task_timeout_s=60, extra_env=SHARED_ENV) as n8n:
        return run_ours_on(n8n, cases)


def write_golden(theirs: dict[str, dict[str, Any]], path: Path = GOLDEN) -> None:
    path.write_text(json.dumps(theirs, indent=1, sort_keys=True) + "\n",
                    encoding="utf-8")


def read_golden(path: Path = GOLDEN) -> dict[str, dict[str, Any]]:
    return json.loads(path.read_text(encoding="utf-8"))
