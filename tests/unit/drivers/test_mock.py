from __future__ import annotations

import asyncio
import time

import pytest

from nomadd.drivers.base import ExitResult, TaskHandle
from nomadd.drivers.mock import MockDriver, parse_duration
from nomadd.structs.errors import DriverError

from .conftest import DEADLINE_S, MakeTask, read_log


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(1, 1.0), (0.5, 0.5), ("1.5s", 1.5), ("200ms", 0.2), ("1m30s", 90.0), ("-1", -1.0), ("2", 2.0)],
)
def test_parse_duration(value: object, seconds: float) -> None:
    assert parse_duration(value, "k") == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["abc", "1x", True, None, [1]])
def test_parse_duration_rejects(value: object) -> None:
    with pytest.raises(DriverError, match="k"):
        parse_duration(value, "k")


def test_runs_for_and_exits_with_code(make_task: MakeTask) -> None:
    cfg = make_task(config={"run_for": "50ms", "exit_code": 3, "stdout_string": "hello\n"})

    async def main() -> tuple[ExitResult, float]:
        d = MockDriver()
        start = time.monotonic()
        h = await d.start_task(cfg)
        res = await asyncio.wait_for(d.wait_task(h), DEADLINE_S)
        return res, time.monotonic() - start

    res, elapsed = asyncio.run(main())
    assert res == ExitResult(exit_code=3)
    assert elapsed >= 0.04
    assert read_log(cfg) == "hello\n"


def test_start_error(make_task: MakeTask) -> None:
    d = MockDriver()
    with pytest.raises(DriverError, match="boom"):
        asyncio.run(d.start_task(make_task(config={"start_error": "boom"})))


def test_stop_and_kill_after_escalation(make_task: MakeTask) -> None:
    async def main() -> tuple[ExitResult, ExitResult, list[int]]:
        d = MockDriver()
        polite = await d.start_task(make_task(task="a", config={"run_for": -1}))
        stubborn = await d.start_task(make_task(task="b", config={"run_for": -1, "kill_after": 10}))
        await d.signal_task(polite, "SIGHUP")
        await d.stop_task(polite, 1.0, "SIGTERM")
        await d.stop_task(stubborn, 0.01, "SIGINT")
        return await d.wait_task(polite), await d.wait_task(stubborn), d.received_signals(polite)

    polite, stubborn, signals = asyncio.run(main())
    assert polite.signal == 15
    assert stubborn.signal == 9
    assert signals == [1, 15]


def test_recover_with_a_new_driver_keeps_deadline(make_task: MakeTask) -> None:
    cfg = make_task(config={"run_for": 0.2, "exit_code": 7})
    handle = asyncio.run(MockDriver().start_task(cfg))
    stored = handle.to_dict()

    async def later() -> ExitResult:
        d = MockDriver()  # the agent "restarted": a new driver and a new loop
        h = TaskHandle.from_dict(stored)
        assert await d.recover_task(h)
        return await asyncio.wait_for(d.wait_task(h), DEADLINE_S)

    assert asyncio.run(later()) == ExitResult(exit_code=7)


def test_unknown_handle_and_disabled() -> None:
    d = MockDriver()
    h = TaskHandle(driver="mock", alloc_id="x", task_name="y", pid=0, start_time=0, started_at=0)
    with pytest.raises(DriverError):
        asyncio.run(d.wait_task(h))
    assert d.fingerprint().detected
