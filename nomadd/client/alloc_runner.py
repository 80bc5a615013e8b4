"""One allocation on this client: its directory and its task runners (Nomad's ``allocrunner``).

``run()`` builds the alloc dir (``drivers/allocdir.py``), starts one :class:`TaskRunner` per
task — in their ``lifecycle`` order (:mod:`.lifecycle`: prestart, main, poststart, poststop) — and
keeps the allocation's client status (Nomad's ``getClientStatus``: any task failed →
``failed``; any running → ``running``; any pending → ``pending``; all dead → ``complete``).
``update(alloc)`` takes the servers' newer version: a server-terminal allocation (desired
``stop``/``evict``) has its tasks killed. ``destroy()`` kills what still runs and removes the
directory. Task states and handles are persisted through ``ClientState`` on every change, and
each change is handed to ``report(alloc_id, update)`` (batched to ``Node.UpdateAlloc``). A task's
launch ID is committed before its start (the task runner waits for it). A restored allocation
reports its status at once, and one that the servers stopped meanwhile still adopts and stops
the tasks the previous agent left running.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from nomadd.client import alloc_health
from nomadd.client.dispatch_payload import write_dispatch_payload
from nomadd.client.lifecycle import restarts_on_success, run_in_order, stops_first
from nomadd.client.services import alloc_ports
from nomadd.client.state import ClientState
from nomadd.client.task_runner import TaskRunner
from nomadd.drivers.allocdir import AllocDir
from nomadd.drivers.base import Driver, Mount, TaskConfig, TaskHandle, parse_signal
from nomadd.drivers.taskenv import build_task_env
from nomadd.structs.alloc import Allocation, AllocClientStatus, TaskEvent, TaskState, TaskStatus
from nomadd.structs.codec import from_wire, to_wire
from nomadd.structs.deployment import AllocDeploymentStatus
from nomadd.structs.errors import DriverError, NotFoundError, ValidationError
from nomadd.structs.job import JobType, Task, TaskGroup
from nomadd.structs.policy import RestartPolicy, default_restart_policy
from nomadd.structs.requests.node import AllocClientUpdate
from nomadd.structs.volumes import ClientHostVolumeConfig, mount_read_only

logger = logging.getLogger(__name__)

__all__ = ["AllocRunner", "client_status"]

NS = 1_000_000_000


def client_status(states: Mapping[str, TaskState]) -> tuple[AllocClientStatus, str]:
    """Nomad's ``getClientStatus``."""
    kinds = [s.state for s in states.values()]
    if any(s.state == TaskStatus.DEAD and s.failed for s in states.values()):
        return AllocClientStatus.FAILED, "Failed tasks"
    if TaskStatus.RUNNING in kinds:
        return AllocClientStatus.RUNNING, "Tasks are running"
    if TaskStatus.PENDING in kinds or not kinds:
        return AllocClientStatus.PENDING, "No tasks have started"
    return AllocClientStatus.COMPLETE, "All tasks have completed"


