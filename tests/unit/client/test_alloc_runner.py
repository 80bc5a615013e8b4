"""Allocation status from task states (Nomad's getClientStatus) and a whole alloc runner on the
mock driver: env, dirs, status reports, stop."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from nomadd.client.alloc_runner import AllocRunner, client_status
from nomadd.client.state import ClientState
from nomadd.drivers.base import DriverConfig
from nomadd.drivers.mock import MockDriver
from nomadd.structs.alloc import Allocation, AllocClientStatus, AllocDesiredStatus, TaskState, TaskStatus
from nomadd.structs.job import Job, JobType, Task, TaskGroup
from nomadd.structs.policy import RestartPolicy
from nomadd.structs.requests.node import AllocClientUpdate
from nomadd.structs.volumes import VolumeMount, VolumeRequest

NS = 1_000_000_000


def test_client_status() -> None:
    run, pend = TaskState(state=TaskStatus.RUNNING), TaskState(state=TaskStatus.PENDING)
    dead, failed = TaskState(state=TaskStatus.DEAD), TaskState(state=TaskStatus.DEAD, failed=True)
    assert client_status({})[0] == AllocClientStatus.PENDING
    assert client_status({"a": run, "b": pend})[0] == AllocClientStatus.RUNNING
    assert client_status({"a": dead, "b": pend})[0] == AllocClientStatus.PENDING
    assert client_status({"a": dead, "b": dead})[0] == AllocClientStatus.COMPLETE
    assert client_status({"a": run, "b": failed})[0] == AllocClientStatus.FAILED


def _alloc(job_type: JobType, config: dict[str, Any]) -> Allocation:
    policy = RestartPolicy(attempts=0, interval=60 * NS, delay=0)
    job = Job(
        id="j",
        name="j",
        type=job_type,
        task_groups=(
            TaskGroup(
                name="g",
                restart_policy=policy,
                tasks=(Task(name="t", driver="mock", config=config, env={"X": "1"}),),
            ),
        ),
    )
    return Allocation(
        id="0a0b0c0d-aaaa-bbbb-cccc-000000000001", name="j.g[0]", job=job, job_id="j", task_group="g"
    )


def _make(
    tmp_path: Path,
    alloc: Allocation,
    state: ClientState,
    driver: MockDriver,
    reports: list[AllocClientUpdate],
    **restored: Any,
) -> AllocRunner:
    return AllocRunner(
        alloc,
        alloc_root=str(tmp_path / "alloc"),
        drivers={"mock": driver},
        state=state,
        persist=lambda fn, *a: fn(*a),
        report=lambda _id, u: reports.append(u),
        node_id="n1",
        region="global",
        datacenter="dc1",
        max_kill_timeout_s=30.0,
        **restored,
    )


def _runner(
    tmp_path: Path, alloc: Allocation, reports: list[AllocClientUpdate]
) -> tuple[AllocRunner, ClientState]:
    state = ClientState(str(tmp_path / "state"))
    return _make(tmp_path, alloc, state, MockDriver(DriverConfig()), reports), state


@pytest.mark.slow
def test_batch_alloc_completes(tmp_path: Path) -> None:
    reports: list[AllocClientUpdate] = []
    runner, state = _runner(tmp_path, _alloc(JobType.BATCH, {"run_for": 0.01}), reports)
    asyncio.run(asyncio.wait_for(runner.run(), 10))
    assert runner.status == AllocClientStatus.COMPLETE
    assert reports[-1].client_status == "complete"
    assert {r.client_status for r in reports} >= {"running", "complete"}
    cfg = runner.runners["t"].config
    assert cfg.env["NOMAD_ALLOC_ID"] == runner.id
    assert cfg.env["NOMAD_TASK_NAME"] == "t"
    assert cfg.env["NOMAD_JOB_NAME"] == "j"
    assert cfg.env["NOMAD_ALLOC_INDEX"] == "0"
    assert cfg.env["X"] == "1"
    assert Path(cfg.env["NOMAD_TASK_DIR"]).is_dir()
    assert Path(cfg.env["NOMAD_ALLOC_DIR"]).is_dir()
    assert runner.id in state.allocs()
    assert state.task_states(runner.id)["t"]["state"] == "dead"
    state.close()


@pytest.mark.slow
def test_server_stop_kills_tasks(tmp_path: Path) -> None:
    reports: list[AllocClientUpdate] = []
    alloc = _alloc(JobType.SERVICE, {"run_for": -1})
    runner, state = _runner(tmp_path, alloc, reports)

    async def main() -> None:
        task = asyncio.create_task(runner.run())
        while runner.status != AllocClientStatus.RUNNING:
            await asyncio.sleep(0.01)
        assert state.task_handles(runner.id)["t"]["driver"] == "mock"
        assert runner.update(replace(alloc, desired_status=AllocDesiredStatus.STOP, alloc_modify_index=9))
        await runner.kill()
        await asyncio.wait_for(task, 5)

    asyncio.run(main())
    assert runner.status == AllocClientStatus.COMPLETE
    assert reports[-1].client_description == "alloc was stopped"
    asyncio.run(runner.destroy())
    assert not (tmp_path / "alloc" / alloc.id).exists()
    assert state.allocs() == {}
    state.close()


@pytest.mark.slow
def test_stop_while_tasks_are_being_set_up_still_kills_them(tmp_path: Path) -> None:
    """A stop that arrives before run() has made its task runners (slow alloc dir, or a
    restored allocation on a loaded machine) must still kill the task once it exists."""
    reports: list[AllocClientUpdate] = []
    alloc = _alloc(JobType.SERVICE, {"run_for": -1})
    runner, state = _runner(tmp_path, alloc, reports)
    build = runner.alloc_dir.build_task
    setting_up = threading.Event()
    go_on = threading.Event()

    def slow_build(*args: Any) -> Any:
        setting_up.set()
        go_on.wait(5.0)
        return build(*args)

    runner.alloc_dir.build_task = slow_build  # type: ignore[method-assign]

    async def main() -> None:
        task = asyncio.create_task(runner.run())
        assert await asyncio.to_thread(setting_up.wait, 5.0)
        assert not runner.runners  # still setting up
        assert runner.update(replace(alloc, desired_status=AllocDesiredStatus.STOP, alloc_modify_index=9))
        await runner.kill()
        go_on.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(main())
    assert runner.runners["t"].state.state == TaskStatus.DEAD
    assert runner.status == AllocClientStatus.COMPLETE
    assert reports[-1].client_description == "alloc was stopped"
    state.close()


def _restored(
    tmp_path: Path,
    alloc: Allocation,
    state: ClientState,
    driver: MockDriver,
    reports: list[AllocClientUpdate],
) -> AllocRunner:
    """A new alloc runner (the agent restarted) from what ``state`` holds about ``alloc``."""
    data, states, handles = (
        state.allocs()[alloc.id],
        state.task_states(alloc.id),
        state.task_handles(alloc.id),
    )
    stored, st, hd = AllocRunner.restore(data, states, handles)
    return _make(
        tmp_path,
        replace(stored, desired_status=alloc.desired_status),
        state,
        driver,
        reports,
        restored_states=st,
        restored_handles=hd,
        restored_launches=state.task_launches(alloc.id),
    )


@pytest.mark.slow
def test_restored_alloc_reports_at_once_and_a_stopped_one_kills_its_task(tmp_path: Path) -> None:
    reports: list[AllocClientUpdate] = []
    alloc = _alloc(JobType.SERVICE, {"run_for": -1})
    runner, state = _runner(tmp_path, alloc, reports)
    driver = runner._drivers["mock"]
    assert isinstance(driver, MockDriver)

    async def main() -> None:
        task = asyncio.create_task(runner.run())
        while runner.status != AllocClientStatus.RUNNING:
            await asyncio.sleep(0.01)
        task.cancel()  # the agent dies; the task runs on
        launches = state.task_launches(alloc.id)
        assert launches["t"] == runner.runners["t"].launch_id != ""
        handle = runner.runners["t"].handle
        assert handle is not None
        # restarted: the status goes to the servers at once, though nothing changed
        again_reports: list[AllocClientUpdate] = []
        again = _restored(tmp_path, alloc, state, driver, again_reports)
        t2 = asyncio.create_task(again.run())
        for _ in range(100):
            if again_reports:
                break
            await asyncio.sleep(0.01)
        assert again_reports, "a restored allocation reports its status at once"
        assert again_reports[-1].client_status == "running"
        t2.cancel()
        # restarted again, after the servers stopped the allocation: the task is adopted and killed
        stopped = replace(alloc, desired_status=AllocDesiredStatus.STOP, alloc_modify_index=9)
        last_reports: list[AllocClientUpdate] = []
        last = _restored(tmp_path, stopped, state, driver, last_reports)
        await asyncio.wait_for(last.run(), 5)
        assert (await asyncio.wait_for(driver.wait_task(handle), 5)).signal != 0
        assert last_reports[-1].client_status == "complete"
        assert last_reports[-1].client_description == "alloc was stopped"

    asyncio.run(main())
    state.close()


@pytest.mark.slow
def test_a_mount_of_a_host_volume_this_client_lacks_fails_the_task_with_the_cause(tmp_path: Path) -> None:
    reports: list[AllocClientUpdate] = []
    alloc = _alloc(JobType.BATCH, {"run_for": 0.01})
    assert alloc.job is not None
    tg = alloc.job.task_groups[0]
    task = replace(tg.tasks[0], volume_mounts=(VolumeMount(volume="data", destination="/srv"),))
    vols = {"data": VolumeRequest(name="data", type="host", source="gone")}
    job = replace(alloc.job, task_groups=(replace(tg, volumes=vols, tasks=(task,)),))
    runner, state = _runner(tmp_path, replace(alloc, job=job), reports)
    asyncio.run(asyncio.wait_for(runner.run(), 10))
    assert runner.status == AllocClientStatus.FAILED
    (event,) = runner.task_states["t"].events
    assert event.type == "Setup Failure"
    assert "this client has no host volume 'gone'" in event.display_message
    state.close()
