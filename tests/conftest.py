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
    """Any request an agent of this test answered with an unexpected 500 fails the test."""
    from tests import helpers

    helpers.STARTED.clear()
    yield
    bad = [line for agent in helpers.STARTED for line in helpers.unexpected_errors(agent.output)]
    helpers.STARTED.clear()
    if bad:
        pytest.fail("agent answered with an unexpected 500:\n" + "\n".join(bad[:10]), pytrace=False)
