"""Runners on other hosts: network namespaces with their own addresses (``netbed``), links
cut, packets dropped, traffic delayed, the broker killed and restarted, runners added and
removed under load. Every test asserts one answer per task and that no task that is not
idempotent reached a runner twice; recovery times are asserted with generous bounds only
(the figures are printed, prefixed ``BED``: run with ``-s`` to read them).
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netbed import Bed, free_port, leftovers, why_not
from sandbox import Status
from sandbox.client import Client

pytestmark = pytest.mark.skipif(why_not() is not None, reason=why_not() or "")

SLEEP = "import time\ntime.sleep({s})\nreturn data"


class Net:
    """A bed with a broker: its ports, its client endpoint and its runners by name."""

    def __init__(self, bed: Bed) -> None:
        self.bed = bed
        self.runner_port = free_port(bed.hub)
        self.http_port = free_port("127.0.0.1")
        self.broker = bed.start_broker(self.runner_port, self.http_port)
        self.endpoint = f"ipc://{bed.tmp}/clients.sock"
        self.runners: dict[str, subprocess.Popen[bytes]] = {}

    def runner(self, n: int, slots: int = 2, port: int | None = None) -> subprocess.Popen[bytes]:
        name = f"r{n}"
        proc = self.bed.start_runner(self.bed.namespaces[n - 1],
                                     f"tcp://{self.bed.hub}:{port or self.runner_port}", name,
                                     slots)
        self.runners[name] = proc
        return proc

    def received_by(self, name: str) -> int:
        text = (self.bed.tmp / f"runner-{name}.log").read_text("utf-8", "replace")
        return text.count(" received")


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Net]:
    bed = Bed(tmp_path, hosts=3)
    try:
        yield Net(bed)
    finally:
        tag = bed.tag
        bed.close()
        assert leftovers(tag) == []  # every namespace, link and rule is gone


def report(name: str, **figures: float) -> None:
    print(f"BED {name}: " + ", ".join(f"{k}={v:.3f}" for k, v in figures.items()))


def once_each(net: Net, handles, idempotent=lambda i: False) -> None:
    """No task that is not idempotent reached a runner twice."""
    received = net.bed.received()
    for i, h in enumerate(handles):
        assert received[h.id] <= 1 or idempotent(i), (h.id, received[h.id])


def wait_until(cond, timeout_s: float, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if cond():
            return time.monotonic() - start
        time.sleep(0.02)
    raise AssertionError(f"{what} within {timeout_s} s")


def test_a_runner_sent_sigterm_under_load_loses_nothing(net: Net):
    net.runner(1), net.runner(2)
    net.bed.wait_runners(net.http_port, 2, 60)
    with Client(net.endpoint) as client:
        handles = [client.submit("python", SLEEP.format(s=0.4), data=i, timeout_s=30)
                   for i in range(40)]
        wait_until(lambda: net.received_by("r1") >= 2, 30, "r1 took no task")
        leaving = net.runners["r1"]
        sent = time.monotonic()
        leaving.send_signal(signal.SIGTERM)
        assert leaving.wait(timeout=30) == 0  # within its 20 s grace, and some
        left_s = time.monotonic() - sent
        results = [h.result(timeout=120) for h in handles]
    assert [(r.status, r.value) for r in results] == [(Status.OK, i) for i in range(40)]
    once_each(net, handles)
    report("sigterm", lost=0, runner_left_s=left_s)


@pytest.mark.parametrize("cut_s", [2.0, 4.0])
def test_a_short_link_cut_loses_and_crashes_nothing(net: Net, cut_s: float):
    """[26.2] A 2 s partition, shorter than the 3 s liveness, crashed the runner's plain tasks
    (TCP's retransmit backoff keeps both ends silent past it); one past the liveness but
    within the hold crashed them on every run. The broker holds them now, and the runner
    comes back with them."""
    net.runner(1), net.runner(2)
    net.bed.wait_runners(net.http_port, 2, 60)
    ns = net.bed.namespaces[0]
    with Client(net.endpoint) as client:
        handles = [client.submit("python", SLEEP.format(s=1.5), data=i, timeout_s=60)
                   for i in range(24)]
        wait_until(lambda: net.received_by("r1") >= 2, 30, "r1 took no task")
        net.bed.cut(ns)
        time.sleep(cut_s)  # the partition itself: its length is what this test is about
        net.bed.mend(ns)
        mended = time.monotonic()
        results = [h.result(timeout=120) for h in handles]
        answered_s = time.monotonic() - mended
    assert [(r.status, r.value) for r in results] == [(Status.OK, i) for i in range(24)]
    once_each(net, handles)
    report(f"cut-{cut_s:g}s", lost=0, crashed=0, all_answered_after_mend_s=answered_s,
           reattached=Bed.metric(net.http_port, "sandbox_runner_events_total",
                                 'event="reattached"'),
           lost_declared=Bed.metric(net.http_port, "sandbox_runner_events_total",
                                    'event="lost"'),
           unreachable=Bed.metric(net.http_port, "sandbox_connection_events_total",
                                  'event="runner_unreachable"'),
           resent=Bed.metric(net.http_port, "sandbox_runner_events_total",
                             'event="task_resent"'))


def test_a_30s_link_cut_the_runner_is_back_soon_after_the_link(net: Net):
    net.runner(1), net.runner(2)
    net.bed.wait_runners(net.http_port, 2, 60)
    ns = net.bed.namespaces[0]
    with Client(net.endpoint) as client:
        handles = [client.submit("python", SLEEP.format(s=1.0), data=i, timeout_s=60,
                                 idempotent=i % 2 == 0, max_attempts=3) for i in range(8)]
        wait_until(lambda: net.received_by("r1") >= 1, 30, "r1 took no task")
        net.bed.cut(ns)
        net.bed.wait_runners(net.http_port, 1, 15)  # the broker lost it
        time.sleep(30 - 3)  # the rest of a 30 s partition
        net.bed.mend(ns)
        back_s = net.bed.wait_runners(net.http_port, 2, 60)
        results = [h.result(timeout=120) for h in handles]
    for i, r in enumerate(results):
        if i % 2 == 0:
            assert (r.status, r.value) == (Status.OK, i)  # retried elsewhere
        else:  # ran on r1 past the hold: one answer, runner lost; else ran on r2
            assert (r.status, r.value) == (Status.OK, i) or (
                r.status is Status.CRASHED and "runner lost" in r.message), r
    once_each(net, handles, idempotent=lambda i: i % 2 == 0)
    assert back_s < 10
    report("cut-30s", runner_back_after_link_s=back_s)


def test_a_broker_killed_and_restarted_gets_its_runners_back_soon(net: Net):
    net.runner(1), net.runner(2)
    net.bed.wait_runners(net.http_port, 2, 60)
    net.broker.send_signal(signal.SIGKILL)
    net.broker.wait(timeout=10)
    started = time.monotonic()
    net.broker = net.bed.start_broker(net.runner_port, net.http_port)
    serving_s = wait_until(lambda: Bed.health(net.http_port) is not None, 30,
                           "the restarted broker never served /healthz")
    back_s = net.bed.wait_runners(net.http_port, 2, 30) + serving_s
    with Client(net.endpoint) as client:
        result = client.run("python", "return 7", timeout_s=10)
    assert (result.status, result.value) == (Status.OK, 7)
    assert back_s < 15
    report("broker-restart", back_after_start_s=back_s, broker_up_s=serving_s,
           back_after_broker_up_s=back_s - serving_s)
    assert time.monotonic() - started < 60


def test_runners_added_and_removed_under_load(net: Net):
    net.runner(1)
    net.bed.wait_runners(net.http_port, 1, 60)
    with Client(net.endpoint) as client:
        handles = [client.submit("python", SLEEP.format(s=0.3), data=i, timeout_s=60)
                   for i in range(60)]
        added = time.monotonic()
        net.runner(2)
        net.runner(3)
        wait_until(lambda: net.received_by("r2") >= 1, 60, "an added runner took no task")
        took_s = time.monotonic() - added
        net.runners["r1"].send_signal(signal.SIGTERM)
        results = [h.result(timeout=180) for h in handles]
        assert net.runners["r1"].wait(timeout=30) == 0
    assert [(r.status, r.value) for r in results] == [(Status.OK, i) for i in range(60)]
    once_each(net, handles)
    report("add-remove", added_runner_took_work_after_start_s=took_s)


def test_lossy_and_far_links_lose_nothing_and_near_runners_go_first(net: Net):
    """[26.7] A far runner took its share of short tasks, each slower by the round trip."""
    far_port = net.bed.delay(net.runner_port, 0.05)  # 100 ms round trip
    net.runner(1)
    net.runner(2, slots=4, port=far_port)  # more free slots: it would win without nearness
    net.bed.lose(net.bed.namespaces[2], 0.1)
    net.runner(3)  # 10% of its packets dropped each way
    net.bed.wait_runners(net.http_port, 3, 90)
    time.sleep(3)  # a few heartbeats: the broker has measured the round trips
    with Client(net.endpoint) as client:
        one_by_one = [client.run("python", "return data", data=i, timeout_s=10)
                      for i in range(30)]
        far_before = net.received_by("r2")
        handles = [client.submit("python", SLEEP.format(s=0.5), data=i, timeout_s=60)
                   for i in range(30)]
        results = [h.result(timeout=120) for h in handles]
    assert [(r.status, r.value) for r in one_by_one] == [(Status.OK, i) for i in range(30)]
    assert [(r.status, r.value) for r in results] == [(Status.OK, i) for i in range(30)]
    assert far_before <= 3  # one at a time, a near runner always had a free slot
    assert net.received_by("r2") > far_before  # a backlog reaches the far runner too
    once_each(net, handles)
    report("near-far", far_share_one_by_one=far_before / 30,
           far_share_backlog=(net.received_by("r2") - far_before) / 30)


def test_a_runner_killed_under_load_and_another_started(net: Net):
    """A runner that dies does not come back: its plain tasks end once the hold is over, its
    idempotent ones run elsewhere, and a runner started in its place takes work."""
    net.runner(1), net.runner(2)
    net.bed.wait_runners(net.http_port, 2, 60)
    with Client(net.endpoint) as client:
        handles = [client.submit("python", SLEEP.format(s=1.0), data=i, timeout_s=60,
                                 idempotent=i % 2 == 0, max_attempts=3) for i in range(16)]
        def holder() -> str | None:  # the runner that runs task 1 (not idempotent)
            for name in ("r1", "r2"):
                log = (net.bed.tmp / f"runner-{name}.log").read_text("utf-8", "replace")
                if f":{handles[1].id} received" in log:
                    return name
            return None

        wait_until(lambda: holder() is not None, 30, "task 1 never reached a runner")
        victim = holder()
        assert victim is not None
        net.runners[victim].send_signal(signal.SIGKILL)
        net.runner(3)
        results = [h.result(timeout=120) for h in handles]
    for i, r in enumerate(results):
        if i % 2 == 0:
            assert (r.status, r.value) == (Status.OK, i)
        else:
            assert (r.status, r.value) == (Status.OK, i) or (
                r.status is Status.CRASHED and "runner lost" in r.message), r
    once_each(net, handles, idempotent=lambda i: i % 2 == 0)
    assert results[1].status is Status.CRASHED  # its runner died: one answer, runner lost
    crashed = sum(r.status is Status.CRASHED for r in results)
    report("runner-kill", plain_tasks_crashed=crashed)
