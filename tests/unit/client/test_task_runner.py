"""Restart policy decisions (Nomad's RestartTracker) and the task runner on the mock driver."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest

from nomadd.client.task_runner import RestartTracker, TaskRunner
from nomadd.drivers.base import DriverConfig, ExitResult, TaskConfig, TaskHandle
from nomadd.drivers.mock import MockDriver
from nomadd.structs.alloc import TaskState, TaskStatus
from nomadd.structs.job import Task
from nomadd.structs.policy import RestartMode, RestartPolicy

NS = 1_000_000_000
OK = ExitResult(exit_code=0)
FAIL = ExitResult(exit_code=1)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class NoJitter(random.Random):
    def random(self) -> float:
        return 0.0


def tracker(
    attempts: int = 2, interval_s: float = 60, delay_s: float = 5, mode: str = "fail", **kw: Any
) -> Any:
    policy = RestartPolicy(
        attempts=attempts, interval=int(interval_s * NS), delay=int(delay_s * NS), mode=RestartMode(mode)
    )
    clock = Clock()
    return RestartTracker(policy, clock=clock, rng=NoJitter(), **kw), clock


def test_batch_success_terminates_service_success_restarts() -> None:
    t, _ = tracker(restart_on_success=False)
    d = t.on_exit(OK)
    assert (d.restart, d.failed) == (False, False)
    t, _ = tracker(restart_on_success=True)
    d = t.on_exit(OK)
    assert d.restart
    assert d.delay_s == 5.0


def test_attempts_then_fail_mode() -> None:
    t, clock = tracker(attempts=2, restart_on_success=True)
    assert t.on_exit(FAIL).restart
    clock.now += 1
    assert t.on_exit(FAIL).restart
    clock.now += 1
    d = t.on_exit(FAIL)
    assert (d.restart, d.failed) == (False, True)
    assert "fail" in d.reason


def test_delay_mode_waits_for_interval_end_and_interval_resets() -> None:
    t, clock = tracker(attempts=1, interval_s=60, mode="delay", restart_on_success=True)
    assert t.on_exit(FAIL).delay_s == 5.0
    clock.now += 10
    d = t.on_exit(FAIL)
    assert d.restart
    assert d.delay_s == pytest.approx(50.0)  # until the interval that started at t=1000 ends
    clock.now += 61
    d = t.on_exit(FAIL)  # a new interval: the count starts over
    assert (d.restart, d.delay_s) == (True, 5.0)


def test_no_attempts_and_jitter() -> None:
    t, _ = tracker(attempts=0, restart_on_success=True)
    d = t.on_exit(FAIL)
    assert (d.restart, d.failed) == (False, True)
    policy = RestartPolicy(attempts=3, interval=60 * NS, delay=4 * NS)
    rng = random.Random(3)
    delays = [
        RestartTracker(policy, restart_on_success=True, rng=rng).on_exit(FAIL).delay_s for _ in range(50)
    ]
    assert all(4.0 <= d <= 5.0 for d in delays)
    assert len(set(delays)) > 1


def _runner(
    tmp_path: Path, config: dict[str, Any], policy: RestartPolicy, **kw: Any
) -> tuple[TaskRunner, list[TaskState]]:
    states: list[TaskState] = []
    handles: list[TaskHandle | None] = []
    cfg = TaskConfig(
        alloc_id="a1",
        task_name="t",
        config=config,
        task_dir=str(tmp_path),
        alloc_dir=str(tmp_path),
        log_dir=str(tmp_path),
        kill_timeout_s=1.0,
    )
    runner = TaskRunner(
        task=Task(name="t", driver="mock"),
        driver=MockDriver(DriverConfig()),
        config=cfg,
        policy=policy,
        restart_on_success=kw.pop("restart_on_success", True),
        on_state=lambda _n, st: states.append(st),
        on_handle=lambda _n, h: handles.append(h),
        **kw,
    )
    return runner, states


def test_runner_restarts_then_fails(tmp_path: Path) -> None:
    policy = RestartPolicy(attempts=2, interval=60 * NS, delay=int(0.01 * NS), mode=RestartMode.FAIL)
    runner, states = _runner(tmp_path, {"run_for": 0.01, "exit_code": 3}, policy)
    asyncio.run(asyncio.wait_for(runner.run(), 10))
    final = runner.state
    assert final.state == TaskStatus.DEAD
    assert final.failed
    assert final.restarts == 2
    kinds = [e.type for e in final.events]
    assert kinds.count("Started") == 3
    assert kinds[-1] == "Not Restarting"
    assert [e.exit_code for e in final.events if e.type == "Terminated"] == [3, 3, 3]
    assert states[-1] == final


def test_runner_batch_success_and_driver_failure(tmp_path: Path) -> None:
    policy = RestartPolicy(attempts=0, interval=60 * NS, delay=0)
    runner, _ = _runner(tmp_path, {"run_for": 0.01}, policy, restart_on_success=False)
    asyncio.run(asyncio.wait_for(runner.run(), 10))
    assert (runner.state.state, runner.state.failed) == (TaskStatus.DEAD, False)
    runner, _ = _runner(tmp_path, {"start_error": "boom"}, policy)
    asyncio.run(asyncio.wait_for(runner.run(), 10))
    assert runner.state.failed
    assert "Driver Failure" in [e.type for e in runner.state.events]


def test_runner_kill_and_recover(tmp_path: Path) -> None:
    policy = RestartPolicy(attempts=2, interval=60 * NS, delay=0)

    async def main() -> None:
        runner, _ = _runner(tmp_path, {"run_for": -1}, policy)
        task = asyncio.create_task(runner.run())
        while runner.state.state != TaskStatus.RUNNING:
            await asyncio.sleep(0.01)
        handle = runner.handle
        assert handle is not None
        # a second runner (the agent restarted) recovers the same task: no new start
        again, _ = _runner(tmp_path, {"run_for": -1}, policy, state=runner.state, handle=handle)
        again_task = asyncio.create_task(again.run())
        await asyncio.sleep(0.05)
        assert again.state.state == TaskStatus.RUNNING
        assert [e.type for e in again.state.events].count("Started") == 1
        again_task.cancel()
        await runner.kill("test")
        await asyncio.wait_for(task, 5)
        assert runner.state.state == TaskStatus.DEAD
        assert not runner.state.failed
        assert [e.type for e in runner.state.events][-2:] == ["Killing", "Killed"]

    asyncio.run(main())
