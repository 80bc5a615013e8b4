"""One task of an allocation: start it with its driver, wait, apply the restart policy, kill it
(Nomad's ``client/allocrunner/taskrunner``).

The runner's life: prestart hooks (task dir, env) → a new launch ID, committed to the state db
(``on_launch``) → ``driver.start_task`` → handle stored in the state db → ``wait_task`` → the
:class:`RestartTracker` decides: restart after a delay, terminate (success), or give up (failed).
``kill()`` stops the task with its ``KillSignal`` and ``KillTimeout``; it waits for a start or an
adoption under way to end first, so that what they started is stopped too.

After an agent restart (a stored handle or launch ID), :meth:`TaskRunner.run` first asks
``driver.adopt_task`` for the copy of the task the previous agent left (the stored handle, else
the recorded launch, found by its marks), which stops any other copy: an adopted task is waited
on, not restarted, and its state is reported at once. Only when nothing can be adopted is the
task started again. Cancelling the runner (agent shutdown) never touches the task process.

Every state change goes through ``on_state(task_name, TaskState)`` (the alloc runner persists it
and reports it to the servers).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from nomadd.drivers.base import Driver, ExitResult, TaskConfig, TaskHandle
from nomadd.structs.alloc import TaskEvent, TaskState, TaskStatus
from nomadd.structs.errors import DriverError
from nomadd.structs.job import Task
from nomadd.structs.policy import RestartMode, RestartPolicy
from nomadd.structs.timeutil import format_time, parse_time

logger = logging.getLogger(__name__)

__all__ = [
    "MAX_TASK_EVENTS",
    "PrestartHook",
    "RestartDecision",
    "RestartTracker",
    "TaskRunner",
]

MAX_TASK_EVENTS = 10  # Nomad keeps the last 10 events per task
NS = 1_000_000_000
JITTER_FRACTION = 0.25  # Nomad's restart delay jitter

EVENT_RECEIVED = "Received"
EVENT_SETUP = "Task Setup"
EVENT_STARTED = "Started"
EVENT_TERMINATED = "Terminated"
OOM_KILLED = "OOM Killed"  # the exit message of a task the kernel killed over its memory limit
EVENT_RESTARTING = "Restarting"
EVENT_NOT_RESTARTING = "Not Restarting"
EVENT_KILLING = "Killing"
EVENT_KILLED = "Killed"
EVENT_DRIVER_FAILURE = "Driver Failure"
EVENT_SIGNALING = "Signaling"
EVENT_RESTART_SIGNAL = "Restart Signaled"


@dataclass(frozen=True, slots=True, kw_only=True)
class RestartDecision:
    """``restart`` after ``delay_s``; else the task is dead, ``failed`` or not."""

    restart: bool
    delay_s: float = 0.0
    failed: bool = False
    reason: str = ""


class RestartTracker:
    """Nomad's ``RestartTracker``: attempts per interval, delay with jitter, mode fail|delay.

    ``restart_on_success`` is true for service and system jobs (a task that exits 0 is
    restarted), false for batch (it is done).
    """

    def __init__(
        self,
        policy: RestartPolicy,
        *,
        restart_on_success: bool,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.policy = policy
        self.restart_on_success = restart_on_success
        self._clock = clock
        self._rng = rng or random.Random()
        self.count = 0
        self.start_time: float | None = None

    def _jitter(self) -> float:
        delay = self.policy.delay / NS
        return delay + self._rng.random() * delay * JITTER_FRACTION

    def on_exit(self, result: ExitResult | None) -> RestartDecision:
        """``result`` None means the task could not be started (driver failure)."""
        if result is not None and result.successful and not self.restart_on_success:
            return RestartDecision(
                restart=False, reason="Restart unnecessary as task terminated successfully"
            )
        if self.policy.attempts == 0:
            return RestartDecision(restart=False, failed=True, reason="Policy allows no restarts")
        now = self._clock()
        if self.start_time is None:
            self.start_time = now
        self.count += 1
        end = self.start_time + self.policy.interval / NS
        if now > end:
            self.count = 0
            self.start_time = now
            return RestartDecision(restart=True, delay_s=self._jitter(), reason="Restart within policy")
        if self.count > self.policy.attempts:
            if self.policy.mode == RestartMode.FAIL:
                return RestartDecision(
                    restart=False,
                    failed=True,
                    reason='Exceeded allowed attempts in interval and mode is "fail"',
                )
            return RestartDecision(
                restart=True,
                delay_s=max(0.0, end - now),
                reason="Exceeded allowed attempts, applying a delay",
            )
        return RestartDecision(restart=True, delay_s=self._jitter(), reason="Restart within policy")


@runtime_checkable
class PrestartHook(Protocol):
    """Runs before each start of the task (Nomad's ``TaskPrestartHook``); may adjust the config."""

    name: str

    async def prestart(self, cfg: TaskConfig) -> TaskConfig: ...


def _event(kind: str, **kw: object) -> TaskEvent:
    return TaskEvent(type=kind, time=time.time_ns(), **kw)  # type: ignore[arg-type]


class TaskRunner:
    def __init__(
        self,
        *,
        task: Task,
        driver: Driver,
        config: TaskConfig,
        policy: RestartPolicy,
        restart_on_success: bool,
        on_state: Callable[[str, TaskState], None],
        on_handle: Callable[[str, TaskHandle | None], None],
        on_launch: Callable[[str, str], Awaitable[None]] | None = None,
        prestart_hooks: tuple[PrestartHook, ...] = (),
        state: TaskState | None = None,
        handle: TaskHandle | None = None,
        launch_id: str = "",
    ) -> None:
        self.task = task
        self.driver = driver
        self.config = config
        self.tracker = RestartTracker(policy, restart_on_success=restart_on_success)
        self._on_state = on_state
        self._on_handle = on_handle
        self._hooks = prestart_hooks
        self._on_launch = on_launch  # commits the launch ID before the start
        self.state = state or TaskState()
        self.handle = handle
        self.launch_id = launch_id
        # restored from the state db: adopt what the previous agent started before anything else
        self._adopt_pending = (handle is not None or bool(launch_id)) and self.state.state != TaskStatus.DEAD
        self._live = False  # self.handle is a task not yet seen to exit
        self._settled = asyncio.Event()  # set while no start or adoption is under way
        self._settled.set()
        self._kill_requested = asyncio.Event()
        self._restart_requested = False  # the API asked for a restart (not counted by the policy)
        self.done = asyncio.Event()
        self.started = asyncio.Event()  # reported running once (lifecycle: a sidecar is up)

    @property
    def name(self) -> str:
        return self.task.name

    @property
    def live(self) -> bool:
        """The handle is a task not yet seen to exit."""
        return self._live

    # ---- state ---------------------------------------------------------------------------
    def _emit(self, event: TaskEvent | None = None, **changes: object) -> None:
        state = dataclasses.replace(self.state, **changes)  # type: ignore[arg-type]
        if event is not None:
            state = dataclasses.replace(state, events=(*state.events, event)[-MAX_TASK_EVENTS:])
        self.state = state
        if state.state == TaskStatus.RUNNING:
            self.started.set()
        self._on_state(self.name, state)

    def _now(self) -> str:
        return format_time(time.time_ns())

    def _dead(self, *, failed: bool, event: TaskEvent | None = None) -> None:
        self._emit(event, state=TaskStatus.DEAD, failed=failed, finished_at=self._now())
        self.done.set()

    # ---- life ----------------------------------------------------------------------------
    async def run(self) -> None:
        """Run until the task is dead for good (or the runner is cancelled)."""
        if self.state.state == TaskStatus.DEAD:
            self.done.set()
            return
        result: ExitResult | None
        if self._adopt_pending and await self._recover():
            result = await self._wait()
        else:
            if not self.state.events:
                self._emit(_event(EVENT_RECEIVED, display_message="Task received by client"))
            result = await self._start_and_wait()
        while True:
            if self._kill_requested.is_set():
                return
            if self._restart_requested:
                self._restart_requested = False
                self._emit(
                    _event(
                        EVENT_RESTARTING,
                        display_message="Task restarting",
                        restart_reason="User requested restart",
                    ),
                    state=TaskStatus.PENDING,
                    restarts=self.state.restarts + 1,
                    last_restart=self._now(),
                )
                result = await self._start_and_wait()
                continue
            decision = self.tracker.on_exit(result)
            if not decision.restart:
                kind = (
                    EVENT_TERMINATED if not decision.failed and result is not None else EVENT_NOT_RESTARTING
                )
                if kind == EVENT_TERMINATED:
                    self._dead(failed=False)
                else:
                    self._dead(
                        failed=True, event=_event(EVENT_NOT_RESTARTING, display_message=decision.reason)
                    )
                return
            self._emit(
                _event(
                    EVENT_RESTARTING,
                    display_message=f"Task restarting in {decision.delay_s:.3f}s",
                    restart_reason=decision.reason,
                    start_delay=int(decision.delay_s * NS),
                ),
                state=TaskStatus.PENDING,
                restarts=self.state.restarts + 1,
                last_restart=self._now(),
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kill_requested.wait(), decision.delay_s)
            if self._kill_requested.is_set():
                self._dead(
                    failed=False, event=_event(EVENT_KILLED, display_message="Task successfully killed")
                )
                return
            result = await self._start_and_wait()

    async def _recover(self) -> bool:
        """Adopt the copy of the task a previous agent started; False when there is none."""
        self._adopt_pending = False
        self._settled.clear()
        try:
            cfg = dataclasses.replace(self.config, launch_id=self.launch_id)
            try:
                handle = await self.driver.adopt_task(cfg, self.handle)
            except DriverError as err:
                logger.warning("task recovery failed task=%s err=%s", cfg.task_id, err)
                handle = None
            if handle is None:
                if self.handle is not None:
                    self.handle = None
                    self._on_handle(self.name, None)
            else:
                if handle != self.handle:
                    self.handle = handle
                    self._on_handle(self.name, handle)
                self._live = True
        finally:
            self._settled.set()
        if handle is None:
            logger.warning("task could not be recovered, starting it again task=%s", cfg.task_id)
            return False
        logger.info("task recovered task=%s pid=%d", cfg.task_id, handle.pid)
        if not self._kill_requested.is_set():
            self._emit(state=TaskStatus.RUNNING)  # reported at once, changed or not
        return True

    async def _start_and_wait(self) -> ExitResult | None:
        if self._kill_requested.is_set():
            return None
        cfg = self.config
        self._settled.clear()
        try:
            try:
                for hook in self._hooks:
                    cfg = await hook.prestart(cfg)
                cfg = dataclasses.replace(cfg, launch_id=uuid.uuid4().hex)
                if self._on_launch is not None:
                    # committed before the executor exists: a restarted agent looks for it
                    await self._on_launch(self.name, cfg.launch_id)
                self.launch_id = cfg.launch_id
                handle = await self.driver.start_task(cfg)
            except DriverError as err:
                logger.error("task failed to start task=%s err=%s", cfg.task_id, err)
                self._emit(
                    _event(
                        EVENT_DRIVER_FAILURE, driver_error=str(err), display_message=str(err), fails_task=True
                    )
                )
                return None
            self.handle = handle
            self._live = True
            self._on_handle(self.name, handle)
        finally:
            self._settled.set()
        if self._kill_requested.is_set():  # killed while starting: kill() stops it
            return None
        self._emit(
            _event(EVENT_STARTED, display_message="Task started by client"),
            state=TaskStatus.RUNNING,
            started_at=self._now() if parse_time(self.state.started_at) == 0 else self.state.started_at,
        )
        logger.info("task started task=%s pid=%d", cfg.task_id, handle.pid)
        return await self._wait()

    async def _wait(self) -> ExitResult:
        assert self.handle is not None
        result = await self.driver.wait_task(self.handle)
        self._live = False
        msg = f"Exit Code: {result.exit_code}" + (f", Signal: {result.signal}" if result.signal else "")
        if result.err:
            msg += f", Error: {result.err}"
        exit_message = OOM_KILLED if result.oom_killed else ""
        if exit_message:  # Nomad's TaskTerminated display: the exit message quoted
            msg += f', Exit Message: "{exit_message}"'
        if not self._kill_requested.is_set():
            self._emit(
                _event(
                    EVENT_TERMINATED,
                    exit_code=result.exit_code,
                    signal=result.signal,
                    message=exit_message,
                    display_message=msg,
                    details={
                        "exit_code": str(result.exit_code),
                        "signal": str(result.signal),
                        "oom_killed": "true" if result.oom_killed else "false",
                        "exit_message": exit_message,
                    },
                )
            )
        logger.info(
            "task exited task=%s exit_code=%d signal=%d", self.config.task_id, result.exit_code, result.signal
        )
        return result

    async def kill(self, reason: str = "") -> None:
        """Stop the task for good (KillSignal, KillTimeout, then SIGKILL)."""
        self._kill_requested.set()
        await self._settled.wait()  # a start or adoption under way ends first
        if self._adopt_pending:  # restored but not run yet: stop what the previous agent left
            await self._recover()
        if self.done.is_set() or (self.state.state == TaskStatus.DEAD and not self._live):
            self.done.set()  # dead already (a restored task that ended before)
            return
        if self.handle is not None and self._live:
            self._emit(
                _event(
                    EVENT_KILLING,
                    display_message="Sent interrupt. Waiting "
                    + f"{self.config.kill_timeout_s:g}s before force killing",
                    kill_reason=reason,
                    kill_timeout=int(self.config.kill_timeout_s * NS),
                )
            )
            try:
                await self.driver.stop_task(self.handle, self.config.kill_timeout_s, self.config.kill_signal)
            except DriverError as err:
                logger.warning("task stop failed task=%s err=%s", self.config.task_id, err)
        self._dead(
            failed=self.state.failed, event=_event(EVENT_KILLED, display_message="Task successfully killed")
        )

    async def signal(self, sig: str) -> None:
        if self.handle is None or self.state.state != TaskStatus.RUNNING:
            raise DriverError(f"task {self.name} is not running")
        self._emit(_event(EVENT_SIGNALING, display_message=f"Task being sent signal {sig}"))
        await self.driver.signal_task(self.handle, sig)

    async def restart(self, reason: str = "User requested restart") -> None:
        """Stop the running task and start it again at once (Nomad's ``alloc restart``); the
        restart policy does not count it."""
        if self.handle is None or not self._live or self.state.state != TaskStatus.RUNNING:
            raise DriverError(f"task {self.name} is not running")
        self._restart_requested = True
        self._emit(_event(EVENT_RESTART_SIGNAL, display_message=reason, restart_reason=reason))
        await self.driver.stop_task(self.handle, self.config.kill_timeout_s, self.config.kill_signal)

    async def destroy(self) -> None:
        """Release driver resources of the last handle (after the task is dead)."""
        if self.handle is not None:
            with contextlib.suppress(DriverError):
                await self.driver.destroy_task(self.handle)
