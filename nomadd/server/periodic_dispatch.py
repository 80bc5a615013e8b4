"""The leader's periodic dispatcher (Nomad's nomad/periodic.go) and ``Periodic.Force``.

While this server leads, :class:`PeriodicDispatcher` tracks every active periodic job of the
state (enabled ``periodic {}``, not stopped, not parameterized) with its next launch, computed
from *now* when the job is first seen or its spec changes, then from each launch time (Nomad's
``Add`` and ``dispatch``). At a launch time it proposes one ``PERIODIC_LAUNCH`` entry: the child
``<id>/periodic-<unix seconds>`` (ParentID set, no ``periodic``), its ``periodic-job``
evaluation and the parent's last-launch row. With ``prohibit_overlap`` a launch is skipped
while an earlier child still has a non-terminal evaluation or allocation.

**Leader changes.** On gaining leadership (after the barrier: every launch the old leader
committed is applied here) the dispatcher first does what Nomad's restorePeriodicDispatcher
does: for each job, if a launch after the recorded last launch (or after the job's insertion,
recorded at register) is already past, it launches ONCE now — missed runs are not replayed one
by one, only the latest is made up. Then it schedules from now. The FSM refuses a scheduled
launch whose time is not after the recorded one and any child that exists already, so a launch
two leaders both proposed is applied once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable

from nomadd.helper.supervisor import Supervisor
from nomadd.rpc import RPCRegistry
from nomadd.server.alloc_endpoint import new_eval
from nomadd.server.context import ServerContext
from nomadd.server.dispatch_endpoint import DispatchEndpoint
from nomadd.server.leader import LeaderComponent
from nomadd.server.state import store_jobs, store_periodic
from nomadd.server.state.store import ChangedKeys, StateSnapshot
from nomadd.server.state.store_evals import ApplyResult
from nomadd.structs.errors import NomaddError, UnknownJobError, ValidationError
from nomadd.structs.eval import EvalTrigger
from nomadd.structs.job import Job, JobStatus
from nomadd.structs.messages import MessageType
from nomadd.structs.periodic import PeriodicLaunch, next_launch, periodic_child_id
from nomadd.structs.requests import WriteMeta
from nomadd.structs.requests.periodic import (
    PERIODIC_FORCE,
    PeriodicForceReply,
    PeriodicForceRequest,
    PeriodicLaunchEntry,
)

logger = logging.getLogger(__name__)

__all__ = [
    "PeriodicDispatcher",
    "PeriodicEndpoint",
    "build_periodic",
    "derive_child",
    "launch",
    "missed_launch",
    "running_children",
]

MAX_WAIT_S = 5.0  # re-check at least this often (a clock step, a missed wake-up)
RESCAN_GAP_S = 0.5  # at most this often a look at the changed jobs while jobs keep changing


def derive_child(parent: Job, launch_ns: int) -> Job:
    """The child job of one launch (Nomad's deriveJob)."""
    child_id = periodic_child_id(parent.id, launch_ns)
    return dataclasses.replace(
        parent,
        id=child_id,
        name=child_id,
        parent_id=parent.id,
        periodic=None,
        status=JobStatus.PENDING,
        status_description="",
        stable=False,
        version=0,
        create_index=0,
        modify_index=0,
        job_modify_index=0,
    )


def missed_launch(job: Job, row: PeriodicLaunch | None, now: int) -> int | None:
    """The first launch time of ``job`` after its recorded last launch (``row``; the job's
    submit time when there is none) if it is already past at ``now``; None when none was missed.
    A new leader launches once, now, for it (Nomad's restorePeriodicDispatcher)."""
    assert job.periodic is not None
    last = row.launch if row is not None else job.submit_time
    nxt = next_launch(job.periodic, last)
    return nxt if nxt is not None and nxt < now else None


def running_children(snap: StateSnapshot, parent: Job) -> bool:
    """Whether a child of ``parent`` is still pending or running (prohibit_overlap)."""
    return any(store_periodic.child_active(snap, c) for c in store_periodic.children(snap, parent))


async def launch(
    ctx: ServerContext, parent: Job, launch_ns: int, *, force: bool
) -> tuple[ApplyResult, int, str]:
    """Propose one launch of ``parent`` at ``launch_ns``; ``(result, index, eval id)``.
    ``result.found`` is False when the FSM refused it (launched already, parent gone)."""
    child = derive_child(parent, launch_ns)
    now = time.time_ns()
    ev = new_eval(
        job_id=child.id,
        namespace=child.namespace,
        job_type=str(child.type),
        priority=child.priority,
        trigger=EvalTrigger.PERIODIC_JOB,
        now_ns=now,
    )
    entry = PeriodicLaunchEntry(job=child, eval=ev, launch=launch_ns, force=force, submit_time=now)
    result, index = await ctx.propose(MessageType.PERIODIC_LAUNCH, entry)
    assert isinstance(result, ApplyResult)
    return result, index, ev.id


class PeriodicDispatcher:
    """A leader component: launches periodic jobs' children on schedule."""

    def __init__(self, ctx: ServerContext) -> None:
        self._ctx = ctx
        self._tasks = Supervisor("periodic-dispatch")
        self._task: asyncio.Task[None] | None = None
        # (namespace, id) -> (job as last seen, next launch unix ns or None)
        self.tracked: dict[tuple[str, str], tuple[Job, int | None]] = {}
        # the jobs written since the last look: a change costs O(changed jobs), not O(jobs)
        self._journal: ChangedKeys | None = None

    def set_enabled(self, enabled: bool) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.tracked = {}
        if self._journal is not None:
            self._ctx.store.unwatch_keys(self._journal)
            self._journal = None
        if enabled:
            self._journal = self._ctx.store.watch_keys(store_jobs.TABLE)  # first take: every job
            self._task = self._tasks.spawn(self._run(), "periodic-dispatch")

    async def shutdown(self) -> None:
        self._task = None
        await self._tasks.aclose()

    # ---- the loop ------------------------------------------------------------------------
    async def _run(self) -> None:
        await self._restore()
        seen = -1
        while True:
            try:
                seen = await self._step(seen)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug: logged with its traceback, and launches go on
                logger.exception("periodic dispatch failed")
                await asyncio.sleep(1.0)

    async def _step(self, seen: int) -> int:
        """Rescan the jobs if they changed, launch what is due, wait for the next launch time
        or a change of the jobs table. Returns the jobs table index it saw."""
        store = self._ctx.store
        if store.table_index(store_jobs.TABLE) != seen:
            seen = self._refresh(time.time_ns())
        now = time.time_ns()
        for key, (job, nxt) in list(self.tracked.items()):
            if nxt is not None and nxt <= now:
                self.tracked[key] = (job, next_launch(job.periodic, nxt) if job.periodic else None)
                await self._dispatch(job, nxt)
        wait = self._until_next()
        if wait > 0 and await store.wait_for((store_jobs.TABLE,), seen, wait) != seen:
            # jobs changed: look at them, but not more often than RESCAN_GAP_S nor past a launch
            await asyncio.sleep(min(RESCAN_GAP_S, self._until_next()))
        return seen

    def _until_next(self) -> float:
        """Seconds to the next launch (at most MAX_WAIT_S)."""
        times = [nxt for _, nxt in self.tracked.values() if nxt is not None]
        if not times:
            return MAX_WAIT_S
        return min(MAX_WAIT_S, max(0.0, (min(times) - time.time_ns()) / 1e9))

    def _refresh(self, now: int) -> int:
        """Track the active periodic jobs among the jobs written since the last look (every job
        the first time): new or changed ones from now (Nomad's Add), the others untracked.
        Returns the jobs table index it saw."""
        assert self._journal is not None
        snap, keys = self._ctx.store.take(self._journal)
        rows = snap.table(store_jobs.TABLE)
        if keys is None:  # no sort: at 100,000 jobs this is the costly case, taken once
            gone = [k for k in self.tracked if store_jobs.job_key(*k) not in rows]
            jobs: list[Job] = list(rows.values())
        else:
            gone = [store_jobs.job_key_parts(k) for k in sorted(keys) if k not in rows]
            jobs = [rows[k] for k in sorted(keys) if k in rows]
        for key in gone:
            self._untrack(key)
        for job in jobs:
            key = (job.namespace, job.id)
            if job.periodic is None or not job.is_periodic_active():
                self._untrack(key)
                continue
            old = self.tracked.get(key)
            if old is not None and old[0].job_modify_index == job.job_modify_index:
                continue
            assert job.periodic is not None
            self.tracked[key] = (job, next_launch(job.periodic, now))
            logger.debug(
                "periodic job tracked namespace=%s job=%s next=%s", key[0], key[1], self.tracked[key][1]
            )
        return snap.table_index(store_jobs.TABLE)

    def _untrack(self, key: tuple[str, str]) -> None:
        if self.tracked.pop(key, None) is not None:
            logger.debug("periodic job untracked namespace=%s job=%s", key[0], key[1])

    async def _restore(self) -> None:
        """Launch once, now, each job whose next launch after its recorded last launch is past."""
        snap = self._ctx.store.snapshot()
        now = time.time_ns()
        for job in store_jobs.list_jobs(snap, where=Job.is_periodic_active):  # not a sort of all
            assert job.periodic is not None
            missed = missed_launch(job, store_periodic.get_launch(snap, job.namespace, job.id), now)
            if missed is None:
                continue
            logger.info("periodic launch missed namespace=%s job=%s missed=%d", job.namespace, job.id, missed)
            await self._dispatch(job, now)

    async def _dispatch(self, job: Job, launch_ns: int) -> None:
        assert job.periodic is not None
        if job.periodic.prohibit_overlap and running_children(self._ctx.store.snapshot(), job):
            logger.info(
                "periodic launch skipped, prohibit_overlap namespace=%s job=%s", job.namespace, job.id
            )
            return
        try:
            result, index, _ = await launch(self._ctx, job, launch_ns, force=False)
        except NomaddError as err:
            logger.warning("periodic launch failed namespace=%s job=%s err=%s", job.namespace, job.id, err)
            return
        if result.found:
            logger.info(
                "periodic job launched namespace=%s job=%s child=%s index=%d",
                job.namespace,
                job.id,
                periodic_child_id(job.id, launch_ns),
                index,
            )
        else:
            logger.info(
                "periodic launch refused, launched already namespace=%s job=%s", job.namespace, job.id
            )


class PeriodicEndpoint:
    """``Periodic.Force``: launch a periodic job's child now (Nomad's periodic_endpoint.go)."""

    def __init__(self, ctx: ServerContext) -> None:
        self._ctx = ctx

    def register(self, registry: RPCRegistry) -> None:
        registry.register(PERIODIC_FORCE, self.force, kind="write")

    async def force(self, req: PeriodicForceRequest) -> PeriodicForceReply:
        job = store_jobs.get_job(self._ctx.store.snapshot(), req.namespace, req.job_id)
        if job is None:
            raise UnknownJobError(f"job not found: {req.job_id}")
        if not job.is_periodic() or job.is_parameterized():
            raise ValidationError("can't force launch non-periodic job")
        if not job.is_periodic_active():
            raise ValidationError(f"can't force run non-tracked job {job.id!r} ({job.namespace})")
        result, index, eval_id = await launch(self._ctx, job, time.time_ns(), force=True)
        if not result.found:
            raise ValidationError(f"job {job.id!r} was launched this second already")
        return PeriodicForceReply(meta=WriteMeta(index=index), eval_id=eval_id, eval_create_index=index)


def build_periodic(
    ctx: ServerContext, registry: RPCRegistry, add_leader_component: Callable[[LeaderComponent], None]
) -> None:
    """Register ``Periodic.Force`` and ``Job.Dispatch`` and the leader's periodic dispatcher."""
    PeriodicEndpoint(ctx).register(registry)
    DispatchEndpoint(ctx).register(registry)
    add_leader_component(PeriodicDispatcher(ctx))
