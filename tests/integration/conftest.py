"""When an integration test fails, its report ends with the last lines each agent logged
(without the per-request HTTP lines, which polling fills the log with)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import unexpected_errors
from tests.integration import cluster

TAIL_LINES = 60


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    for c in cluster.CREATED:
        for agent in c.agents:
            lines = [ln for ln in agent.output.splitlines() if "http: request complete" not in ln]
            tail = lines[-TAIL_LINES:]
            report.sections.append((f"agent {agent.name} (last {len(tail)} lines)", "\n".join(tail)))


@pytest.fixture(autouse=True)
def _forget_clusters() -> Iterator[None]:
    """Also fails the test when one of its agents answered a request with an unexpected 500
    (``request failed unexpectedly ... request_id=`` with a traceback in the agent's log)."""
    cluster.CREATED.clear()
    yield
    bad = [line for c in cluster.CREATED for a in c.agents for line in unexpected_errors(a.output)]
    cluster.CREATED.clear()
    if bad:
        pytest.fail("agent answered with an unexpected 500:\n" + "\n".join(bad[:10]), pytrace=False)
