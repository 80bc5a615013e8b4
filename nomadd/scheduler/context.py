"""Per-evaluation context: the plan being built and the allocations it creates or stops."""

from __future__ import annotations

import dataclasses
import os
import random
import time
from collections.abc import Callable, Iterator

from nomadd.structs.alloc import (
    Allocation,
    AllocClientStatus,
    AllocDesiredStatus,
    AllocMetric,
    DesiredTransition,
    RescheduleTracker,
)
from nomadd.structs.codec import constructor
from nomadd.structs.codec_diff import replacer
from nomadd.structs.deployment import AllocDeploymentStatus, Deployment, DeploymentStatusUpdate
from nomadd.structs.job import Job, TaskGroup
from nomadd.structs.plan import Plan
from nomadd.structs.resources import (
    AllocatedResources,
    AllocatedSharedResources,
    AllocatedTaskResources,
)

__all__ = [
    "ALLOC_IN_PLACE",
    "ALLOC_LOST",
    "ALLOC_MIGRATING",
    "ALLOC_NODE_TAINTED",
    "ALLOC_NOT_NEEDED",
    "ALLOC_REPLACED",
    "ALLOC_RESCHEDULED",
    "ALLOC_UPDATING",
    "Env",
    "PlanBuilder",
    "allocated_resources",
]

# Nomad's desired-description strings (scheduler/reconcile_util.go, generic_sched.go).
ALLOC_NOT_NEEDED = "alloc not needed due to job update"
ALLOC_MIGRATING = "alloc is being migrated"
ALLOC_UPDATING = "alloc is being updated due to job update"
ALLOC_LOST = "alloc is lost since its node is down"
ALLOC_IN_PLACE = "alloc updating in-place"
ALLOC_NODE_TAINTED = "alloc not needed as node is tainted"
ALLOC_RESCHEDULED = "alloc was rescheduled because it failed"
ALLOC_REPLACED = "alloc was replaced while its node was down"


_UUID_POOL_BYTES = 4096  # random bytes read per os.urandom call: 256 IDs
# (random bytes, offsets not handed out yet). Read and replaced as one tuple, and an offset
# comes from next() on a range iterator (atomic under the GIL): threads never share an offset.
_uuid_pool: tuple[bytes, Iterator[int]] = (b"", iter(()))


def _uuid() -> str:
    """``str(uuid.uuid4())`` at a sixth of its cost (one per placement): 16 random bytes from
    a pool filled by os.urandom 256 IDs at a time (a system call per ID was half the cost),
    with the version-4 and RFC 4122 variant bits set, formatted 8-4-4-4-12."""
    global _uuid_pool
    data, offsets = _uuid_pool
    i = next(offsets, -1)
    if i < 0:
        data = os.urandom(_UUID_POOL_BYTES)
        _uuid_pool = (data, iter(range(16, _UUID_POOL_BYTES, 16)))
        i = 0
    h = data[i : i + 16].hex()
    # version nibble 4; variant: the top two bits of byte 8 are 10 (hex digit 8, 9, a or b)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[data[i + 8] >> 4 & 3]}{h[17:20]}-{h[20:]}"


def _reset_uuid_pool() -> None:
    """A forked child must not hand out the IDs its parent will (same pool)."""
    global _uuid_pool
    _uuid_pool = (b"", iter(()))


os.register_at_fork(after_in_child=_reset_uuid_pool)


_new_alloc = constructor(Allocation)  # Allocation(...) at a third of the cost
# A placement is a copy of its group's template in the plan (the fields all of the group's
# placements share) with these set: one positional call, not nineteen keywords, per placement.
_placed = replacer(
    Allocation,
    "id",
    "name",
    "node_id",
    "node_name",
    "allocated_resources",
    "task_states",
    "previous_allocation",
    "reschedule_tracker",
    "metrics",
    "deployment_id",
    "deployment_status",
)
# the default, shared (frozen): a plan's placements then encode it once, not once each
_NO_TRANSITION = DesiredTransition()


@dataclasses.dataclass(slots=True)
class Env:
    """Randomness, IDs and time for one scheduler (injected by tests for determinism)."""

    rng: random.Random
    new_id: Callable[[], str] = _uuid
    now_ns: Callable[[], int] = time.time_ns

    @classmethod
    def make(
        cls,
        seed: int | None = None,
        new_id: Callable[[], str] | None = None,
        now_ns: Callable[[], int] | None = None,
    ) -> Env:
        rng = _SHARED_RNG if seed is None else random.Random(seed)
        return cls(rng, new_id or _uuid, now_ns or time.time_ns)


# Unseeded schedulers share one generator: seeding a new one from the OS costs more than
# a small evaluation's scheduling (only seeded ones, in tests, need their own sequence).
_SHARED_RNG = random.Random()


def allocated_resources(tg: TaskGroup) -> AllocatedResources:
    return AllocatedResources(
        tasks={t.name: AllocatedTaskResources.from_ask(t.resources) for t in tg.tasks},
        shared=AllocatedSharedResources(disk_mb=tg.ephemeral_disk.size_mb),
    )


