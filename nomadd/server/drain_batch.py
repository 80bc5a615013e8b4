"""Which allocations a node drain moves now (Nomad's drainer handleTaskGroup), as pure functions.

Per task group of a service job with allocations on draining nodes: an allocation counts
*settled* when it runs, is not itself marked to migrate and its health is known
(:func:`alloc_health`: healthy, or judged unhealthy — Nomad's ``DeploymentStatus.HasHealth``, so
a replacement that never gets healthy cannot hold a drain forever). The drainer marks as many
more as keep ``count - migrate.max_parallel`` settled::

    to_mark = min(unmarked allocations on draining nodes, settled - (count - max_parallel))

so with ``max_parallel = 1`` one allocation moves, and the next only once its replacement is
healthy. Batch allocations are never marked here (they may finish until the drain's deadline);
system allocations go last (:func:`node_remaining`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping

from nomadd.structs.alloc import Allocation, AllocClientStatus, TaskState, TaskStatus
from nomadd.structs.job import JobType, TaskGroup
from nomadd.structs.migrate import DEFAULT_MIGRATE, MigrateStrategy
from nomadd.structs.node import Node
from nomadd.structs.timeutil import ZERO_TIME, parse_time

__all__ = ["alloc_health", "group_to_mark", "is_system", "node_remaining", "replacements_pending"]


def _reported_health(alloc: Allocation) -> bool | None:
    """``DeploymentStatus.Healthy`` as the client reports it, when this nomadd has the field
    (an object with ``healthy`` or Nomad's API mapping)."""
    status = getattr(alloc, "deployment_status", None)
    if status is None:
        return None
    healthy = status.get("Healthy") if isinstance(status, Mapping) else getattr(status, "healthy", None)
    return healthy if isinstance(healthy, bool) else None


def _watched(alloc: Allocation) -> Mapping[str, TaskState]:
    """The task states health is judged on: main tasks and sidecars (a prestart or poststart
    task that runs to completion, and a poststop task, do not run while the allocation is up)."""
    tg = alloc.job.lookup_task_group(alloc.task_group) if alloc.job is not None else None
    if tg is None:
        return alloc.task_states
    skip = {t.name for t in tg.tasks if t.lifecycle is not None and not t.lifecycle.sidecar}
    return {name: s for name, s in alloc.task_states.items() if name not in skip}


def alloc_health(alloc: Allocation, strategy: MigrateStrategy, now_ns: int) -> bool | None:
    """True healthy, False unhealthy, None not known yet.

    The client's report wins; else the server judges from task states: every task running for
    ``min_healthy_time`` is healthy; a failed allocation or task, or no health by
    ``healthy_deadline`` after the allocation was made, is unhealthy."""
    reported = _reported_health(alloc)
    if reported is not None:
        return reported
    states = _watched(alloc).values()
    if alloc.client_status == AllocClientStatus.FAILED or any(s.failed for s in states):
        return False
    running = alloc.client_status == AllocClientStatus.RUNNING and bool(states)
    if running and all(s.state == TaskStatus.RUNNING and s.started_at != ZERO_TIME for s in states):
        started = max(parse_time(s.started_at) for s in states)
        if now_ns - started >= strategy.min_healthy_time:
            return True
    if alloc.create_time and now_ns - alloc.create_time > strategy.healthy_deadline:
        return False
    return None


def group_to_mark(
    tg: TaskGroup, allocs: Iterable[Allocation], draining: Collection[str], now_ns: int
) -> list[Allocation]:
    """The allocations of service group ``tg`` (``allocs``: the job's) to mark for migration now."""
    strategy = tg.migrate or DEFAULT_MIGRATE
    settled = 0
    drainable: list[Allocation] = []
    for alloc in allocs:
        if alloc.task_group != tg.name:
            continue
        marked = alloc.desired_transition.migrate
        if not alloc.terminal() and not marked and alloc_health(alloc, strategy, now_ns) is not None:
            settled += 1
        if alloc.node_id in draining and not alloc.terminal() and not marked:
            drainable.append(alloc)
    room = settled - (tg.count - strategy.max_parallel)
    if room <= 0 or not drainable:
        return []
    drainable.sort(key=lambda a: (a.index(), a.create_index, a.id))
    return drainable[:room]


def is_system(alloc: Allocation) -> bool:
    job_type = alloc.job.type if alloc.job is not None else alloc.job_type
    return job_type == JobType.SYSTEM


def node_remaining(node: Node, allocs: Iterable[Allocation]) -> tuple[list[Allocation], list[Allocation]]:
    """``(others, system)``: the allocations still on draining ``node`` — not yet terminal on
    its client — and its system allocations the drain moves (none when it ignores them)."""
    strategy = node.drain_strategy
    ignore_system = strategy is not None and strategy.ignore_system_jobs
    others: list[Allocation] = []
    system: list[Allocation] = []
    for alloc in allocs:
        if alloc.client_terminal():
            continue
        if not is_system(alloc):
            others.append(alloc)
        elif not ignore_system:
            system.append(alloc)
    return others, system


def replacements_pending(
    moved: Iterable[Allocation], lookup: Callable[[str], Allocation | None], now_ns: int
) -> list[str]:
    """IDs of the replacements of ``moved`` (allocations migrated off a draining node) whose
    health is not known yet. A drain completes only when this is empty (or its deadline
    passed): Nomad completes it when the last old allocation stopped, so its replacement may
    still be starting when an agent with ``drain_on_shutdown`` exits; here the work is running
    elsewhere first. A replacement that failed, or was itself replaced or removed, holds
    nothing up."""
    pending = []
    for old in moved:
        if not old.desired_transition.migrate or not old.next_allocation or old.job is None:
            continue
        tg = old.job.lookup_task_group(old.task_group)
        new = lookup(old.next_allocation)
        if tg is None or new is None or new.server_terminal() or new.next_allocation:
            continue
        if alloc_health(new, tg.migrate or DEFAULT_MIGRATE, now_ns) is None:
            pending.append(new.id)
    return pending
