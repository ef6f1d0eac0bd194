"""A mock of n8n 2.41's task broker, to drive n8n's own JavaScript runner and ours side by side.

    with MockBroker() as broker:              # HTTP + WebSocket on a loopback port
        # start a runner with N8N_RUNNERS_TASK_BROKER_URI=broker.uri and either
        # N8N_RUNNERS_AUTH_TOKEN=broker.auth_token or N8N_RUNNERS_GRANT_TOKEN=broker.grant()
        broker.wait_for_offers("javascript")
        outcome = broker.run(TaskSpec("return [{json: {x: 6 * 7}}]"))
        outcome.result, outcome.duration_s     # [{'json': {'x': 42}}], seconds

``core`` decides (pure), ``server`` does the I/O, ``data`` is what a task's data request
is answered with, ``runners`` starts the two runners as harness systems. The real n8n stays
in ``benchmarks/n8n.py``: this is for measuring runners without n8n's own cost per task.
"""

from benchmarks.n8n_mock.core import Outcome, TaskSpec
from benchmarks.n8n_mock.server import Handle, MockBroker, MockBrokerError

__all__ = ["Handle", "MockBroker", "MockBrokerError", "Outcome", "TaskSpec"]
