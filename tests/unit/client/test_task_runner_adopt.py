"""The task runner around an agent crash: the launch is recorded before the start, a restored
runner adopts instead of starting, reports its state at once, and a kill during a start or an
adoption stops what they produced."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

from nomadd.client.task_runner import TaskRunner
from nomadd.drivers.base import DriverConfig, TaskConfig, TaskHandle
from nomadd.drivers.mock import MockDriver
from nomadd.structs.alloc import TaskState, TaskStatus
from nomadd.structs.errors import DriverError
from nomadd.structs.job import Task
from nomadd.structs.policy import RestartPolicy

NS = 1_000_000_000
POLICY = RestartPolicy(attempts=0, interval=60 * NS, delay=0)


class Recording(MockDriver):
    """The mock driver, recording calls; ``adopt_gate`` holds adoptions until it is set."""

    def __init__(self, journal: list[str]) -> None:
        super().__init__(DriverConfig())
        self.journal = journal
        self.adopt_gate = asyncio.Event()
        self.adopt_gate.set()
        self.adopt_answer: TaskHandle | None = None
        self.adopt_args: tuple[str, TaskHandle | None] | None = None

    async def start_task(self, cfg: TaskConfig) -> TaskHandle:
        self.journal.append(f"start {cfg.launch_id}")
        return await super().start_task(cfg)

    async def adopt_task(self, cfg: TaskConfig, handle: TaskHandle | None) -> TaskHandle | None:
        self.adopt_args = (cfg.launch_id, handle)
        self.journal.append("adopt")
        await self.adopt_gate.wait()
        if self.adopt_answer is not None:
            await self.recover_task(self.adopt_answer)
        return self.adopt_answer


def runner(
    tmp_path: Path, driver: Recording, journal: list[str], **kw: Any
) -> tuple[TaskRunner, list[TaskState]]:
    states: list[TaskState] = []

    async def on_launch(_task: str, launch_id: str) -> None:
        await asyncio.sleep(0.01)  # a write on the state thread
        journal.append(f"recorded {launch_id}")

    cfg = TaskConfig(
        alloc_id="a1",
        task_name="t",
        config={"run_for": -1},
        task_dir=str(tmp_path),
        alloc_dir=str(tmp_path),
        log_dir=str(tmp_path),
        kill_timeout_s=1.0,
    )
    r = TaskRunner(
        task=Task(name="t", driver="mock"),
        driver=driver,
        config=cfg,
        policy=POLICY,
        restart_on_success=True,
        on_state=lambda _n, st: states.append(st),
        on_handle=lambda _n, h: journal.append(f"handle {h.pid if h else None}"),
        on_launch=on_launch,
        **kw,
    )
    return r, states


async def crashed(tmp_path: Path, journal: list[str]) -> tuple[Recording, TaskRunner]:
    """A runner that started its task, then the agent died (its handle never stored): the
    driver will adopt that task."""
    driver = Recording(journal)
    first, _ = runner(tmp_path, driver, journal)
    t1 = asyncio.create_task(first.run())
    await until(lambda: first.state.state == TaskStatus.RUNNING)
    t1.cancel()
    assert first.handle is not None
    driver.adopt_answer = first.handle
    return driver, first


async def until(pred: Any) -> None:
    for _ in range(500):
        if pred():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met")


def test_launch_is_recorded_before_the_start(tmp_path: Path) -> None:
    journal: list[str] = []

    async def main() -> None:
        r, _ = runner(tmp_path, Recording(journal), journal)
        task = asyncio.create_task(r.run())
        await until(lambda: r.state.state == TaskStatus.RUNNING)
        recorded, started = journal[0], journal[1]
        assert recorded.startswith("recorded ") and started.startswith("start ")
        assert recorded.split()[1] == started.split()[1] == r.launch_id != ""
        assert "adopt" not in journal  # a new task: nothing to adopt
        await r.kill("test")
        await asyncio.wait_for(task, 5)

    asyncio.run(main())


def test_restored_launch_is_adopted_and_reported_at_once(tmp_path: Path) -> None:
    journal: list[str] = []

    async def main() -> None:
        driver, first = await crashed(tmp_path, journal)
        journal.clear()
        again, states = runner(tmp_path, driver, journal, state=first.state, launch_id=first.launch_id)
        t2 = asyncio.create_task(again.run())
        await until(lambda: states)
        assert driver.adopt_args == (first.launch_id, None)
        assert not any(j.startswith("start") for j in journal)  # adopted, not started again
        assert again.handle == first.handle
        # the state was already running: it is reported anyway, for the servers to hear it
        assert states[-1].state == TaskStatus.RUNNING
        assert [e.type for e in again.state.events].count("Started") == 1
        await again.kill("test")
        await asyncio.wait_for(t2, 5)
        assert driver.received_signals(first.handle) != []  # the adopted copy was stopped

    asyncio.run(main())


def test_nothing_to_adopt_starts_a_new_launch(tmp_path: Path) -> None:
    journal: list[str] = []

    async def main() -> None:
        driver = Recording(journal)
        r, _ = runner(tmp_path, driver, journal, launch_id="0ld0ld0ld")
        task = asyncio.create_task(r.run())
        await until(lambda: r.state.state == TaskStatus.RUNNING)
        assert journal[0] == "adopt"
        assert journal[1].startswith("recorded ") and r.launch_id != "0ld0ld0ld"
        await r.kill("test")
        await asyncio.wait_for(task, 5)

    asyncio.run(main())


def test_kill_during_adoption_stops_the_adopted_task(tmp_path: Path) -> None:
    journal: list[str] = []

    async def main() -> None:
        driver, first = await crashed(tmp_path, journal)
        driver.adopt_gate.clear()
        again, _ = runner(tmp_path, driver, journal, state=first.state, launch_id=first.launch_id)
        t2 = asyncio.create_task(again.run())
        await until(lambda: "adopt" in journal)
        killing = asyncio.create_task(again.kill("job stopped"))
        await asyncio.sleep(0.05)
        assert not killing.done()  # kill waits for the adoption under way
        driver.adopt_gate.set()
        await asyncio.wait_for(killing, 5)
        await asyncio.wait_for(t2, 5)
        assert driver.received_signals(first.handle) != []
        assert (await driver.wait_task(first.handle)).signal != 0
        assert again.state.state == TaskStatus.DEAD

    asyncio.run(main())


def test_kill_of_a_restored_runner_that_never_ran_adopts_and_stops(tmp_path: Path) -> None:
    journal: list[str] = []

    async def main() -> None:
        driver, first = await crashed(tmp_path, journal)
        # the servers stopped the allocation while the agent was down: kill() comes first
        again, _ = runner(tmp_path, driver, journal, state=first.state, launch_id=first.launch_id)
        await asyncio.wait_for(again.kill("alloc stopped"), 5)
        assert (await driver.wait_task(first.handle)).signal != 0
        await asyncio.wait_for(again.run(), 5)  # dead already: returns at once
        assert again.state.state == TaskStatus.DEAD

    asyncio.run(main())


def test_kill_during_start_stops_the_started_task(tmp_path: Path) -> None:
    journal: list[str] = []

    async def main() -> None:
        driver = Recording(journal)
        r, _ = runner(tmp_path, driver, journal)
        r.config = dataclasses.replace(r.config, config={"run_for": -1, "start_block_for": 0.2})
        task = asyncio.create_task(r.run())
        await until(lambda: any(j.startswith("start") for j in journal))
        await asyncio.wait_for(r.kill("test"), 5)
        assert r.handle is not None
        assert (await driver.wait_task(r.handle)).signal != 0
        await asyncio.wait_for(task, 5)
        assert "Started" not in [e.type for e in r.state.events]

    asyncio.run(main())


def test_a_launch_that_cannot_be_recorded_is_not_started(tmp_path: Path) -> None:
    journal: list[str] = []

    async def main() -> None:
        r, _ = runner(tmp_path, Recording(journal), journal)

        async def broken(_task: str, _launch_id: str) -> None:
            raise DriverError("cannot record the task launch: disk I/O error")

        r._on_launch = broken
        await asyncio.wait_for(r.run(), 5)
        assert not any(j.startswith("start") for j in journal)
        assert r.state.failed
        assert "Driver Failure" in [e.type for e in r.state.events]

    asyncio.run(main())
