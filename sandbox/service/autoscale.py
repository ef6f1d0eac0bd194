"""Scale runners on the broker's metrics, where no cluster does it (KEDA does in one:
``sandbox/deploy/k8s/keda.yaml`` holds the same rule).

    python -m sandbox.service.autoscale --metrics http://127.0.0.1:9464/metrics \\
        --slots 4 --min 1 --max 8 -- sandbox runner --connect ipc:///run/sbx/s.runners.sock

The rule (``desired``, pure) is KEDA's and the Horizontal Pod Autoscaler's: as many runners as
the tasks that need a slot (queued for a runtime some runner serves, plus running) fill at
``slots`` each, rounded up, between ``min`` and ``max``. A scale-up starts runners at once; a
scale-down waits until the lower count has held for ``cooldown_s``, then sends SIGTERM to the
newest runners, which drain (they finish what they run and leave). Every ``interval_s`` the
loop reads ``/metrics`` once.
"""

from __future__ import annotations

import argparse
import math
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Rule:
    slots: int  # per runner
    least: int  # runners at the least
    most: int  # runners at the most


def desired(rule: Rule, queued: float, in_flight: float) -> int:
    """How many runners the demand asks for."""
    need = math.ceil(max(queued + in_flight, 0.0) / rule.slots)
    return max(rule.least, min(rule.most, need))


def demand(metrics_text: str) -> tuple[float, float]:
    """(queued for a served runtime, in flight) from the broker's /metrics text."""
    queued = in_flight = 0.0
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == "sandbox_queued_tasks" and sample.labels.get("runtime") != "unserved":
                queued += sample.value
            elif sample.name == "sandbox_in_flight":
                in_flight += sample.value
    return queued, in_flight


class Scaler:
    """The loop: runners as child processes started from ``command``."""

    def __init__(self, rule: Rule, metrics_url: str, command: Sequence[str], *,
                 interval_s: float = 1.0, cooldown_s: float = 10.0) -> None:
        self.rule, self.url, self.command = rule, metrics_url, list(command)
        self.interval_s, self.cooldown_s = interval_s, cooldown_s
        self.runners: list[subprocess.Popen[bytes]] = []
        self._lower_since: float | None = None

    def step(self, now: float) -> int:
        """Read the metrics once and start or stop runners; the count wanted."""
        with urllib.request.urlopen(self.url, timeout=5) as response:
            want = desired(self.rule, *demand(response.read().decode()))
        self.runners = [r for r in self.runners if r.poll() is None]
        have = len(self.runners)
        if want > have:
            self._lower_since = None
            for _ in range(want - have):
                self.runners.append(subprocess.Popen(self.command, stdin=subprocess.DEVNULL))
        elif want < have:
            self._lower_since = self._lower_since if self._lower_since is not None else now
            if now - self._lower_since >= self.cooldown_s:
                for runner in self.runners[want:]:
                    runner.send_signal(signal.SIGTERM)  # it drains, then leaves
                self.runners = self.runners[:want]
                self._lower_since = None
        else:
            self._lower_since = None
        return want

    def stop(self, grace_s: float = 60.0) -> None:
        for runner in self.runners:
            if runner.poll() is None:
                runner.send_signal(signal.SIGTERM)
        for runner in self.runners:
            try:
                runner.wait(grace_s)
            except subprocess.TimeoutExpired:
                runner.kill()
                runner.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.service.autoscale",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--metrics", required=True, help="the broker's /metrics URL")
    parser.add_argument("--slots", type=int, default=4, help="slots per runner (default 4)")
    parser.add_argument("--min", type=int, default=1, dest="least")
    parser.add_argument("--max", type=int, default=8, dest="most")
    parser.add_argument("--interval-s", type=float, default=1.0)
    parser.add_argument("--cooldown-s", type=float, default=10.0)
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="-- and the command that starts one runner")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command or args.slots < 1 or not 0 <= args.least <= args.most:
        parser.error("need a runner command after --, --slots >= 1 and 0 <= --min <= --max")
    scaler = Scaler(Rule(args.slots, args.least, args.most), args.metrics, command,
                    interval_s=args.interval_s, cooldown_s=args.cooldown_s)
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(signum))
    signal.signal(signal.SIGINT, lambda signum, frame: stopping.append(signum))
    try:
        while not stopping:
            try:
                scaler.step(time.monotonic())
            except OSError as exc:
                print(f"autoscale: cannot read {args.metrics}: {exc}", file=sys.stderr)
            time.sleep(args.interval_s)
    finally:
        scaler.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