class PlanBuilder:
    """The mutable side of a :class:`Plan` while one evaluation is processed.

    Every allocation the plan creates, updates or stops gets the plan's one timestamp as its
    create/modify time (Nomad's plan applier stamps a plan's allocations with one ``now``).
    """

    __slots__ = (
        "deployment",
        "deployment_updates",
        "env",
        "eval_id",
        "freed",
        "job",
        "node_allocation",
        "node_update",
        "now",
        "stopped",
        "templates",
    )

    def __init__(self, eval_id: str, job: Job | None, env: Env) -> None:
        self.eval_id = eval_id
        self.job = job
        self.env = env
        self.now = env.now_ns()
        self.node_update: dict[str, list[Allocation]] = {}
        self.node_allocation: dict[str, list[Allocation]] = {}
        self.stopped: set[str] = set()
        # per node: (alloc id, resources) of stopped allocations that were still in use
        self.freed: dict[str, list[tuple[str, tuple[int, int, int]]]] = {}
        self.deployment: Deployment | None = None  # a new one goes into the plan (scheduler/deployments.py)
        self.deployment_updates: list[DeploymentStatusUpdate] = []
        self.templates: dict[str, tuple[Job, Allocation]] = {}  # group -> (its job, template)

    def stop(
        self, alloc: Allocation, description: str, client_status: AllocClientStatus | None = None
    ) -> tuple[int, int, int] | None:
        """Stop ``alloc`` (Nomad's AppendStoppedAlloc); ``client_status`` e.g. lost.

        Returns the resources this frees (None when the allocation was not using any).
        """
        stopped = dataclasses.replace(
            alloc,
            job=None,
            desired_status=AllocDesiredStatus.STOP,
            desired_description=description,
            client_status=client_status or alloc.client_status,
            modify_time=self.now,
        )
        self.node_update.setdefault(alloc.node_id, []).append(stopped)
        self.stopped.add(alloc.id)
        if alloc.terminal():
            return None
        res = alloc.allocated_resources.comparable()
        self.freed.setdefault(alloc.node_id, []).append((alloc.id, res))
        return res

    def unstop(self, alloc_id: str, node_id: str) -> tuple[int, int, int] | None:
        """Take a stop back out of the plan (its replacement could not be placed).

        Returns the resources the stop had freed (None if the allocation was not in use).
        """
        stops = self.node_update.get(node_id, [])
        for i, stopped in enumerate(stops):
            if stopped.id == alloc_id:
                del stops[i]
                if not stops:
                    del self.node_update[node_id]
                self.stopped.discard(alloc_id)
                break
        freed = self.freed.get(node_id, [])
        for i, (fid, res) in enumerate(freed):
            if fid == alloc_id:
                del freed[i]
                return res
        return None

    def update_in_place(self, alloc: Allocation, job: Job) -> None:
        updated = dataclasses.replace(
            alloc,
            job=None,
            job_version=job.version,
            desired_description=ALLOC_IN_PLACE,
            eval_id=self.eval_id,
            modify_time=self.now,
        )
        self.node_allocation.setdefault(alloc.node_id, []).append(updated)

    def place(
        self,
        *,
        job: Job,
        tg: TaskGroup,
        name: str,
        node_id: str,
        node_name: str,
        resources: AllocatedResources,
        metrics: AllocMetric,
        previous: Allocation | None = None,
        tracker: RescheduleTracker | None = None,
        deployment_id: str = "",
        canary: bool = False,
    ) -> Allocation:
        kept = self.templates.get(tg.name)
        if kept is None or kept[0] is not job:
            kept = self.templates[tg.name] = (job, self._template(job, tg))
        alloc = _placed(
            kept[1],
            self.env.new_id(),
            name,
            node_id,
            node_name,
            resources,
            {},  # task_states: the client's, later
            previous.id if previous is not None else "",
            tracker,
            metrics,
            deployment_id,
            AllocDeploymentStatus(canary=True) if deployment_id and canary else None,
        )
        self.node_allocation.setdefault(node_id, []).append(alloc)
        return alloc

    def _template(self, job: Job, tg: TaskGroup) -> Allocation:
        """What every placement of ``tg`` in this plan has in common."""
        return _new_alloc(
            namespace=job.namespace,
            eval_id=self.eval_id,
            job_id=job.id,
            job_type=str(job.type),
            job_version=job.version,
            task_group=tg.name,
            desired_transition=_NO_TRANSITION,
            create_time=self.now,
            modify_time=self.now,
        )

    def placements(self) -> int:
        return sum(len(v) for v in self.node_allocation.values())

    def is_no_op(self) -> bool:
        return not (self.node_update or self.node_allocation or self.deployment or self.deployment_updates)

    def build(self, snapshot_index: int) -> Plan:
        job = self.job
        return Plan(
            eval_id=self.eval_id,
            priority=job.priority if job is not None else 50,
            all_at_once=job.all_at_once if job is not None else False,
            job=job,
            node_update={k: tuple(v) for k, v in self.node_update.items()},
            node_allocation={k: tuple(v) for k, v in self.node_allocation.items()},
            snapshot_index=snapshot_index,
            deployment=self.deployment,
            deployment_updates=tuple(self.deployment_updates),
        )
