"""PeriodicLeaderTask: ticks only while enabled, survives a failing tick, stops on shutdown."""

from __future__ import annotations

import asyncio
import logging

import pytest

from nomadd.server.periodic import PeriodicLeaderTask
from nomadd.structs.errors import NomaddError


class Chore(PeriodicLeaderTask):
    name = "chore"

    def __init__(self, fail: list[BaseException]) -> None:
        super().__init__()
        self.ticks = 0
        self._fail = fail

    def interval_s(self) -> float:
        return 0.01

    async def tick(self) -> object:
        self.ticks += 1
        if self._fail:
            raise self._fail.pop(0)
        return None


def test_ticks_while_enabled_and_keeps_going_after_errors(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        chore = Chore([NomaddError("raft down"), RuntimeError("bug")])
        chore.set_enabled(True)
        for _ in range(200):
            if chore.ticks >= 4:
                break
            await asyncio.sleep(0.01)
        assert chore.ticks >= 4  # neither failure stopped it
        chore.set_enabled(False)
        stopped_at = chore.ticks
        await asyncio.sleep(0.05)
        assert chore.ticks == stopped_at  # no tick once leadership is gone
        await chore.shutdown()

    with caplog.at_level(logging.WARNING):
        asyncio.run(main())
    assert "chore failed err=raft down" in caplog.text
    assert any(r.exc_info for r in caplog.records if "chore failed" in r.getMessage())  # the bug's traceback


def test_unwanted_chore_never_starts() -> None:
    class Off(Chore):
        def wanted(self) -> bool:
            return False

    async def main() -> None:
        chore = Off([])
        chore.set_enabled(True)
        await asyncio.sleep(0.05)
        assert chore.ticks == 0
        await chore.shutdown()

    asyncio.run(main())
