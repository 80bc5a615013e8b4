"""Reconciliation for service and batch jobs: desired task groups vs existing allocations.

For each task group the existing allocations are sorted into:

* **live** — desired ``run``, client not terminal, node fine: kept, updated in place (only
  ``count`` or other non-task fields changed) or destructively (stop + place, same name);
* **lost** — node down, disconnected or gone: stopped with client status ``lost`` and replaced
  (groups with ``disconnect {}``: :mod:`nomadd.scheduler.disconnect` decides first);
* **migrate** — ``DesiredTransition.Migrate`` (``alloc stop``, or the drainer's mark: on a
  draining node only the allocations it marked move, ``migrate.max_parallel`` at a time):
  stopped and replaced elsewhere;
* **replaced** — already replaced (``NextAllocation`` set) yet still desired ``run``, e.g. on a
  node that came back after being down: stopped;
* **failed** — rescheduled now, later (a follow-up evaluation) or never, per ReschedulePolicy;
* **done** — batch allocations that completed successfully: never replaced.

Then the count is applied: running allocations keep their names first, then the ones being
replaced, then failed ones waiting for (or out of) reschedule attempts; the surplus is stopped
(highest indexes first among equals) and missing names are placed, lowest free ``[index]`` first
(``Reconciled.new``: one lazy :class:`NewPlacements` per group, whatever the count).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator

from nomadd.scheduler import disconnect
from nomadd.scheduler.context import (
    ALLOC_LOST,
    ALLOC_MIGRATING,
    ALLOC_NOT_NEEDED,
    ALLOC_REPLACED,
    ALLOC_RESCHEDULED,
    ALLOC_UPDATING,
)
from nomadd.scheduler.disconnect import ALLOC_RECONNECTED
from nomadd.structs.alloc import (
    Allocation,
    AllocClientStatus,
    AllocDesiredStatus,
    RescheduleEvent,
    RescheduleTracker,
    alloc_name,
)
from nomadd.structs.construct import constructor
from nomadd.structs.job import Job, TaskGroup
from nomadd.structs.node import Node, NodeStatus
from nomadd.structs.policy import ReschedulePolicy
from nomadd.structs.timeutil import NS_PER_S, parse_time

__all__ = [
    "RESCHEDULE_WINDOW_NS",
    "NewPlacements",
    "Placement",
    "Reconciled",
    "Stop",
    "next_reschedule_time",
    "reconcile",
    "reschedule_tracker",
    "tasks_updated",
]

RESCHEDULE_WINDOW_NS = NS_PER_S  # Nomad's rescheduleWindowSize: due within 1 s counts as now


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Placement:
    """One allocation to place. ``previous`` is the one it replaces (lost, migrated...)."""

    group: str
    name: str
    previous: Allocation | None = None
    reschedule: bool = False  # previous failed: add a RescheduleEvent, avoid its node
    canary: bool = False  # placed beside the old version until promoted (scheduler/deployments.py)


_new_placement = constructor(Placement)  # Placement(...) at half the cost: one per new allocation


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Stop:
    alloc: Allocation
    description: str
    client_status: AllocClientStatus | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NewPlacements:
    """``count`` new allocations of ``group``, named lazily: the lowest free ``[index]`` first.

    A count of 10^9 costs one of these, not 10^9 :class:`Placement` objects; the scheduler
    draws names only while placements succeed (it coalesces the rest after the first failure).
    """

    group: str
    count: int
    job_id: str
    used_names: frozenset[str] = frozenset()

    def __iter__(self) -> Iterator[Placement]:
        missing = self.count
        index = 0
        while missing > 0:
            name = alloc_name(self.job_id, self.group, index)
            index += 1
            if name in self.used_names:
                continue
            yield _new_placement(group=self.group, name=name)
            missing -= 1


@dataclasses.dataclass(slots=True)
class Reconciled:
    place: list[Placement] = dataclasses.field(default_factory=list)  # replacements
    new: list[NewPlacements] = dataclasses.field(default_factory=list)
    stop: list[Stop] = dataclasses.field(default_factory=list)
    inplace: list[Allocation] = dataclasses.field(default_factory=list)
    followups: list[tuple[Allocation, int]] = dataclasses.field(default_factory=list)
    desired: dict[str, int] = dataclasses.field(default_factory=dict)


def tasks_updated(old_job: Job, old: TaskGroup, new_job: Job, new: TaskGroup) -> bool:
    """Whether moving from ``old`` to ``new`` needs new allocations (Nomad's tasksUpdated).

    Only ``count`` and policy changes can be applied in place.
    """
    return (
        old.tasks != new.tasks
        or old.networks != new.networks
        or old.ephemeral_disk != new.ephemeral_disk
        or old.constraints != new.constraints
        or old.meta != new.meta
        or old_job.constraints != new_job.constraints
        or old_job.datacenters != new_job.datacenters
        or old_job.node_pool != new_job.node_pool
        or old_job.meta != new_job.meta
    )


def _delay(policy: ReschedulePolicy, tracker: RescheduleTracker | None) -> int:
    events = tracker.events if tracker is not None else ()
    if policy.delay_function == "constant" or not events:
        delay = policy.delay
    elif policy.delay_function == "exponential":
        delay = events[-1].delay * 2
    else:  # fibonacci
        delay = events[-1].delay + (events[-2].delay if len(events) > 1 else 0)
    if policy.max_delay > 0:
        delay = min(delay, policy.max_delay)
    return delay


def _fail_time(alloc: Allocation) -> int:
    latest = 0
    for state in alloc.task_states.values():
        if state.finished_at:
            latest = max(latest, parse_time(state.finished_at))
    return latest or alloc.modify_time


def next_reschedule_time(
    alloc: Allocation, policy: ReschedulePolicy | None, now_ns: int
) -> tuple[int, int] | None:
    """``(when, delay)`` a failed allocation may be replaced, or None if it may not be."""
    if alloc.desired_transition.force_reschedule:
        return now_ns, 0
    if policy is None or (not policy.unlimited and policy.attempts <= 0):
        return None
    tracker = alloc.reschedule_tracker
    if not policy.unlimited and tracker is not None:
        window_start = now_ns - policy.interval
        recent = sum(1 for ev in tracker.events if ev.reschedule_time > window_start)
        if recent >= policy.attempts:
            return None
    delay = _delay(policy, tracker)
    return _fail_time(alloc) + delay, delay


def _tainted(node: Node | None) -> str:
    if node is None or node.status in (NodeStatus.DOWN, NodeStatus.DISCONNECTED):
        return "lost"
    return ""  # a draining node is fine: its allocations move when the drainer marks them


def _needs_update(alloc: Allocation, job: Job) -> bool:
    if alloc.job is not None:
        return alloc.job is not job and alloc.job.job_modify_index != job.job_modify_index
    return alloc.job_version != job.version


def reconcile(
    job: Job | None,
    allocs: Iterable[Allocation],
    node_of: Callable[[str], Node | None],
    now_ns: int,
    *,
    batch: bool,
) -> Reconciled:
    """What to place, stop and update so the job's allocations match its task groups."""
    out = Reconciled()
    by_group: dict[str, list[Allocation]] = {}
    for alloc in allocs:
        by_group.setdefault(alloc.task_group, []).append(alloc)
    stopped = job is None or job.stop
    groups = {} if stopped or job is None else {tg.name: tg for tg in job.task_groups}
    for name, items in by_group.items():
        if name not in groups:
            for alloc in items:
                if alloc.desired_status == AllocDesiredStatus.RUN and not alloc.client_terminal():
                    lost = _tainted(node_of(alloc.node_id)) == "lost"
                    out.stop.append(
                        Stop(
                            alloc=alloc,
                            description=ALLOC_LOST if lost else ALLOC_NOT_NEEDED,
                            client_status=AllocClientStatus.LOST if lost else None,
                        )
                    )
    if job is None or stopped:
        return out
    for tg in job.task_groups:
        _group(out, job, tg, by_group.get(tg.name, []), node_of, now_ns, batch)
    return out


def _group(
    out: Reconciled,
    job: Job,
    tg: TaskGroup,
    allocs: list[Allocation],
    node_of: Callable[[str], Node | None],
    now_ns: int,
    batch: bool,
) -> None:
    out.desired[tg.name] = tg.count
    if not allocs:  # a new group (most evaluations of a new job): every name is to place
        if tg.count > 0:
            out.new.append(NewPlacements(group=tg.name, count=tg.count, job_id=job.id))
        return
    split = disconnect.split(tg, allocs, node_of, now_ns)
    allocs = split.rest
    out.followups.extend(split.mark_unknown)
    out.stop.extend(
        Stop(alloc=a, description=ALLOC_LOST, client_status=AllocClientStatus.LOST) for a in split.lost
    )
    out.stop.extend(Stop(alloc=a, description=ALLOC_RECONNECTED) for a in split.stop)
    out.place.extend(Placement(group=tg.name, name=a.name, previous=a) for a in split.replace)
    live: list[Allocation] = []
    lost: list[Allocation] = []
    migrate: list[Allocation] = []
    done: list[Allocation] = []  # successful batch allocations: hold their name for good
    resched_now: list[Allocation] = []
    resched_later: list[tuple[Allocation, int]] = []
    failed_for_good: list[Allocation] = []
    for alloc in allocs:
        if alloc.desired_status != AllocDesiredStatus.RUN:
            continue
        if alloc.client_terminal():
            if batch and alloc.ran_successfully():
                done.append(alloc)
            elif alloc.client_status == AllocClientStatus.FAILED and not alloc.next_allocation:
                due = next_reschedule_time(alloc, tg.reschedule_policy, now_ns)
                if due is None:
                    failed_for_good.append(alloc)
                elif due[0] <= now_ns + RESCHEDULE_WINDOW_NS:
                    resched_now.append(alloc)
                else:
                    resched_later.append((alloc, due[0]))
            continue
        if alloc.next_allocation:
            out.stop.append(Stop(alloc=alloc, description=ALLOC_REPLACED))
            continue
        taint = _tainted(node_of(alloc.node_id))
        if taint == "lost":
            lost.append(alloc)
        elif alloc.desired_transition.migrate:
            migrate.append(alloc)
        else:
            live.append(alloc)

    # Who keeps one of the group's ``count`` names: running allocations first (lowest indexes
    # first, so a count reduction stops the highest), then those to be replaced now, then
    # failed ones waiting for their reschedule delay or out of attempts. Successful batch
    # allocations always keep theirs.
    def order(items: list[Allocation]) -> list[Allocation]:
        return sorted(items, key=lambda a: (a.index(), a.create_index, a.id))

    due_at = dict((a.id, when) for a, when in resched_later)
    ranked = [(a, "live") for a in order(live)]
    ranked += [(a, "migrate") for a in order(migrate)]
    ranked += [(a, "lost") for a in order(lost)]
    ranked += [(a, "resched") for a in order(resched_now)]
    ranked += [(a, "later") for a in order([a for a, _ in resched_later])]
    ranked += [(a, "failed") for a in order(failed_for_good)]
    slots = max(0, tg.count - len(done) - len(split.taken))
    keep, drop = ranked[:slots], ranked[slots:]
    for alloc, kind in drop:
        if kind == "lost":
            out.stop.append(Stop(alloc=alloc, description=ALLOC_LOST, client_status=AllocClientStatus.LOST))
        else:
            out.stop.append(Stop(alloc=alloc, description=ALLOC_NOT_NEEDED))
    used_names: set[str] = {a.name for a in done} | split.taken
    for alloc, kind in keep:
        used_names.add(alloc.name)
        if kind == "live":
            if not _needs_update(alloc, job):
                continue
            old_tg = alloc.job.lookup_task_group(tg.name) if alloc.job is not None else None
            if alloc.job is not None and old_tg is not None and not tasks_updated(alloc.job, old_tg, job, tg):
                out.inplace.append(alloc)
            else:
                out.stop.append(Stop(alloc=alloc, description=ALLOC_UPDATING))
                out.place.append(Placement(group=tg.name, name=alloc.name, previous=alloc))
        elif kind == "migrate":
            out.stop.append(Stop(alloc=alloc, description=ALLOC_MIGRATING))
            out.place.append(Placement(group=tg.name, name=alloc.name, previous=alloc))
        elif kind == "lost":
            out.stop.append(Stop(alloc=alloc, description=ALLOC_LOST, client_status=AllocClientStatus.LOST))
            out.place.append(Placement(group=tg.name, name=alloc.name, previous=alloc))
        elif kind == "resched":
            out.stop.append(Stop(alloc=alloc, description=ALLOC_RESCHEDULED))
            out.place.append(Placement(group=tg.name, name=alloc.name, previous=alloc, reschedule=True))
        elif kind == "later" and not alloc.follow_up_eval_id:
            out.followups.append((alloc, due_at[alloc.id]))
        elif kind == "failed" and _needs_update(alloc, job):
            # out of reschedule attempts, but of an older version: a new version replaces it
            # (Nomad's destructive update of a failed allocation, e.g. after an auto-revert)
            out.stop.append(Stop(alloc=alloc, description=ALLOC_UPDATING))
            out.place.append(Placement(group=tg.name, name=alloc.name, previous=alloc))
    missing = slots - len(keep)
    if missing > 0:
        out.new.append(
            NewPlacements(group=tg.name, count=missing, job_id=job.id, used_names=frozenset(used_names))
        )


def reschedule_tracker(previous: Allocation, now_ns: int, delay: int) -> RescheduleTracker:
    """The tracker of a replacement for failed ``previous`` (its events plus this one)."""
    events = previous.reschedule_tracker.events if previous.reschedule_tracker else ()
    event = RescheduleEvent(
        reschedule_time=now_ns,
        prev_alloc_id=previous.id,
        prev_node_id=previous.node_id,
        delay=delay,
    )
    return RescheduleTracker(events=(*events, event))