class AllocRunner:
    def __init__(
        self,
        alloc: Allocation,
        *,
        alloc_root: str,
        drivers: Mapping[str, Driver],
        state: ClientState,
        persist: Callable[..., concurrent.futures.Future[None] | None],
        report: Callable[[str, AllocClientUpdate], None],
        node_id: str,
        region: str,
        datacenter: str,
        max_kill_timeout_s: float,
        host_volumes: Mapping[str, ClientHostVolumeConfig] | None = None,
        checks_passing: Callable[[str], bool | None] | None = None,
        restored_states: Mapping[str, TaskState] | None = None,
        restored_handles: Mapping[str, TaskHandle] | None = None,
        restored_launches: Mapping[str, str] | None = None,
    ) -> None:
        self.alloc = alloc
        self.alloc_dir = AllocDir(alloc_root, alloc.id)
        self._drivers = drivers
        self._state = state
        # runs a ClientState write off the loop, in order; may return its concurrent Future
        self._persist = persist
        self._report = report
        self._node_id = node_id
        self._region = region
        self._datacenter = datacenter
        self._max_kill_timeout_s = max_kill_timeout_s
        self._host_volumes = dict(host_volumes or {})
        self._checks_passing = checks_passing
        self.task_states: dict[str, TaskState] = dict(restored_states or {})
        self._handles = dict(restored_handles or {})
        self._launches = dict(restored_launches or {})
        self.runners: dict[str, TaskRunner] = {}
        self.status, self.description = client_status(self.task_states)
        self._killed = False
        self._kill_reason = ""
        self.health: AllocDeploymentStatus | None = None  # decided by alloc_health, sent with updates
        self._wake = asyncio.Event()  # set by kill(): the lifecycle order stops waiting

    @property
    def id(self) -> str:
        return self.alloc.id

    # ---- helpers -------------------------------------------------------------------------
    def _group(self) -> TaskGroup:
        job = self.alloc.job
        if job is None:
            raise ValidationError(f"allocation {self.alloc.id} has no job")
        for tg in job.task_groups:
            if tg.name == self.alloc.task_group:
                return tg
        raise ValidationError(f"allocation {self.alloc.id}: job has no task group {self.alloc.task_group!r}")

    def _persist_alloc(self) -> None:
        self._state.put_alloc(self.alloc.id, to_wire(self.alloc))

    def _on_state(self, task: str, st: TaskState) -> None:
        self.task_states[task] = st
        self._persist(self._state.put_task_state, self.alloc.id, task, to_wire(st))
        self._push()

    def _push(self) -> None:
        status, desc = client_status(self.task_states)
        if self._killed and status == AllocClientStatus.COMPLETE:
            desc = "alloc was stopped"
        self.status, self.description = status, desc
        update = AllocClientUpdate(
            id=self.alloc.id,
            client_status=status,
            client_description=desc,
            task_states=dict(self.task_states),
            deployment_status=self.health,
        )
        self._report(self.alloc.id, update)

    def _decided(self, health: AllocDeploymentStatus) -> None:
        if self.health is None:
            self.health = health
            self._push()

    def report_status(self) -> None:
        """Send the current status again (the servers' copy is stale, e.g. ``unknown``)."""
        self._push()

    def _on_handle(self, task: str, handle: TaskHandle | None) -> None:
        self._persist(self._state.put_task_handle, self.alloc.id, task, handle.to_dict() if handle else None)

    async def _on_launch(self, task: str, launch_id: str) -> None:
        """Commit the launch ID (after every write queued before it) before the task starts."""
        try:
            fut = self._persist(self._state.put_task_launch, self.alloc.id, task, launch_id)
            if isinstance(fut, concurrent.futures.Future):
                await asyncio.wrap_future(fut)
        except Exception as err:  # not recorded: not started (it could not be adopted later)
            raise DriverError(f"cannot record the task launch: {err}") from err

    def _ports(self, task: str) -> list[tuple[str, str, int, int]]:
        return alloc_ports(self.alloc, task)

    def _task_config(self, task: Task, group: TaskGroup) -> TaskConfig:
        alloc, job = self.alloc, self.alloc.job
        assert job is not None
        dirs = self.alloc_dir.task_dirs(task.name)
        env = build_task_env(
            alloc_root=self.alloc_dir.root,
            alloc_id=alloc.id,
            alloc_name=alloc.name,
            alloc_index=max(0, alloc.index()),
            job_id=job.id,
            job_name=job.name or job.id,
            group=group.name,
            task=task.name,
            namespace=alloc.namespace,
            region=self._region,
            datacenter=self._datacenter,
            node_id=self._node_id,
            cpu_mhz=task.resources.cpu,
            memory_mb=task.resources.memory_mb,
            meta={**job.meta, **group.meta, **task.meta},
            task_env=task.env,
            ports=self._ports(task.name),
        )
        kill_timeout = min(task.kill_timeout / NS, self._max_kill_timeout_s)
        return TaskConfig(
            alloc_id=alloc.id,
            task_name=task.name,
            config=dict(task.config),
            env=env,
            user=task.user,
            cpu_mhz=task.resources.cpu,
            memory_mb=task.resources.memory_mb,
            memory_max_mb=task.resources.memory_max_mb,
            task_dir=dirs.task_dir,
            alloc_dir=self.alloc_dir.shared_dir,
            log_dir=self.alloc_dir.logs_dir,
            kill_signal=task.kill_signal or "SIGINT",
            kill_timeout_s=kill_timeout,
            log_max_files=task.log_config.max_files,
            log_max_file_size_mb=task.log_config.max_file_size_mb,
            mounts=task_mounts(task, group, self._host_volumes),
        )

    # ---- life ----------------------------------------------------------------------------
    async def run(self) -> None:
        """Start (or recover) every task; returns once all of them are dead."""
        self._persist(self._persist_alloc)
        if self.alloc.server_terminal():
            self._killed = True
            self._kill_reason = self.alloc.desired_description or "alloc stopped"
            if not self._handles and not self._launches:  # nothing of it ever ran here
                self._push()
                return
        try:
            group = self._group()
        except ValidationError as err:
            logger.error("cannot run allocation alloc_id=%s err=%s", self.alloc.id, err)
            return
        policy: RestartPolicy = group.restart_policy or default_restart_policy(
            self.alloc.job.type if self.alloc.job else JobType.SERVICE
        )
        service = self.alloc.job is not None and self.alloc.job.type not in (JobType.BATCH, JobType.SYSBATCH)
        for task in group.tasks:
            driver = self._drivers.get(task.driver)
            try:
                if driver is None:
                    raise DriverError(f"driver {task.driver!r} is not available on this node")
                dirs = await asyncio.to_thread(self.alloc_dir.build_task, task.name, task.user)
                await asyncio.to_thread(write_dispatch_payload, dirs.local_dir, task, self.alloc.job)
                cfg = self._task_config(task, group)
            except DriverError as err:
                logger.error("task setup failed alloc_id=%s task=%s err=%s", self.alloc.id, task.name, err)
                event = TaskEvent(  # Nomad's TaskSetupFailure
                    type="Setup Failure",
                    time=time.time_ns(),
                    message=str(err),
                    display_message=str(err),
                    fails_task=True,
                    details={"setup_error": str(err), "fails_task": "true"},
                )
                self.task_states[task.name] = TaskState(state=TaskStatus.DEAD, failed=True, events=(event,))
                self._push()
                continue
            runner = TaskRunner(
                task=task,
                driver=driver,
                config=cfg,
                policy=task.restart_policy or policy,
                restart_on_success=restarts_on_success(task, service),
                on_state=self._on_state,
                on_handle=self._on_handle,
                on_launch=self._on_launch,
                state=self.task_states.get(task.name),
                handle=self._handles.get(task.name),
                launch_id=self._launches.get(task.name, ""),
            )
            self.runners[task.name] = runner
            self.task_states.setdefault(task.name, runner.state)  # pending until its turn (lifecycle)
        self._push()  # new: pending; restored: its stored status, at once (adoption refines it)
        if self._killed:
            # stopped before or while the tasks were being set up (a restored allocation the
            # servers stopped meanwhile): kill() saw none of these runners, so it runs for them
            await self.kill(self._kill_reason)
        strategy = None if self._killed else alloc_health.strategy_of(self.alloc)
        watcher: asyncio.Task[None] | None = None
        if strategy is not None:
            judged = tuple(t.name for t in group.tasks if t.lifecycle is None or t.lifecycle.sidecar)
            has_checks = any(svc.checks for svc in group.all_services())
            checks = self._checks_passing
            tracker = alloc_health.HealthTracker(  # main tasks and sidecars (and service checks)
                strategy, judged, checks=(lambda: checks(self.id)) if checks and has_checks else None
            )
            watcher = asyncio.ensure_future(tracker.watch(lambda: self.task_states, self._decided, self.id))
        try:
            await run_in_order(list(self.runners.values()), lambda: self._killed, self._wake)
        finally:
            if watcher is not None and not watcher.done():
                watcher.cancel()
                if not self._killed and tracker.check(self.task_states) is False:
                    self._decided(alloc_health.unhealthy_now())

    def update(self, alloc: Allocation) -> bool:
        """Take the servers' version; True when the tasks must now be stopped."""
        stop = alloc.server_terminal() and not self.alloc.server_terminal()
        self.alloc = alloc
        self._persist(self._persist_alloc)
        return stop

    async def kill(self, reason: str = "alloc stopped", *, poststop: bool = False) -> None:
        """Stop the tasks; ``poststop`` tasks run afterwards (lifecycle), unless ``poststop``."""
        self._killed, self._kill_reason = True, reason
        self._wake.set()
        await asyncio.gather(*(r.kill(reason) for r in self.runners.values() if poststop or stops_first(r)))
        self._push()

    async def signal(self, task: str, sig: str) -> None:
        parse_signal(sig)
        if task and task not in self.runners:
            raise NotFoundError(f"task {task!r} not found in allocation")
        targets = [self.runners[task]] if task else list(self.runners.values())
        for r in targets:
            await r.signal(sig)

    async def restart(self, task: str = "") -> None:
        """Restart one running task, or every running task of the allocation."""
        if task and task not in self.runners:
            raise NotFoundError(f"task {task!r} not found in allocation")
        targets = [self.runners[task]] if task else [r for r in self.runners.values() if not r.done.is_set()]
        if not targets:
            raise DriverError("no running task to restart")
        for r in targets:
            await r.restart()

    def task_pids(self) -> dict[str, int]:
        """The pid of each task that has a live process."""
        return {name: r.handle.pid for name, r in self.runners.items() if r.handle is not None and r.live}

    @property
    def create_index(self) -> int:
        return self.alloc.create_index

    def terminal(self) -> bool:
        """Nothing runs any more: stopped by the servers, or every task dead."""
        if self.alloc.server_terminal() and all(r.done.is_set() for r in self.runners.values()):
            return True
        return self.status in (AllocClientStatus.COMPLETE, AllocClientStatus.FAILED)

    def task_dead(self, task: str) -> bool:
        st = self.task_states.get(task)
        return st is not None and st.state == TaskStatus.DEAD

    async def destroy(self) -> None:
        """Kill every task, release driver resources, remove the dir and the stored state."""
        await self.kill("alloc destroyed", poststop=True)
        for r in self.runners.values():
            await r.destroy()
        await asyncio.to_thread(self.alloc_dir.destroy)
        self._persist(self._state.delete_alloc, self.alloc.id)

    def log_path(self, task: str, kind: str) -> tuple[str, str]:
        """(logs dir, base name) of a task's stdout/stderr files."""
        return self.alloc_dir.logs_dir, f"{task}.{kind}"

    @staticmethod
    def restore(
        data: Mapping[str, Any],
        states: Mapping[str, Any],
        handles: Mapping[str, Any],
    ) -> tuple[Allocation, dict[str, TaskState], dict[str, TaskHandle]]:
        alloc = from_wire(Allocation, data)
        st = {k: from_wire(TaskState, v) for k, v in states.items()}
        hd: dict[str, TaskHandle] = {}
        for k, v in handles.items():
            try:
                hd[k] = TaskHandle.from_dict(v)
            except DriverError as err:
                logger.warning("dropping unreadable task handle alloc_id=%s task=%s err=%s", alloc.id, k, err)
        return alloc, st, hd


def task_mounts(
    task: Task, group: TaskGroup, host_volumes: Mapping[str, ClientHostVolumeConfig]
) -> tuple[Mount, ...]:
    """The task's ``volume_mount``s as host paths; DriverError when one cannot be resolved here
    (the scheduler placed the allocation on a node that had the volume: its config changed)."""
    out = []
    for m in task.volume_mounts:
        req = group.volumes.get(m.volume)
        if req is None:
            raise DriverError(f"volume_mount of {m.volume!r}: the task group requests no such volume")
        cfg = host_volumes.get(req.source)
        if cfg is None:
            raise DriverError(f"volume {m.volume!r}: this client has no host volume {req.source!r}")
        out.append(Mount(host_path=cfg.path, task_path=m.destination, read_only=mount_read_only(cfg, req, m)))
    return tuple(out)
