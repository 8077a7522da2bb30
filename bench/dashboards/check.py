#!/usr/bin/env python3
"""Evaluates every query of a dashboard query file (extract.py's format)
against a Prometheus server for each target job, with the dashboard
variables substituted, and prints which have data.

    python3 check.py PROM_URL QUERIES DIFFERENCES_MD JOB...

A query has data for a job when its result holds at least one sample
that is a number (not NaN). The first job is the reference (Envoy): the
exit status is 1 when a query has data for it but not for another job,
unless the query's id is listed in DIFFERENCES_MD."""
import json
import math
import re
import sys
import urllib.parse
import urllib.request


def load(path):
    queries, cur = [], None
    for line in open(path):
        if line.startswith("## "):
            qid, dash, title = [x.strip() for x in line[3:].split("|", 2)]
            cur = {"id": qid, "dashboard": dash, "title": title, "expr": []}
            queries.append(cur)
        elif line.startswith("#"):
            continue
        elif cur is not None and line.strip():
            cur["expr"].append(line.rstrip("\n"))
    for q in queries:
        q["expr"] = "\n".join(q["expr"])
    return queries


def substitute(expr, job):
    values = {
        "cluster": "check",
        "namespace": "check",
        "job": job,
        "pod": ".*",
        "envoy_cluster_name": "backend",
        "envoy_http_conn_manager_prefix": "ingress_http",
        "__rate_interval": "1m",
        "__interval": "15s",
        "__range": "1h",
    }
    return re.sub(r"\$(\w+)", lambda m: values.get(m.group(1), m.group(0)), expr)


def has_data(prom, expr):
    url = f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise RuntimeError(f"query failed: {body}")
    result = body["data"]["result"]
    if body["data"]["resultType"] == "scalar":
        result = [{"value": result}]
    for s in result:
        try:
            v = float(s["value"][1])
        except (KeyError, ValueError, TypeError):
            continue
        if not math.isnan(v):
            return True
    return False


def main():
    prom, qfile, diffs, jobs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    excused = open(diffs).read()
    queries = load(qfile)
    totals = {j: 0 for j in jobs}
    missing = []
    w = max(len(q["id"]) for q in queries)
    print(f"{'query':<{w}}  " + "  ".join(f"{j:>7}" for j in jobs) + "  panel")
    for q in queries:
        got = {j: has_data(prom, substitute(q["expr"], j)) for j in jobs}
        for j in jobs:
            totals[j] += got[j]
        ref = jobs[0]
        gap = [j for j in jobs[1:] if got[ref] and not got[j]]
        note = ""
        if gap:
            if f"`{q['id']}`" in excused:
                note = "  (listed in docs/envoy-differences.md)"
            else:
                note = "  <-- MISSING"
                missing.append(q["id"])
        print(f"{q['id']:<{w}}  " + "  ".join(f"{'yes' if got[j] else 'no':>7}" for j in jobs)
              + f"  {q['title']}{note}")
    print()
    print(f"queries with data: " + ", ".join(f"{j} {totals[j]}" for j in jobs)
          + f" (of {len(queries)})")
    if missing:
        print(f"data for {jobs[0]} but not for the others, not listed in {diffs}: {' '.join(missing)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
