"""``python -m benchmarks``: the service beside its baselines, in one run.

Writes ``results.json``, ``results.md``, ``latency.png`` and ``throughput.png`` into ``--out``
and prints the Markdown. ``--quick`` finishes in under a minute (CI runs it to keep the
harness working; it checks the output is well formed, never a speed).
"""

from __future__ import annotations

import argparse
import shlex
import sys

from benchmarks import harness, report


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run (under a minute)")
    parser.add_argument("--rounds", type=int, help="latency rounds (default 200; quick 15)")
    parser.add_argument("--cold-every", type=int, default=5,
                        help="run the process-per-snippet baselines every Nth round")
    parser.add_argument("--pause-ms", type=float, default=5.0, help="pause after each call")
    parser.add_argument("--levels", default=None, help="concurrency levels, e.g. 1,2,4,8,16,32")
    parser.add_argument("--sweep-s", type=float, help="seconds per throughput level (default 3)")
    parser.add_argument("--slots", type=int, default=8, help="pool size / runner slots")
    parser.add_argument("--no-daemon", action="store_true", help="skip `sandbox serve`")
    parser.add_argument("--no-n8n", action="store_true",
                        help="skip n8n's JS runner and ours through the mock n8n broker")
    parser.add_argument("--out", default="bench-results", help="directory for the report")
    return parser.parse_args(argv)


def settings_of(args: argparse.Namespace) -> harness.Settings:
    quick = args.quick
    levels: tuple[int, ...] = (1, 4) if quick else (1, 2, 4, 8, 16, 32)
    if args.levels:
        levels = tuple(int(x) for x in args.levels.split(","))
    return harness.Settings(
        rounds=args.rounds or (15 if quick else 200),
        cold_every=args.cold_every,
        pause_ms=args.pause_ms,
        levels=levels,
        sweep_s=args.sweep_s or (0.5 if quick else 3.0),
        cost_calls=10 if quick else 100,
        daemon=not args.no_daemon,
        n8n=not args.no_n8n,
        slots=args.slots,
        quick=quick,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    settings = settings_of(args)
    run = harness.run(settings)
    command = "python -m benchmarks " + shlex.join(sys.argv[1:] if argv is None else argv)
    doc = report.build(run, command.strip())
    paths = report.write(doc, run.latency, args.out)
    print(report.markdown(doc))
    print("wrote " + ", ".join(paths), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
