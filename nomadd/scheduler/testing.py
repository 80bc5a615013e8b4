"""``Harness``: an in-memory ``State`` and recording ``Planner`` for scheduler tests.

Usable by anyone's tests (no Raft, no sockets)::

    h = Harness()
    node = h.add_node()
    ev = h.register(mock_job(count=3))
    h.process(ev)
    assert len(h.live_allocs(ev.job_id)) == 3

Plans are applied like the server's plan applier would (``evaluate_node_plan`` per node,
``Plan.job`` attached to stored allocations, ``next_allocation`` set on replaced ones).
IDs and time are deterministic: ``new_id()`` counts, ``now`` only moves when a test moves it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable, Mapping, Sequence

from nomadd.scheduler.protocols import State
from nomadd.structs.alloc import Allocation, AllocClientStatus, DesiredTransition, TaskState, TaskStatus
from nomadd.structs.deployment import AllocDeploymentStatus, Deployment
from nomadd.structs.eval import EvalStatus, EvalTrigger, Evaluation
from nomadd.structs.funcs import evaluate_node_plan
from nomadd.structs.job import Job, JobType, Task, TaskGroup
from nomadd.structs.node import (
    DriverInfo,
    Node,
    NodeCpuResources,
    NodeDiskResources,
    NodeMemoryResources,
    NodeResources,
    NodeStatus,
)
from nomadd.structs.plan import Plan, PlanResult
from nomadd.structs.resources import Resources
from nomadd.structs.timeutil import NS_PER_S

__all__ = ["HARNESS_START_NS", "Harness", "mock_job", "mock_node"]

HARNESS_START_NS = 1_700_000_000 * NS_PER_S


def mock_node(node_id: str, **kw: object) -> Node:
    """A ready node with 4000 MHz, 8192 MB, 100 GB disk and healthy raw_exec/exec drivers."""
    node = Node(
        id=node_id,
        secret_id=f"secret-{node_id}",
        name=f"node-{node_id[-6:]}",
        datacenter="dc1",
        attributes={
            "kernel.name": "linux",
            "os.name": "debian",
            "cpu.arch": "amd64",
            "nomad.version": "0.1.0",
            "driver.raw_exec": "true",
            "unique.hostname": f"host-{node_id[-6:]}",
        },
        node_resources=NodeResources(
            cpu=NodeCpuResources(cpu_shares=4000, total_cpu_cores=4),
            memory=NodeMemoryResources(memory_mb=8192),
            disk=NodeDiskResources(disk_mb=100_000),
        ),
        drivers={
            "raw_exec": DriverInfo(detected=True, healthy=True),
            "exec": DriverInfo(detected=True, healthy=True),
        },
        status=NodeStatus.READY,
    )
    return dataclasses.replace(node, **kw).with_computed_class()  # type: ignore[arg-type]


def mock_job(
    job_id: str = "web",
    *,
    count: int = 3,
    job_type: JobType | str = JobType.SERVICE,
    cpu: int = 500,
    memory_mb: int = 256,
    **kw: object,
) -> Job:
    """A canonicalized one-group, one-task raw_exec job."""
    job = Job(
        id=job_id,
        type=JobType(job_type),
        datacenters=("dc1",),
        task_groups=(
            TaskGroup(
                name="web",
                count=count,
                tasks=(
                    Task(
                        name="web",
                        driver="raw_exec",
                        config={"command": "/bin/sleep", "args": ["1000"]},
                        resources=Resources(cpu=cpu, memory_mb=memory_mb),
                    ),
                ),
            ),
        ),
    )
    return dataclasses.replace(job, **kw).canonicalize()  # type: ignore[arg-type]


class Harness:
    """In-memory state store + recording planner."""

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = seed
        self.index = 1
        self.now = HARNESS_START_NS
        self._ids = 0
        self._nodes: dict[str, Node] = {}
        self._node_seq: tuple[Node, ...] | None = None  # nodes(), until the next node write
        self._jobs: dict[tuple[str, str], Job] = {}
        self._allocs: dict[str, Allocation] = {}
        self._by_job: dict[tuple[str, str], dict[str, Allocation]] = {}
        self._by_node: dict[str, dict[str, Allocation]] = {}
        self._usage: dict[str, list[int]] = {}  # NodeUsageIndex
        self.evals: dict[str, Evaluation] = {}
        self.deployments: dict[str, Deployment] = {}
        self.plans: list[Plan] = []
        self.results: list[PlanResult] = []
        self.created_evals: list[Evaluation] = []
        self.updated_evals: list[Evaluation] = []
        self.reblocked_evals: list[Evaluation] = []
        self.reject_nodes: set[str] = set()  # the "plan applier" refuses placements here
        self.reject_once: set[str] = set()  # ... only in the next plan (a lost race)
        self.refreshes = 0

    # ---------------------------------------------------------------- ids, time, indexes

    def new_id(self) -> str:
        self._ids += 1
        return f"00000000-0000-4000-8000-{self._ids:012d}"

    def clock(self) -> int:
        return self.now

    def _next_index(self) -> int:
        self.index += 1
        return self.index

    # ---------------------------------------------------------------- writes (test setup)

    def add_node(self, **kw: object) -> Node:
        return self.upsert_node(mock_node(self.new_id(), **kw))

    def upsert_node(self, node: Node) -> Node:
        index = self._next_index()
        old = self._nodes.get(node.id)
        node = dataclasses.replace(node, create_index=old.create_index if old else index, modify_index=index)
        self._nodes[node.id] = node
        self._node_seq = None
        return node

    def update_node(self, node_id: str, **changes: object) -> Node:
        return self.upsert_node(dataclasses.replace(self._nodes[node_id], **changes))  # type: ignore[arg-type]

    def upsert_job(self, job: Job) -> Job:
        """Store a job; an identical spec changes nothing, a changed one makes a new version."""
        key = (job.namespace, job.id)
        old = self._jobs.get(key)
        if old is not None and old.spec_equal(job):
            return old
        index = self._next_index()
        job = dataclasses.replace(
            job,
            version=old.version + 1 if old else 0,
            create_index=old.create_index if old else index,
            modify_index=index,
            job_modify_index=index,
            submit_time=self.now,
        )
        self._jobs[key] = job
        return job

    def upsert_allocs(self, allocs: Iterable[Allocation], job: Job | None = None) -> None:
        index = self._next_index()
        for alloc in allocs:
            old = self._allocs.get(alloc.id)
            attach = job if job is not None else (old.job if old is not None else alloc.job)
            stored = dataclasses.replace(
                alloc,
                job=alloc.job or attach,
                create_index=old.create_index if old else index,
                modify_index=index,
                alloc_modify_index=index,
            )
            self._put(stored)
            prev = self._allocs.get(stored.previous_allocation) if stored.previous_allocation else None
            if prev is not None and prev.next_allocation != stored.id:
                self._put(dataclasses.replace(prev, next_allocation=stored.id, modify_index=index))

    def _put(self, alloc: Allocation) -> None:
        old = self._allocs.get(alloc.id)
        usage = self._usage.setdefault(alloc.node_id, [0, 0, 0])
        if old is not None and not old.terminal():
            for i, v in enumerate(old.allocated_resources.comparable()):
                usage[i] -= v
        if not alloc.terminal():
            for i, v in enumerate(alloc.allocated_resources.comparable()):
                usage[i] += v
        self._allocs[alloc.id] = alloc
        self._by_job.setdefault((alloc.namespace, alloc.job_id), {})[alloc.id] = alloc
        self._by_node.setdefault(alloc.node_id, {})[alloc.id] = alloc

    def set_client_status(
        self, alloc_id: str, status: AllocClientStatus, *, failed_task: bool = False
    ) -> Allocation:
        """What a client's alloc update does: new client status and task states."""
        alloc = self._allocs[alloc_id]
        dead = status in (AllocClientStatus.COMPLETE, AllocClientStatus.FAILED)
        states = {
            name: TaskState(
                state=TaskStatus.DEAD if dead else TaskStatus.RUNNING,
                failed=failed_task or status == AllocClientStatus.FAILED,
            )
            for name in alloc.allocated_resources.tasks
        }
        updated = dataclasses.replace(alloc, client_status=status, task_states=states, modify_time=self.now)
        self.upsert_allocs([updated])
        return self._allocs[alloc_id]

    def mark_migrate(self, node_id: str) -> None:
        """What the leader's drainer does to a draining node's allocations (all at once, as at
        the drain's deadline): ``DesiredTransition.Migrate``."""
        marked = DesiredTransition(migrate=True)
        live = [a for a in self.allocs_by_node(node_id) if not a.terminal()]
        self.upsert_allocs([dataclasses.replace(a, desired_transition=marked) for a in live])

    # ---------------------------------------------------------------- State

    def latest_index(self) -> int:
        return self.index

    def nodes(self) -> Iterable[Node]:
        """One tuple until a node is written, as a server's state hands the scheduler."""
        if self._node_seq is None:
            self._node_seq = tuple(self._nodes.values())
        return self._node_seq

    def node_by_id(self, node_id: str) -> Node | None:
        return self._nodes.get(node_id)

    def job_by_id(self, namespace: str, job_id: str) -> Job | None:
        return self._jobs.get((namespace, job_id))

    def allocs_by_job(self, namespace: str, job_id: str) -> Sequence[Allocation]:
        return tuple(self._by_job.get((namespace, job_id), {}).values())

    def allocs_by_node(self, node_id: str) -> Sequence[Allocation]:
        return tuple(self._by_node.get(node_id, {}).values())

    def node_usage(self, node_id: str) -> tuple[int, int, int]:
        cpu, mem, disk = self._usage.get(node_id, (0, 0, 0))
        return cpu, mem, disk

    def node_usage_rows(self) -> Mapping[str, Sequence[int]]:
        return self._usage

    def latest_deployment(self, namespace: str, job_id: str) -> Deployment | None:
        found = [d for d in self.deployments.values() if (d.namespace, d.job_id) == (namespace, job_id)]
        return max(found, key=lambda d: d.create_index) if found else None

    def set_health(self, alloc_id: str, healthy: bool) -> Allocation:
        """What a client's health report does to the allocation's DeploymentStatus."""
        alloc = self._allocs[alloc_id]
        base = alloc.deployment_status or AllocDeploymentStatus()
        self.upsert_allocs(
            [dataclasses.replace(alloc, deployment_status=dataclasses.replace(base, healthy=healthy))]
        )
        return self._allocs[alloc_id]

    def update_deployment(self, deployment_id: str, **changes: object) -> Deployment:
        d = dataclasses.replace(self.deployments[deployment_id], **changes)  # type: ignore[arg-type]
        self.deployments[deployment_id] = d
        return d

    # ---------------------------------------------------------------- Planner

    async def submit_plan(self, plan: Plan) -> PlanResult:
        self.plans.append(plan)
        accepted_alloc: dict[str, tuple[Allocation, ...]] = {}
        accepted_update: dict[str, tuple[Allocation, ...]] = {}
        partial = False
        for node_id in dict.fromkeys([*plan.node_allocation, *plan.node_update]):  # stable order
            stops = plan.node_update.get(node_id, ())
            places = plan.node_allocation.get(node_id, ())
            ok, _ = evaluate_node_plan(self._nodes.get(node_id), self.allocs_by_node(node_id), stops, places)
            if (node_id in self.reject_nodes or node_id in self.reject_once) and places:
                ok = False
            if not ok:
                partial = True
                if plan.all_at_once:
                    accepted_alloc, accepted_update = {}, {}
                    break
                continue
            if places:
                accepted_alloc[node_id] = places
            if stops:
                accepted_update[node_id] = stops
        self.reject_once = set()
        if plan.deployment is not None and plan.deployment.id not in self.deployments:
            self.deployments[plan.deployment.id] = dataclasses.replace(
                plan.deployment, create_index=self._next_index()
            )
        for upd in plan.deployment_updates:
            if upd.deployment_id in self.deployments:
                self.update_deployment(
                    upd.deployment_id, status=upd.status, status_description=upd.status_description
                )
        stopped = [a for allocs in accepted_update.values() for a in allocs]
        placed = [a for allocs in accepted_alloc.values() for a in allocs]
        if stopped:
            self.upsert_allocs(
                dataclasses.replace(
                    self._allocs[a.id],
                    desired_status=a.desired_status,
                    desired_description=a.desired_description,
                    client_status=a.client_status,
                    modify_time=a.modify_time,
                )
                for a in stopped
                if a.id in self._allocs
            )
        if placed:
            self.upsert_allocs((self._merge_client_fields(a, plan.job) for a in placed), job=plan.job)
        result = PlanResult(
            node_allocation=accepted_alloc,
            node_update=accepted_update,
            refresh_index=self.index if partial else 0,
            alloc_index=self.index,
        )
        self.results.append(result)
        return result

    def _merge_client_fields(self, alloc: Allocation, job: Job | None) -> Allocation:
        """In-place updates keep what the client reported (Nomad's upsertAllocsImpl)."""
        old = self._allocs.get(alloc.id)
        if old is None:
            return dataclasses.replace(alloc, job=job)
        return dataclasses.replace(
            alloc,
            job=job,
            client_status=old.client_status,
            client_description=old.client_description,
            task_states=old.task_states,
        )

    async def refresh_state(self, min_index: int) -> State:
        self.refreshes += 1
        return self

    async def update_eval(self, evaluation: Evaluation) -> None:
        self.updated_evals.append(evaluation)
        self.evals[evaluation.id] = evaluation

    async def create_eval(self, evaluation: Evaluation) -> None:
        self.created_evals.append(evaluation)
        self.evals[evaluation.id] = evaluation

    async def reblock_eval(self, evaluation: Evaluation) -> None:
        self.reblocked_evals.append(evaluation)
        self.evals[evaluation.id] = evaluation

    # ---------------------------------------------------------------- driving schedulers

    def make_eval(
        self,
        job: Job,
        trigger: EvalTrigger = EvalTrigger.JOB_REGISTER,
        *,
        node_id: str = "",
    ) -> Evaluation:
        ev = Evaluation(
            id=self.new_id(),
            namespace=job.namespace,
            priority=job.priority,
            type=str(job.type),
            triggered_by=trigger,
            job_id=job.id,
            job_modify_index=job.job_modify_index,
            node_id=node_id,
            status=EvalStatus.PENDING,
            create_time=self.now,
            modify_time=self.now,
        )
        self.evals[ev.id] = ev
        return ev

    def register(self, job: Job) -> Evaluation:
        """Store the job and return its job-register evaluation (not yet processed)."""
        return self.make_eval(self.upsert_job(job))

    async def aprocess(self, evaluation: Evaluation) -> None:
        """Run the job type's scheduler over ``evaluation`` (inside a running loop)."""
        from nomadd.scheduler import SCHEDULERS

        factory = SCHEDULERS[evaluation.type]
        sched = factory(self, self, seed=self.seed, new_id=self.new_id, now_ns=self.clock)
        await sched.process(evaluation)

    def process(self, evaluation: Evaluation) -> None:
        """Run the job type's scheduler over ``evaluation`` to completion."""
        asyncio.run(self.aprocess(evaluation))

    def run(self, job: Job) -> Evaluation:
        """Register and process; returns the evaluation as the scheduler left it."""
        ev = self.register(job)
        self.process(ev)
        return self.evals[ev.id]

    # ---------------------------------------------------------------- queries for asserts

    def alloc(self, alloc_id: str) -> Allocation:
        return self._allocs[alloc_id]

    def all_allocs(self, job_id: str, namespace: str = "default") -> list[Allocation]:
        return sorted(self.allocs_by_job(namespace, job_id), key=lambda a: (a.name, a.create_index))

    def live_allocs(self, job_id: str, namespace: str = "default") -> list[Allocation]:
        """Allocations the servers want running (desired run, client not terminal)."""
        return [a for a in self.all_allocs(job_id, namespace) if not a.terminal()]

    def job(self, job_id: str, namespace: str = "default") -> Job:
        job = self._jobs[(namespace, job_id)]
        return job
