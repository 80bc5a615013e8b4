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
