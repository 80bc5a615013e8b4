"""The ``mock`` driver: fake tasks for tests, configured through the task's driver config like
Nomad's mock driver. No process is started; "running" is a timer on the event loop.

Task config keys (durations are seconds as numbers, or Go-style strings ``"1.5s"``, ``"200ms"``):

* ``run_for`` — how long the task runs (default 0: exits at once; ``-1``: until stopped);
* ``exit_code``, ``exit_signal``, ``exit_err_msg`` — how it ends after ``run_for``;
* ``start_error`` — start_task raises DriverError with this message;
* ``start_block_for`` — start_task takes this long;
* ``kill_after`` — after a stop signal, the task lingers this long (stop escalates when
  ``kill_after`` exceeds the kill timeout; the task then ends with signal 9);
* ``signal_error`` — signal_task raises DriverError with this message;
* ``stdout_string`` — written once to ``<log_dir>/<task>.stdout.0`` at start.

Handles store the config and start time, so a new driver instance recovers them (simulating an
agent restart): a recovered task finishes at its original deadline.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from nomadd.drivers.base import (
    DEFAULT_KILL_SIGNAL,
    HEALTH_HEALTHY,
    Driver,
    ExitResult,
    TaskConfig,
    TaskHandle,
    parse_signal,
)
from nomadd.helper import duration
from nomadd.structs.errors import DriverError
from nomadd.structs.node import DriverInfo
from nomadd.structs.timeutil import format_time


def parse_duration(value: object, key: str) -> float:
    """Seconds from a number, a numeric string or a Go duration string; DriverError naming ``key``."""
    if isinstance(value, bool):
        raise DriverError(f"mock driver: {key} must be a duration, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            return duration.parse_duration(value)
        except ValueError:
            pass
    raise DriverError(f"mock driver: invalid duration {value!r} for {key}")


@dataclass(slots=True, kw_only=True)
class _MockTask:
    deadline: float | None  # loop-independent wall clock; None = until stopped
    exit_code: int
    exit_signal: int
    err: str | None
    kill_after: float
    signal_error: str
    stopped: asyncio.Event = field(default_factory=asyncio.Event)
    result: ExitResult | None = None
    signals: list[int] = field(default_factory=list)


class MockDriver(Driver):
    name: ClassVar[str] = "mock"

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self._tasks: dict[str, _MockTask] = {}

    def fingerprint(self) -> DriverInfo:
        return DriverInfo(
            detected=self.enabled,
            healthy=self.enabled,
            health_description=HEALTH_HEALTHY if self.enabled else "disabled",
            attributes={"driver.mock": "true"} if self.enabled else {},
            update_time=format_time(time.time_ns()),
        )

    @staticmethod
    def _key(handle: TaskHandle) -> str:
        return f"{handle.alloc_id}.{handle.task_name}"

    def _task_from(self, handle: TaskHandle) -> _MockTask:
        st = handle.driver_state
        run_for = float(st.get("run_for", 0.0))
        return _MockTask(
            deadline=None if run_for < 0 else handle.started_at + run_for,
            exit_code=int(st.get("exit_code", 0)),
            exit_signal=int(st.get("exit_signal", 0)),
            err=st.get("exit_err_msg") or None,
            kill_after=float(st.get("kill_after", 0.0)),
            signal_error=str(st.get("signal_error", "")),
        )

    async def start_task(self, cfg: TaskConfig) -> TaskHandle:
        if not self.enabled:
            raise DriverError("driver mock is disabled on this node")
        c = cfg.config
        block = parse_duration(c.get("start_block_for", 0), "start_block_for")
        if block > 0:
            await asyncio.sleep(block)
        if c.get("start_error"):
            raise DriverError(str(c["start_error"]))
        exit_signal = c.get("exit_signal", 0)
        state = {
            "run_for": parse_duration(c.get("run_for", 0), "run_for"),
            "exit_code": int(c.get("exit_code", 0)),
            "exit_signal": int(parse_signal(exit_signal)) if exit_signal else 0,
            "exit_err_msg": str(c.get("exit_err_msg", "")),
            "kill_after": parse_duration(c.get("kill_after", 0), "kill_after"),
            "signal_error": str(c.get("signal_error", "")),
        }
        stdout = c.get("stdout_string")
        if stdout:

            def _write() -> None:
                os.makedirs(cfg.log_dir, exist_ok=True)
                path = os.path.join(cfg.log_dir, f"{cfg.task_name}.stdout.0")
                with open(path, "a") as f:
                    f.write(str(stdout))

            await asyncio.to_thread(_write)
        handle = TaskHandle(
            driver=self.name,
            alloc_id=cfg.alloc_id,
            task_name=cfg.task_name,
            pid=0,
            start_time=0,
            started_at=time.time(),
            driver_state=state,
        )
        self._tasks[self._key(handle)] = self._task_from(handle)
        return handle

    def _get(self, handle: TaskHandle) -> _MockTask:
        task = self._tasks.get(self._key(handle))
        if task is None:
            raise DriverError(f"mock task {handle.task_name} is unknown to this driver")
        return task

    async def wait_task(self, handle: TaskHandle) -> ExitResult:
        task = self._get(handle)
        if task.result is None:
            timeout = None if task.deadline is None else max(0.0, task.deadline - time.time())
            try:
                await asyncio.wait_for(task.stopped.wait(), timeout)
            except TimeoutError:
                if task.result is None:
                    task.result = ExitResult(exit_code=task.exit_code, signal=task.exit_signal, err=task.err)
        assert task.result is not None
        return task.result

    async def stop_task(
        self, handle: TaskHandle, timeout: float, signal: str | int = DEFAULT_KILL_SIGNAL
    ) -> None:
        task = self._get(handle)
        if task.result is not None:
            return
        signum = int(parse_signal(signal))
        task.signals.append(signum)
        if task.kill_after > timeout:
            await asyncio.sleep(max(0.0, timeout))
            signum = 9
        elif task.kill_after > 0:
            await asyncio.sleep(task.kill_after)
        task.result = ExitResult(exit_code=128 + signum, signal=signum)
        task.stopped.set()

    async def signal_task(self, handle: TaskHandle, sig: str | int) -> None:
        task = self._get(handle)
        if task.signal_error:
            raise DriverError(task.signal_error)
        task.signals.append(int(parse_signal(sig)))

    async def recover_task(self, handle: TaskHandle) -> bool:
        if handle.driver != self.name:
            return False
        if self._key(handle) not in self._tasks:
            self._tasks[self._key(handle)] = self._task_from(handle)
        return True

    async def destroy_task(self, handle: TaskHandle) -> None:
        task = self._tasks.pop(self._key(handle), None)
        if task is not None and task.result is None:
            task.result = ExitResult(exit_code=137, signal=9)
            task.stopped.set()

    def received_signals(self, handle: TaskHandle) -> list[int]:
        """Signals sent to a task so far (for tests)."""
        return list(self._get(handle).signals)
