"""The autoscaling rule (``sandbox.service.autoscale``) and the metrics it reads."""

from __future__ import annotations

import pytest

from sandbox.service.autoscale import Rule, demand, desired

RULE = Rule(slots=4, least=1, most=5)


@pytest.mark.parametrize("queued, in_flight, runners", [
    (0, 0, 1),  # never below the least
    (0, 4, 1),  # four slots busy: one runner's worth
    (1, 4, 2),  # one more waits: a second runner
    (3, 5, 2),
    (9, 8, 5),  # 17 slots' worth: at most five
])
def test_desired_runners_are_the_needed_slots_over_a_runners_slots(queued, in_flight, runners):
    assert desired(RULE, queued, in_flight) == runners


def test_demand_counts_the_queued_tasks_some_runner_could_run_and_those_in_flight():
    text = "\n".join([
        "# TYPE sandbox_queued_tasks gauge",
        'sandbox_queued_tasks{group="",lane="default",runtime="python"} 3.0',
        'sandbox_queued_tasks{group="gpu",lane="batch",runtime="python"} 2.0',
        'sandbox_queued_tasks{group="",lane="default",runtime="unserved"} 7.0',
        "# TYPE sandbox_in_flight gauge",
        "sandbox_in_flight 4.0",
    ])
    assert demand(text) == (5.0, 4.0)
