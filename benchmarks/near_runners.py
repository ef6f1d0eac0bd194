"""Near runners first: one task at a time with a near and a far runner, preference on and off.

    sudo .venv/bin/python -m benchmarks.near_runners [--rounds 3] [--tasks 40] [--delay-ms 50]

Builds the multi-host test bed (``tests/integration/netbed.py``: root, ``ip``, ``nsenter``,
``iptables``): a near runner in a namespace of its own and a far one, with twice its slots,
whose connection goes through a proxy that delays each direction by ``--delay-ms``. The
same two runners serve a broker started alternately with the preference on
(``--near-tolerance-ms 10``, the default) and off (a tolerance above any round trip: every
runner an equal, as before), and a client runs ``return 1`` one task at a time. Prints the
median round trip of a task per setting, per round and over all rounds, and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))

from netbed import Bed, free_port, why_not  # noqa: E402

from sandbox.client import Client  # noqa: E402

SETTINGS = {"on": "10", "off": "3600000"}


def _round(bed: Bed, runner_port: int, http_port: int, tolerance_ms: str,
           tasks: int) -> list[float]:
    broker = bed.start_broker(runner_port, http_port, "--near-tolerance-ms", tolerance_ms)
    try:
        bed.wait_runners(http_port, 2, 60)
        time.sleep(3)  # heartbeats: the broker measures both round trips
        times: list[float] = []
        with Client(f"ipc://{bed.tmp}/clients.sock") as client:
            for _ in range(tasks):
                start = time.perf_counter()
                result = client.run("python", "return 1", timeout_s=10)
                times.append(time.perf_counter() - start)
                assert result.value == 1, result
        return times
    finally:
        broker.kill()
        broker.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--delay-ms", type=float, default=50.0)
    args = parser.parse_args(argv)
    why = why_not()
    if why is not None:
        print(f"near_runners: {why}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        bed = Bed(Path(tmp), hosts=2)
        try:
            runner_port, http_port = free_port(bed.hub), free_port("127.0.0.1")
            far_port = bed.delay(runner_port, args.delay_ms / 1000)
            # the far runner has more slots: "most free slots first" alone would pick it
            bed.start_runner(bed.namespaces[0], f"tcp://{bed.hub}:{runner_port}", "near", 2)
            bed.start_runner(bed.namespaces[1], f"tcp://{bed.hub}:{far_port}", "far", 4)
            every: dict[str, list[float]] = {"on": [], "off": []}
            for n in range(args.rounds):
                for name in (("on", "off") if n % 2 == 0 else ("off", "on")):  # alternate
                    times = _round(bed, runner_port, http_port, SETTINGS[name], args.tasks)
                    every[name] += times
                    print(f"round {n + 1} preference {name}: median "
                          f"{statistics.median(times) * 1000:.2f} ms over {len(times)} tasks")
            on, off = (statistics.median(every[k]) for k in ("on", "off"))
            print(f"median task round trip, near runners first: {on * 1000:.2f} ms; every "
                  f"runner an equal: {off * 1000:.2f} ms; ratio off/on {off / on:.1f}x "
                  f"(far runner {2 * args.delay_ms:g} ms away)")
        finally:
            bed.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
