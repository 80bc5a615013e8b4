"""The plan applier (leader only): re-check scheduler plans against current state and commit.

Workers plan on snapshots that may be stale by the time they submit. The applier is the single
writer of placements (Nomad's planApply): it takes the newest state, checks each node's part of
each plan like :func:`nomadd.structs.funcs.evaluate_node_plan` (node still ready and eligible
for new allocations, resources still fit), and commits what passed in one ``PLAN_RESULTS``
entry together with the evaluations the worker created while planning (blocked, follow-up).
A node that failed is left out of the result and ``refresh_index`` tells the scheduler to
re-plan on a newer snapshot; ``all_at_once`` plans commit all or nothing.

Plans that queue up are checked together, one after the other on the same overlay of state,
and committed in one entry (``MAX_PLANS_PER_ENTRY`` / ``MAX_PLACEMENTS_PER_ENTRY`` bound it).
Like Nomad's planApply, the applier does not wait for one entry to commit before checking the
next batch; unlike it, up to ``MAX_ENTRIES_IN_FLIGHT`` entries may be in Raft at once, because
here a round trip costs milliseconds of Python on every server. Later batches are checked
against the placements of the in-flight entries but not their stops (see :class:`_Overlay`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from nomadd import telemetry
from nomadd.helper.supervisor import Supervisor
from nomadd.server.state import store_allocs, store_jobs
from nomadd.server.state.store import StateSnapshot
from nomadd.structs.alloc import Allocation, AllocDesiredStatus
from nomadd.structs.codec_diff import fast_replace
from nomadd.structs.errors import NoLeaderError
from nomadd.structs.eval import Evaluation
from nomadd.structs.funcs import fits, refuses_new_placements
from nomadd.structs.job import Job
from nomadd.structs.messages import MessageType
from nomadd.structs.node import Node
from nomadd.structs.plan import Plan, PlanResult
from nomadd.structs.requests.plan import PlanEntry, PlanResultsEntry

if TYPE_CHECKING:
    from nomadd.server.context import ServerContext

logger = logging.getLogger(__name__)

__all__ = [
    "MAX_ENTRIES_IN_FLIGHT",
    "MAX_PLACEMENTS_PER_ENTRY",
    "MAX_PLANS_PER_ENTRY",
    "PlanApplier",
    "check_plan",
]

MAX_PLANS_PER_ENTRY = 64  # bounds one Raft entry
MAX_PLACEMENTS_PER_ENTRY = 256  # ~1.3 KB of msgpack each: entries stay well under a MiB
MAX_ENTRIES_IN_FLIGHT = 4  # PLAN_RESULTS entries proposed and not yet applied here
NODES_TABLE = "nodes"  # state/store_nodes.py's table (structs.Node values)


# ---- checking ----------------------------------------------------------------------------


_ZERO = (0, 0, 0)


def _usage_of(
    alloc: Allocation | None, memo: dict[int, tuple[object, tuple[int, int, int]]]
) -> tuple[int, int, int]:
    """The allocation's (cpu, memory, disk) while it is not terminal. ``memo``: the sums of
    resources objects seen in this batch (by identity; a group's placements share one)."""
    if alloc is None or alloc.terminal():
        return _ZERO
    res = alloc.allocated_resources
    hit = memo.get(id(res))
    if hit is not None and hit[0] is res:
        return hit[1]
    usage = res.comparable()
    memo[id(res)] = (res, usage)  # holds res: its id is not reused while the memo lives
    return usage


class _Overlay:
    """Current allocations and their summed usage per node: the snapshot, the placements of
    entries still in flight, and the plans accepted earlier in this batch.

    A node's usage starts from the state store's per-node usage row (the sum over its
    non-terminal allocations) and moves with every row the overlay replaces, so checking a plan
    costs its own allocations, not every allocation on its nodes.

    In-flight entries count with their placements only, not their stops: a plan checked while
    an earlier entry commits may use capacity that entry adds, never capacity it frees, so an
    earlier entry that fails (leadership lost) cannot leave a later one over-committing a node.
    """

    def __init__(self, snap: StateSnapshot, inflight: Sequence[dict[str, list[Allocation]]] = ()) -> None:
        self.snap = snap
        self._inflight = inflight
        self._rows: dict[str, dict[str, Allocation]] = {}  # node -> the rows replaced so far
        self._used: dict[str, list[int]] = {}  # node -> usage of all its current rows
        self._memo: dict[int, tuple[object, tuple[int, int, int]]] = {}  # see _usage_of
        # node -> (stops, places, usage with them) of its last evaluate(): accept() of those
        # same objects takes the usage from there instead of summing it again
        self._evaluated: dict[str, tuple[object, object, list[int]]] = {}

    def _node(self, node_id: str) -> tuple[dict[str, Allocation], list[int]]:
        rows = self._rows.get(node_id)
        if rows is None:
            rows = self._rows[node_id] = {}
            used = self._used[node_id] = list(store_allocs.node_usage(self.snap, node_id))
            for placed in self._inflight:
                for a in placed.get(node_id, ()):
                    self._put(node_id, rows, used, a)  # applied already: replaces an equal row
            return rows, used
        return rows, self._used[node_id]

    def current(self, node_id: str, rows: dict[str, Allocation], alloc_id: str) -> Allocation | None:
        """The allocation ``alloc_id`` on ``node_id`` as the overlay sees it (None: not there)."""
        alloc = rows.get(alloc_id)
        if alloc is not None:
            return alloc
        alloc = store_allocs.get_alloc(self.snap, alloc_id)
        return alloc if alloc is not None and alloc.node_id == node_id else None

    def _put(self, node_id: str, rows: dict[str, Allocation], used: list[int], alloc: Allocation) -> None:
        memo = self._memo
        old, new = _usage_of(self.current(node_id, rows, alloc.id), memo), _usage_of(alloc, memo)
        for i in range(3):
            used[i] += new[i] - old[i]
        rows[alloc.id] = alloc

    def evaluate(
        self, node: Node | None, node_id: str, stops: Sequence[Allocation], places: Sequence[Allocation]
    ) -> tuple[bool, str]:
        """:func:`nomadd.structs.funcs.evaluate_node_plan` over the overlay's rows of the node."""
        rows, used = self._node(node_id)
        stopped: set[str] = set()
        total = list(used)
        for a in stops:
            if a.id in stopped:
                continue
            stopped.add(a.id)
            cur = _usage_of(self.current(node_id, rows, a.id), self._memo)
            for i in range(3):
                total[i] -= cur[i]
        new = False
        memo = self._memo
        # one placement per node is the usual plan: no dedup dict then, and the sum unrolled
        for a in places if len(places) < 2 else {p.id: p for p in places}.values():
            current = self.current(node_id, rows, a.id)
            if current is None:
                new = True
            old, add = _usage_of(None if a.id in stopped else current, memo), _usage_of(a, memo)
            total[0] += add[0] - old[0]
            total[1] += add[1] - old[1]
            total[2] += add[2] - old[2]
        self._evaluated[node_id] = (stops, places, total)
        if new and (why := refuses_new_placements(node)):
            return False, why
        if node is None:
            return True, ""
        ok, dimension = fits(node, total)
        return (True, "") if ok else (False, f"resources exhausted: {dimension}")

    def accept(self, node_id: str, stops: Sequence[Allocation], places: Sequence[Allocation]) -> None:
        rows, used = self._node(node_id)
        evaluated = self._evaluated.pop(node_id, None)
        if evaluated is not None and evaluated[0] is stops and evaluated[1] is places:
            # evaluate() summed the node's usage with exactly these (nothing of the node
            # changed since: check_plan accepts a node after evaluating it): only the rows move
            for a in stops:
                old = self.current(node_id, rows, a.id)
                if old is not None:
                    rows[a.id] = dataclasses.replace(old, desired_status=AllocDesiredStatus.STOP)
            for a in places:
                rows[a.id] = a
            used[:] = evaluated[2]
            return
        for a in stops:
            old = self.current(node_id, rows, a.id)
            if old is not None:
                self._put(
                    node_id, rows, used, dataclasses.replace(old, desired_status=AllocDesiredStatus.STOP)
                )
        for a in places:
            self._put(node_id, rows, used, a)

    def allocs(self, node_id: str) -> dict[str, Allocation]:
        """Every current row of the node (tests compare :meth:`evaluate` against this)."""
        rows, _ = self._node(node_id)
        out = {a.id: a for a in store_allocs.allocs_by_node(self.snap, node_id)}
        out.update(rows)
        return out


def _job_ref(job: Job | None) -> tuple[str, str, int] | None:
    return None if job is None else (job.namespace, job.id, job.job_modify_index)


def check_plan(plan: Plan, overlay: _Overlay) -> tuple[PlanResult, bool]:
    """The part of ``plan`` that may be committed, and whether some node was refused."""
    accepted_alloc: dict[str, tuple[Allocation, ...]] = {}
    accepted_update: dict[str, tuple[Allocation, ...]] = {}
    partial = False
    job = plan.job
    # placements name their job's version (fsm/plan.py): it must still be stored
    job_gone = job is not None and (
        store_jobs.job_of_modify_index(overlay.snap, job.namespace, job.id, job.job_modify_index) is None
    )
    for node_id in sorted(set(plan.node_allocation) | set(plan.node_update)):
        stops = plan.node_update.get(node_id, ())
        places = plan.node_allocation.get(node_id, ())
        if job_gone and places:
            logger.debug("plan placements refused: job version gone eval_id=%s", plan.eval_id)
            partial, places = True, ()
            if plan.all_at_once:
                return PlanResult(), True
        node = overlay.snap.get(NODES_TABLE, node_id)
        ok, reason = overlay.evaluate(node, node_id, stops, places)
        if not ok:
            logger.debug("plan node rejected eval_id=%s node_id=%s reason=%s", plan.eval_id, node_id, reason)
            partial = True
            if plan.all_at_once:
                return PlanResult(), True
            continue
        if places:
            accepted_alloc[node_id] = places
        if stops:
            accepted_update[node_id] = stops
    for node_id, places in accepted_alloc.items():
        overlay.accept(node_id, accepted_update.get(node_id, ()), places)
    for node_id, stops in accepted_update.items():
        if node_id not in accepted_alloc:
            overlay.accept(node_id, stops, ())
    return PlanResult(node_allocation=accepted_alloc, node_update=accepted_update), partial


# ---- the applier -------------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class _Pending:
    plan: Plan
    evals: tuple[Evaluation, ...]
    future: asyncio.Future[PlanResult]


@dataclasses.dataclass(slots=True)
class _Entry:
    """One checked batch on its way through Raft."""

    items: list[tuple[_Pending, PlanResult, bool]]
    request: PlanResultsEntry | None  # None: nothing to commit (every plan refused or empty, no evals)
    placed: dict[str, list[Allocation]]  # node ID -> placements, for the overlay of later batches


class PlanApplier:
    """Leader-only: ``await applier.submit(plan, evals)`` -> the committed :class:`PlanResult`.

    Up to ``max_inflight`` entries are in Raft at once: while one commits, the plans queued
    behind it are checked (against state plus the in-flight placements) and proposed, so the
    applier's rate is not one Raft round trip per batch. pysyncobj commits entries in the order
    they were proposed, and they are proposed in the order they were checked.
    """

    def __init__(
        self,
        ctx: ServerContext,
        *,
        max_inflight: int = MAX_ENTRIES_IN_FLIGHT,
        tasks: Supervisor | None = None,
    ) -> None:
        self._ctx = ctx
        self._store = ctx.store
        self._max_inflight = max_inflight
        self._queue: asyncio.Queue[_Pending] | None = None
        self._tasks = tasks or Supervisor("plan-applier")
        self._task: asyncio.Task[None] | None = None
        self._inflight: dict[int, _Entry] = {}
        self._slots: asyncio.Semaphore | None = None
        self._seq = 0
        self.committed_placements = 0  # as leader, since start (/v1/metrics, benchmarks, tests)

    def set_enabled(self, enabled: bool) -> None:
        if enabled and self._task is None:
            self._queue = asyncio.Queue()
            self._slots = asyncio.Semaphore(self._max_inflight)
            # Vital: without this loop every submitted plan waits forever and the leader
            # stops scheduling while it keeps the leadership.
            self._task = self._tasks.spawn(self._run(), "plan-applier", vital=True)
        elif not enabled and self._task is not None:
            self._task = None
            self._tasks.cancel_all()  # the loop and the commits in flight
            for entry in self._inflight.values():
                _fail(entry.items, NoLeaderError("leadership lost"))
            self._inflight.clear()
            queue, self._queue = self._queue, None
            while queue is not None and not queue.empty():
                item = queue.get_nowait()
                if not item.future.done():
                    item.future.set_exception(NoLeaderError("leadership lost"))

    async def submit(self, plan: Plan, evals: Iterable[Evaluation] = ()) -> PlanResult:
        if self._queue is None:
            raise NoLeaderError("plan applier is not running on this server")
        fut: asyncio.Future[PlanResult] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(plan, tuple(evals), fut))
        return await fut

    async def _run(self) -> None:
        assert self._queue is not None and self._slots is not None
        queue, slots = self._queue, self._slots
        while True:
            batch = [await queue.get()]
            await slots.acquire()  # wait for a slot first: the check then sees the newest state
            placements = batch[0].plan.placements()
            while (
                len(batch) < MAX_PLANS_PER_ENTRY
                and placements < MAX_PLACEMENTS_PER_ENTRY
                and not queue.empty()
            ):
                item = queue.get_nowait()
                batch.append(item)
                placements += item.plan.placements()
            try:
                entry = self._check(batch)
            except Exception as err:
                slots.release()
                logger.warning("plan check failed plans=%d err=%r", len(batch), err)
                _fail([(item, PlanResult(), False) for item in batch], err)
                continue
            self._seq += 1
            self._inflight[self._seq] = entry
            self._tasks.spawn(self._commit(self._seq, entry), "plan-commit")

    def _check(self, batch: list[_Pending]) -> _Entry:
        start = time.monotonic()
        overlay = _Overlay(self._store.snapshot(), [e.placed for e in self._inflight.values()])
        items: list[tuple[_Pending, PlanResult, bool]] = []
        plans: list[PlanEntry] = []
        evals: list[Evaluation] = []
        placed: dict[str, list[Allocation]] = {}
        for item in batch:
            result, partial = check_plan(item.plan, overlay)
            items.append((item, result, partial))
            evals.extend(item.evals)
            deployment = item.plan.deployment
            updates = item.plan.deployment_updates
            if not result.node_allocation and not result.node_update and deployment is None and not updates:
                continue
            for node_id, allocs in result.node_allocation.items():
                placed.setdefault(node_id, []).extend(allocs)
            plans.append(
                PlanEntry(
                    job=item.plan.job,
                    job_ref=_job_ref(item.plan.job),
                    placements=tuple(a for v in result.node_allocation.values() for a in v),
                    stops=tuple(a for v in result.node_update.values() for a in v),
                    deployment=deployment,
                    deployment_updates=updates,
                )
            )
        request = PlanResultsEntry(plans=tuple(plans), evals=tuple(evals)) if plans or evals else None
        telemetry.measure_since("nomad.nomad.plan.evaluate", start)
        return _Entry(items=items, request=request, placed=placed)

    async def _commit(self, seq: int, entry: _Entry) -> None:
        assert self._slots is not None
        slots = self._slots
        try:
            index = self._store.latest_index()
            if entry.request is not None:
                start = time.monotonic()
                _, index = await self._ctx.propose(MessageType.PLAN_RESULTS, entry.request)
                telemetry.measure_since("nomad.nomad.plan.apply", start)
        except asyncio.CancelledError:
            _fail(entry.items, NoLeaderError("leadership lost"))
            raise
        except Exception as err:
            logger.warning("plan apply failed plans=%d err=%r", len(entry.items), err)
            _fail(entry.items, err)
            return
        finally:
            self._inflight.pop(seq, None)
            slots.release()
        for item, result, partial in entry.items:
            self.committed_placements += sum(len(v) for v in result.node_allocation.values())
            done = fast_replace(result, alloc_index=index, refresh_index=index if partial else 0)
            if not item.future.done():
                item.future.set_result(done)

    async def shutdown(self) -> None:
        self._task = None
        await self._tasks.aclose()


def _fail(items: Iterable[tuple[_Pending, PlanResult, bool]], err: BaseException) -> None:
    for item, _, _ in items:
        if not item.future.done():
            item.future.set_exception(err)
