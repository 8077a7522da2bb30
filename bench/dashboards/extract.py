#!/usr/bin/env python3
"""Extracts the PromQL of Grafana dashboards (JSON files given as
arguments) into the text format check.py reads: one block per query,
`## <id> | <dashboard> | <panel title>` then the expression. Variable
queries `label_values(SELECTOR, label)` become their SELECTOR (the
series a dashboard's drop-down needs).

    python3 extract.py NAME=path/to/dashboard.json ... > queries.txt
"""
import json
import re
import sys


def panels(ps):
    for p in ps:
        yield p
        yield from panels(p.get("panels", []))


def main():
    for arg in sys.argv[1:]:
        name, _, path = arg.partition("=")
        d = json.load(open(path))
        n = 0
        for v in d.get("templating", {}).get("list", []):
            q = v.get("query")
            if isinstance(q, dict):
                q = q.get("query")
            m = re.match(r"label_values\((.*),\s*\w+\)$", (q or "").strip(), re.S)
            if m and "{" in m.group(1):
                n += 1
                print(f"## {name}#v{n} | {name} | variable ${v['name']}")
                print(m.group(1).strip())
                print()
        n = 0
        for p in panels(d.get("panels", [])):
            for t in p.get("targets", []):
                expr = t.get("expr")
                if not expr:
                    continue
                n += 1
                print(f"## {name}#{n} | {name} | {p.get('title', '')}")
                # Blank lines inside an expression are dropped (the
                # file's blocks are separated by them).
                print("\n".join(l.rstrip() for l in expr.strip().splitlines() if l.strip()))
                print()


if __name__ == "__main__":
    main()
