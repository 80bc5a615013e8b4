"""Adoption after an agent restart (``ExecutorDriver.adopt_task``), with real processes: the task
is found by its launch even when no handle was stored, only one copy is kept, and what cannot
be adopted is killed."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from nomadd.drivers import adopt, executor, executor_driver, proc
from nomadd.drivers.allocdir import executor_dir_for
from nomadd.drivers.base import DriverConfig, ExitResult, TaskConfig, TaskHandle
from nomadd.drivers.raw_exec import RawExecDriver

from .conftest import DEADLINE_S, MakeTask

pytestmark = pytest.mark.slow

SLEEPER = ["-c", "while true; do sleep 0.1; done"]


def driver() -> RawExecDriver:
    return RawExecDriver(DriverConfig(enabled=True))


def launch(cfg: TaskConfig, launch_id: str) -> TaskConfig:
    return dataclasses.replace(cfg, launch_id=launch_id)


def copies(cfg: TaskConfig) -> set[int]:
    """Sessions of the task's processes (one per running copy of the task)."""
    return {p.sid for p in adopt.task_processes(adopt.processes(), cfg.alloc_id, cfg.task_name)}


def wait_gone(handle: TaskHandle) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while proc.is_alive(
        int(handle.driver_state["executor_pid"]), int(handle.driver_state["executor_start_time"])
    ):
        assert time.monotonic() < deadline, "executor still running"
        time.sleep(0.02)


def cleanup(cfg: TaskConfig) -> None:
    procs = adopt.processes()
    for p in adopt.task_processes(procs, cfg.alloc_id, cfg.task_name):
        adopt.kill_tree(procs, p)
    for info, _ in adopt.executors(procs, executor_dir_for(cfg.alloc_dir, cfg.task_name)):
        adopt.kill_tree(procs, info)


def test_adopts_a_launch_whose_handle_was_never_stored(make_task: MakeTask) -> None:
    cfg = launch(make_task("/bin/sh", SLEEPER), "aaaa0000aaaa0000")

    async def main() -> None:
        started = await driver().start_task(cfg)  # the agent dies before storing this handle
        try:
            adopted = await driver().adopt_task(cfg, None)
            assert adopted is not None
            assert (adopted.pid, adopted.start_time) == (started.pid, started.start_time)
            assert adopted.driver_state == started.driver_state
            assert copies(cfg) == {started.pid}
            await driver().stop_task(adopted, 1.0, "SIGTERM")
            result = await asyncio.wait_for(driver().wait_task(adopted), DEADLINE_S)
            assert result.signal == signal.SIGTERM
        finally:
            cleanup(cfg)

    asyncio.run(main())


def test_keeps_the_recorded_launch_and_kills_the_other_copies(make_task: MakeTask) -> None:
    base = make_task("/bin/sh", SLEEPER)
    edir = executor_dir_for(base.alloc_dir, base.task_name)

    async def main() -> None:
        # two copies of one task, as the agent made before launch records: both have records
        first = await driver().start_task(launch(base, "1111aaaa1111aaaa"))
        record = os.path.join(edir, "1111aaaa1111aaaa" + executor_driver.RECORD_SUFFIX)
        shutil.copy(record, record + ".keep")
        second = await driver().start_task(launch(base, "2222bbbb2222bbbb"))
        os.replace(record + ".keep", record)
        try:
            assert copies(base) == {first.pid, second.pid}
            # the stored handle is the first, the last recorded launch the second: keep the second
            adopted = await driver().adopt_task(launch(base, "2222bbbb2222bbbb"), first)
            assert adopted is not None
            assert adopted.pid == second.pid
            wait_gone(first)
            assert copies(base) == {second.pid}
            assert not proc.is_alive(first.pid, first.start_time)
        finally:
            cleanup(base)

    asyncio.run(main())


def test_adoption_returns_once_what_it_killed_is_gone(
    make_task: MakeTask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SIGKILL takes effect when the kernel gets to it (late on a loaded machine, or for a
    process in uninterruptible sleep); the caller starts the task again once adoption returns,
    so it returns only when the processes it killed have exited. Here every kill lands 0.3 s
    after it was sent."""
    cfg = launch(make_task("/bin/sh", SLEEPER), "4444dddd4444dddd")
    marks = {"PATH": "/usr/bin:/bin", "NOMAD_ALLOC_ID": cfg.alloc_id, "NOMAD_TASK_NAME": cfg.task_name}
    real_kill = adopt._kill

    def late_kill(p: adopt.ProcInfo) -> None:
        threading.Timer(0.3, real_kill, (p,)).start()

    monkeypatch.setattr(adopt, "_kill", late_kill)
    # one process: a shell's child killed first would let the shell exit 0 before its own late kill
    orphan = subprocess.Popen(["sleep", "60"], env=marks, start_new_session=True)
    try:
        assert asyncio.run(driver().adopt_task(cfg, None)) is None
        assert copies(cfg) == set(), "adoption returned while a process it killed still ran"
        assert orphan.wait(DEADLINE_S) == -signal.SIGKILL
    finally:
        if orphan.poll() is None:
            orphan.kill()
            orphan.wait()


def test_kills_what_cannot_be_adopted(make_task: MakeTask, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = launch(make_task("/bin/sh", SLEEPER), "3333cccc3333cccc")
    edir = executor_dir_for(cfg.alloc_dir, cfg.task_name)
    monkeypatch.setattr(executor_driver, "HANDSHAKE_TIMEOUT_S", 0.5)
    marks = {"PATH": "/usr/bin:/bin", "NOMAD_ALLOC_ID": cfg.alloc_id, "NOMAD_TASK_NAME": cfg.task_name}
    # an executor of the recorded launch that never publishes its record (stuck starting), with a
    # child; and a task process whose executor is gone
    stuck = subprocess.Popen(
        ["/bin/sh", "-c", "sleep 60; :", adopt.EXECUTOR_MODULE, f"{edir}/x.spec.json", "9", cfg.launch_id],
        start_new_session=True,
    )
    orphan = subprocess.Popen(["/bin/sh", "-c", "sleep 60; :"], env=marks, start_new_session=True)
    try:
        t0 = time.monotonic()
        assert asyncio.run(driver().adopt_task(cfg, None)) is None
        assert time.monotonic() - t0 >= 0.5  # it waited for the stuck executor first
        assert stuck.wait(DEADLINE_S) == -signal.SIGKILL
        assert orphan.wait(DEADLINE_S) == -signal.SIGKILL
        assert copies(cfg) == set()
    finally:
        for p in (stuck, orphan):
            if p.poll() is None:
                p.kill()
                p.wait()


def test_collects_the_status_of_a_launch_that_ended_while_away(make_task: MakeTask) -> None:
    cfg = launch(make_task("/bin/sh", ["-c", "exit 4"]), "4444dddd4444dddd")

    async def main() -> None:
        started = await driver().start_task(cfg)
        wait_gone(started)
        adopted = await driver().adopt_task(cfg, None)
        assert adopted is not None
        assert adopted.pid == started.pid
        assert await driver().wait_task(adopted) == ExitResult(exit_code=4)
        # a launch that never got an executor: nothing to adopt
        assert await driver().adopt_task(launch(cfg, "5555eeee5555eeee"), None) is None

    asyncio.run(main())


def test_handshake_to_a_dead_agent_is_not_an_error(tmp_path: Path) -> None:
    r, w = os.pipe()
    os.close(r)  # the agent died: nobody reads the handshake
    executor._handshake(w, {"ok": True})  # no exception: the executor carries on
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(w)  # and the fd is closed
