"""Each case of the battery, judged against the known-differences table:
a difference that is not listed fails, a listed case that no longer
differs (or differs in other field groups) fails too."""

import pytest

import known
from cases import BY_NAME, CASES


@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_case(name, differential):
    r = differential[name]
    if not r.ok:
        pytest.fail(r.report(), pytrace=False)


def test_known_table_names_real_cases():
    """Every row of the table names a case of the battery (a renamed or
    removed case leaves no stale row behind)."""
    table = known.load()
    missing = sorted(set(table) - set(BY_NAME))
    assert not missing, f"rows for cases that do not exist: {missing}"
