"""Shared fixtures: a clean environment for every test (helpers live in tests/helpers.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in list(os.environ):
        if key.startswith(("NOMAD_", "NOTIFY_SOCKET", "WATCHDOG_")):
            monkeypatch.delenv(key, raising=False)
    yield


@pytest.fixture(autouse=True)
def _no_unexpected_500s() -> Iterator[None]:
    """Any request an agent answered with an unexpected 500 during this test fails the test
    (agents of module-scoped fixtures too: only the lines logged during the test count)."""
    from tests import helpers

    seen = {id(agent): len(agent.lines) for agent in helpers.STARTED}
    yield
    bad = []
    for agent in list(helpers.STARTED):
        bad += helpers.unexpected_errors("\n".join(agent.lines[seen.get(id(agent), 0) :]))
        if agent.proc.poll() is not None:
            helpers.STARTED.remove(agent)
    if bad:
        pytest.fail("agent answered with an unexpected 500:\n" + "\n".join(bad[:10]), pytrace=False)
