"""When an integration test fails, its report ends with the last lines each agent logged
(without the per-request HTTP lines, which polling fills the log with)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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
    cluster.CREATED.clear()
    yield
    cluster.CREATED.clear()
