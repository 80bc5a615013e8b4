"""Task lifecycle order in a whole alloc runner on the mock driver: prestart (to completion and
sidecar), main, poststart, poststop; a failed prestart task; poststop after an allocation stop."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from nomadd.client.alloc_runner import AllocRunner
from nomadd.client.state import ClientState
from nomadd.drivers.base import DriverConfig, TaskConfig, TaskHandle
from nomadd.drivers.mock import MockDriver
from nomadd.structs.alloc import Allocation, AllocClientStatus, AllocDesiredStatus, TaskStatus
from nomadd.structs.errors import ValidationError
from nomadd.structs.job import Job, JobType, Task, TaskGroup
from nomadd.structs.lifecycle import TaskLifecycle
from nomadd.structs.policy import RestartPolicy
from nomadd.structs.requests.node import AllocClientUpdate
from tests.unit.client.test_alloc_runner import _make

NS = 1_000_000_000


class RecordingDriver(MockDriver):
    """The mock driver, noting when each task starts and when it is stopped."""

    def __init__(self) -> None:
        super().__init__(DriverConfig())
        self.log: list[tuple[str, str, float]] = []

    async def start_task(self, cfg: TaskConfig) -> TaskHandle:
        self.log.append(("start", cfg.task_name, time.monotonic()))
        return await super().start_task(cfg)

    async def stop_task(self, handle: TaskHandle, timeout_s: float, sig: str = "SIGINT") -> None:
        self.log.append(("stop", handle.task_name, time.monotonic()))
        await super().stop_task(handle, timeout_s, sig)

    def first(self, kind: str, task: str) -> float:
        return next(t for k, name, t in self.log if k == kind and name == task)

    def did(self, kind: str, task: str) -> bool:
        return any(k == kind and name == task for k, name, _ in self.log)


def _task(name: str, run_for: float, hook: str = "", sidecar: bool = False, **config: Any) -> Task:
    lifecycle = TaskLifecycle(hook=hook, sidecar=sidecar) if hook else None
    return Task(name=name, driver="mock", config={"run_for": run_for, **config}, lifecycle=lifecycle)


def _alloc(job_type: JobType, *tasks: Task) -> Allocation:
    policy = RestartPolicy(attempts=0, interval=60 * NS, delay=0)
    group = TaskGroup(name="g", restart_policy=policy, tasks=tasks)
    job = Job(id="j", name="j", type=job_type, task_groups=(group,))
    return Allocation(
        id="0a0b0c0d-aaaa-bbbb-cccc-000000000002", name="j.g[0]", job=job, job_id="j", task_group="g"
    )


def _runner(tmp_path: Path, alloc: Allocation, driver: MockDriver) -> tuple[AllocRunner, ClientState]:
    state = ClientState(str(tmp_path / "state"))
    reports: list[AllocClientUpdate] = []
    return _make(tmp_path, alloc, state, driver, reports), state


@pytest.mark.slow
def test_prestart_main_poststart_poststop_in_order(tmp_path: Path) -> None:
    driver = RecordingDriver()
    alloc = _alloc(
        JobType.BATCH,
        _task("init", 0.2, "prestart"),
        _task("proxy", -1, "prestart", sidecar=True),
        _task("main", 0.3),
        _task("announce", 0.05, "poststart"),
        _task("cleanup", 0.05, "poststop"),
    )
    runner, state = _runner(tmp_path, alloc, driver)
    asyncio.run(asyncio.wait_for(runner.run(), 10))
    states = runner.task_states
    init_end = states["init"].finished_at
    assert driver.first("start", "main") >= driver.first("start", "init") + 0.2  # init ran to completion
    assert init_end and states["init"].state == TaskStatus.DEAD and not states["init"].failed
    assert driver.first("start", "proxy") < driver.first("start", "main")
    assert driver.first("start", "announce") >= driver.first("start", "main")
    main_end = driver.first("start", "main") + 0.3
    assert driver.first("stop", "proxy") >= main_end  # the sidecar is stopped once main is dead
    assert driver.first("start", "cleanup") >= main_end
    assert not driver.did("stop", "cleanup") and states["cleanup"].state == TaskStatus.DEAD
    assert all(s.state == TaskStatus.DEAD for s in states.values())
    assert runner.status == AllocClientStatus.COMPLETE
    state.close()


@pytest.mark.slow
def test_failed_prestart_task_fails_the_allocation_and_main_never_starts(tmp_path: Path) -> None:
    driver = RecordingDriver()
    alloc = _alloc(
        JobType.SERVICE,
        _task("init", 0.05, "prestart", exit_code=3),
        _task("main", -1),
        _task("cleanup", 0.01, "poststop"),
    )
    runner, state = _runner(tmp_path, alloc, driver)
    asyncio.run(asyncio.wait_for(runner.run(), 10))
    assert not driver.did("start", "main")
    assert runner.task_states["init"].failed
    assert runner.task_states["main"].state == TaskStatus.DEAD
    assert driver.did("start", "cleanup")  # poststop runs all the same
    assert runner.status == AllocClientStatus.FAILED
    state.close()


@pytest.mark.slow
def test_stopped_allocation_runs_its_poststop_task_after_the_others(tmp_path: Path) -> None:
    driver = RecordingDriver()
    alloc = _alloc(
        JobType.SERVICE,
        _task("main", -1),
        _task("side", -1, "poststart", sidecar=True),
        _task("bye", 0.1, "poststop"),
    )
    runner, state = _runner(tmp_path, alloc, driver)

    async def main() -> None:
        task = asyncio.create_task(runner.run())
        for _ in range(500):  # the runners are made as the allocation starts: wait for "side"
            if "side" in runner.runners and runner.runners["side"].started.is_set():
                break
            await asyncio.sleep(0.01)
        assert runner.status == AllocClientStatus.RUNNING  # "bye" pending does not hold it back
        assert runner.update(replace(alloc, desired_status=AllocDesiredStatus.STOP, alloc_modify_index=9))
        await runner.kill()
        assert not driver.did("start", "bye")
        await asyncio.wait_for(task, 5)

    asyncio.run(main())
    assert driver.first("start", "bye") >= max(driver.first("stop", "main"), driver.first("stop", "side"))
    assert runner.task_states["bye"].state == TaskStatus.DEAD and not runner.task_states["bye"].failed
    assert runner.status == AllocClientStatus.COMPLETE
    state.close()


def test_lifecycle_validation_and_hcl() -> None:
    from nomadd.helper.jobspec import parse_hcl
    from nomadd.structs.codec import from_api

    api = parse_hcl(
        """
        job "j" {
          datacenters = ["dc1"]
          group "g" {
            task "init" {
              driver = "mock"
              lifecycle {
                hook = "prestart"
                sidecar = false
              }
            }
            task "main" {
              driver = "mock"
            }
          }
        }
        """
    )
    assert api["TaskGroups"][0]["Tasks"][0]["Lifecycle"] == {"Hook": "prestart", "Sidecar": False}
    job = from_api(Job, api, path="Job").canonicalize()
    assert job.task_groups[0].tasks[0].lifecycle == TaskLifecycle(hook="prestart")
    job.validate()
    bad = replace(
        job.task_groups[0],
        tasks=(
            replace(job.task_groups[0].tasks[0], lifecycle=TaskLifecycle(hook="prestop")),
            replace(job.task_groups[0].tasks[1], lifecycle=TaskLifecycle(hook="poststop", sidecar=True)),
        ),
    )
    with pytest.raises(ValidationError) as err:
        replace(job, task_groups=(bad,)).validate()
    text = str(err.value)
    assert "Tasks[0].Lifecycle.Hook: invalid value 'prestop'" in text
    assert "Tasks[1].Lifecycle.Sidecar: a poststop task cannot be a sidecar" in text
    assert "must have at least one main task" in text
