"""Drafts rows of the known-differences table from results.

`describe(result)` writes the "what differs" cell: the differing field
groups in backticks (what the suite checks), then a short account of the
differences, Envoy's value first. `table(results)` drafts the whole table,
keeping the "why" of rows already listed; new rows get `bug: TODO`.
`python tests/differential/run.py --rows` prints it; with `--write` it
replaces the table in docs/envoy-differences.md (the text above the table
stays), to review before committing.
"""

import compare
import known

# Fields that only follow from a differing status or body: left out of the
# prose (they still count in the groups).
CONSEQUENCES = {"headers.content-length", "headers.content-type", "headers.x-origin",
                "headers.x-envoy-upstream-service-time", "headers.connection", "responses"}


def short(v, limit=70):
    s = compare.show(v, limit)
    return s.replace("|", "\\|").replace("\n", "\\n")


def code(v, limit=70):
    return "`" + short(v, limit).replace("`", "'") + "`"


def stat_short(f):
    """A stat field's name without `stats.` and the HCM or `cluster.` prefix."""
    if f.startswith("stats.http."):
        return f.split(".", 3)[-1]
    if f.startswith("stats.cluster."):
        return f[len("stats.cluster."):]
    return f[len("stats."):]


def describe(r):
    """The "what differs" cell for result `r`."""
    groups = " ".join(f"`{g}`" for g in sorted(r.groups))
    d = {f: (e, n) for f, e, n in r.diffs}
    parts = []
    main = [f for f in d if not f.startswith(("origin", "stats.", "stats-names.", "s2.", "r2."))]
    status_or_body = any(f in d for f in ("status", "body", "error"))
    for f in sorted(main):
        e, n = d[f]
        if status_or_body and f in CONSEQUENCES:
            continue
        if f == "closed":
            parts.append("nuncio closes the connection" if n is True else "Envoy closes the connection, nuncio keeps it")
        elif f.startswith("headers.") and e == "<absent>":
            parts.append(f"nuncio adds `{f[8:]}: {short(n, 40)}`")
        elif f.startswith("headers.") and n == "<absent>":
            parts.append(f"nuncio sends no `{f[8:]}`" + ("" if f == "headers.date" else f" (Envoy `{short(e, 40)}`)"))
        else:
            parts.append(f"{f}: Envoy {code(e)}, nuncio {code(n)}")
    for p in ("r2.", "s2."):
        sub = [f for f in d if f.startswith(p)]
        if sub:
            parts.append(f"{'second response' if p == 'r2.' else 'second stream'}: " + ", ".join(
                f"{f[3:]} Envoy {code(d[f][0], 30)} nuncio {code(d[f][1], 30)}" for f in sorted(sub)))
    origin = [f for f in d if f.startswith("origin")]
    if "origin.count" in d:
        e, n = d["origin.count"]
        parts.append(f"the origin got {e} request(s) from Envoy, {n} from nuncio")
    elif origin:
        parts.append("origin saw " + ", ".join(
            f"{f.split('.', 1)[1]} Envoy {code(d[f][0], 40)} nuncio {code(d[f][1], 40)}" for f in sorted(origin)))
    names = sorted(f[len("stats-names."):] for f in d if f.startswith("stats-names.") and d[f][1] == "absent")
    if names:
        parts.append("nuncio lacks " + ", ".join(f"`{n}`" for n in names))
    stats = [f for f in d if f.startswith("stats.")]
    if stats:
        parts.append("stats Envoy/nuncio: " + ", ".join(f"{stat_short(f)} {d[f][0]}/{d[f][1]}" for f in sorted(stats)))
    return f"{groups}: " + "; ".join(parts)


def table(results):
    """The whole table as markdown lines: every differing case, in battery order."""
    lines = ["| case | what differs | why |", "|---|---|---|"]
    for r in results:
        if not r.diffs:
            continue
        why = r.known.why if r.known else "bug: TODO"
        lines.append(f"| `{r.name}` | {describe(r)} | {why} |")
    return lines


def write(results, path=known.DOC):
    """Replaces the known-differences table (under known.HEADING) with
    `table(results)`; returns how many rows still say `bug: TODO`."""
    lines = path.read_text().split("\n")
    start = lines.index(known.HEADING)
    first = next(i for i in range(start, len(lines)) if lines[i].startswith("| case |"))
    end = first
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    new = table(results)
    path.write_text("\n".join(lines[:first] + new + lines[end:]))
    return sum(1 for line in new if "| bug: TODO |" in line)
