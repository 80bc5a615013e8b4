"""A forceful stop waits for the agent's components, bounded (``SHUTDOWN_TIMEOUT_S``: a follower
may wait for a Raft dump nearly written); a second signal ends that wait at once."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from nomadd.agent import command


class _SlowAgent:
    def __init__(self) -> None:
        self.stopped = False

    async def shutdown(self) -> None:
        await asyncio.sleep(60)
        self.stopped = True


def test_a_second_signal_ends_a_slow_shutdown_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(command, "SHUTDOWN_TIMEOUT_S", 30.0)

    async def main() -> float:
        signals: asyncio.Queue[signal.Signals] = asyncio.Queue()
        asyncio.get_running_loop().call_later(0.2, signals.put_nowait, signal.SIGINT)
        t0 = time.monotonic()
        await command._bounded_shutdown(_SlowAgent(), signals)  # type: ignore[arg-type]
        return time.monotonic() - t0

    assert asyncio.run(main()) < 5.0


def test_without_a_second_signal_the_shutdown_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(command, "SHUTDOWN_TIMEOUT_S", 0.3)

    async def main() -> float:
        t0 = time.monotonic()
        await command._bounded_shutdown(_SlowAgent(), asyncio.Queue())  # type: ignore[arg-type]
        return time.monotonic() - t0

    assert 0.3 <= asyncio.run(main()) < 5.0
