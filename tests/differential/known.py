"""The known-differences list: the table under `## Differential suite:
known differences` at the end of docs/envoy-differences.md.

Each row is `| case | what differs | why |`. The case cell holds the case
name (in backticks); the "what differs" cell starts with the differing
field groups in backticks (`status` `body` ...: then prose); the "why"
cell starts with `bug:`, `choice:` or `env:`.
"""

import re
from dataclasses import dataclass
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "envoy-differences.md"
HEADING = "## Differential suite: known differences"


@dataclass
class Known:
    case: str
    groups: frozenset
    what: str
    why: str
    line: int


def load(path=DOC):
    """{case name: Known}; raises ValueError on a malformed or repeated row."""
    lines = Path(path).read_text().splitlines()
    try:
        start = lines.index(HEADING)
    except ValueError:
        return {}
    out = {}
    for i, line in enumerate(lines[start + 1:], start + 2):
        if line.startswith("## "):
            break
        if not line.startswith("|") or re.match(r"^\|\s*-", line) or re.match(r"^\|\s*case\s*\|", line):
            continue
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])]
        if len(cells) < 3:
            raise ValueError(f"{path}:{i}: a row needs three cells: {line}")
        name = cells[0].strip("`")
        what, why = cells[1], cells[2]
        m = re.match(r"^((?:`[a-z0-9.-]+`[ ,]*)+)", what)
        if not m:
            raise ValueError(f"{path}:{i}: 'what differs' must start with the field groups in backticks: {what}")
        groups = frozenset(re.findall(r"`([a-z0-9.-]+)`", m.group(1)))
        if not re.match(r"^(bug|choice|env):", why):
            raise ValueError(f"{path}:{i}: 'why' must start with bug:, choice: or env: ({why})")
        if name in out:
            raise ValueError(f"{path}:{i}: case {name} is listed twice")
        out[name] = Known(name, groups, what, why, i)
    return out
