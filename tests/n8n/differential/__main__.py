"""``python -m tests.n8n.differential``: run the corpus through n8n's own JavaScript runner
and through ours, and print the agreement report (rate, each difference and its category).

    python -m tests.n8n.differential                   # both runners, live (two n8n starts)
    python -m tests.n8n.differential --golden          # ours, live, against golden.json
    python -m tests.n8n.differential --in-jails        # our Code node layer in jails, no n8n
    python -m tests.n8n.differential --write-golden    # re-record golden.json (n8n's runner)
    python -m tests.n8n.differential --record-task-data  # re-record taskdata.json (for --in-jails)
    python -m tests.n8n.differential --in-jails -k err-catch --show  # some cases, in full
"""

from __future__ import annotations

import argparse
import json
import sys

from tests.n8n.differential import compare, sides
from tests.n8n.differential.corpus import load
from tests.n8n.differential.known import KNOWN, WITHOUT_N8N


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.n8n.differential", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--golden", action="store_true",
                       help="compare ours with the recorded golden file instead of running n8n's runner")
    group.add_argument("--in-jails", action="store_true",
                       help="ours without n8n: the recorded task data through our Code node layer "
                            "in real jails, against the golden file")
    group.add_argument("--write-golden", action="store_true",
                       help="run n8n's own runner and record its outcomes as the golden file")
    group.add_argument("--record-task-data", action="store_true",
                       help="record the task data n8n sends for each case (taskdata.json)")
    ap.add_argument("--brief", action="store_true", help="the figures only, not each difference")
    ap.add_argument("-k", metavar="TEXT", help="only the cases whose id contains TEXT")
    ap.add_argument("--show", action="store_true",
                    help="print each differing case in full: its code and both outcomes")
    ap.add_argument("--save", metavar="PATH", help="also write both sides' outcomes to PATH (JSON)")
    args = ap.parse_args(argv)
    if args.k and (args.write_golden or args.record_task_data):
        ap.error("a recording is of the whole corpus: -k does not go with --write-golden or "
                 "--record-task-data")
    cases = load()
    if args.k:
        cases = tuple(c for c in cases if args.k in c.id)
    if args.write_golden:
        sides.write_golden(sides.run_theirs(cases))
        print(f"wrote {sides.GOLDEN} ({len(cases)} cases)")
        return 0
    if args.record_task_data:
        messages = sides.record_task_data(cases)
        sides.write_task_data(messages)
        print(f"wrote {sides.TASK_DATA} ({len(messages)} data responses for {len(cases)} cases)")
        return 0
    if args.in_jails:
        from sandbox import PoolConfig
        from tests.n8n.jobs import Jobs

        theirs = sides.read_golden()
        with Jobs(PoolConfig(size=2), runtimes=("javascript",)) as sb:
            ours = sides.run_ours_in_jails(sb, cases, stop=sides.failing(theirs))
    else:
        theirs = sides.read_golden() if args.golden else sides.run_theirs(cases)
        ours = sides.run_ours(cases, sides.failing(theirs))
    if args.save:
        with open(args.save, "w", encoding="utf-8") as f:
            json.dump({"theirs": theirs, "ours": ours}, f, indent=1)
    report = compare.report(cases, theirs, ours, KNOWN | WITHOUT_N8N if args.in_jails else KNOWN)
    print(report.text(verbose=not args.brief))
    if args.show:
        for case in cases:
            if case.id in report.differing:
                print(f"\n### {case.id} ({case.short_mode}, input {case.input}) "
                      f"[{report.categories[case.id]}]\n{case.code}"
                      f"n8n:  {json.dumps(theirs[case.id], ensure_ascii=False)}\n"
                      f"ours: {json.dumps(ours[case.id], ensure_ascii=False)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
