"""``python -m tests.n8n.differential``: run the corpus through n8n's own JavaScript runner
and through ours, and print the agreement report (rate, each difference and its category).

    python -m tests.n8n.differential                 # both runners, live (two n8n starts)
    python -m tests.n8n.differential --golden        # ours against golden.json (one n8n start)
    python -m tests.n8n.differential --write-golden  # re-record golden.json from n8n's runner
"""

from __future__ import annotations

import argparse
import json
import sys

from tests.n8n.differential import compare, sides
from tests.n8n.differential.corpus import load
from tests.n8n.differential.known import KNOWN


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.n8n.differential", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--golden", action="store_true",
                       help="compare ours with the recorded golden file instead of running n8n's runner")
    group.add_argument("--write-golden", action="store_true",
                       help="run n8n's own runner and record its outcomes as the golden file")
    ap.add_argument("--brief", action="store_true", help="the figures only, not each difference")
    ap.add_argument("--save", metavar="PATH", help="also write both sides' outcomes to PATH (JSON)")
    args = ap.parse_args(argv)
    cases = load()
    if args.write_golden:
        sides.write_golden(sides.run_theirs(cases))
        print(f"wrote {sides.GOLDEN} ({len(cases)} cases)")
        return 0
    theirs = sides.read_golden() if args.golden else sides.run_theirs(cases)
    ours = sides.run_ours(cases)
    if args.save:
        with open(args.save, "w", encoding="utf-8") as f:
            json.dump({"theirs": theirs, "ours": ours}, f, indent=1)
    report = compare.report(cases, theirs, ours, KNOWN)
    print(report.text(verbose=not args.brief))
    return 0


if __name__ == "__main__":
    sys.exit(main())
