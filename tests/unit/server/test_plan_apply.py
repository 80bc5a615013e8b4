"""The plan applier re-checks plans against current state (and against plans ahead of them in
the same batch) and commits the rest in one ALLOC_UPDATE entry."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from typing import Any

from nomadd.scheduler.context import allocated_resources
from nomadd.scheduler.testing import mock_job
from nomadd.server.state import store_allocs
from nomadd.structs.alloc import Allocation, AllocDesiredStatus
from nomadd.structs.eval import EvalStatus, Evaluation
from nomadd.structs.messages import MessageType
from nomadd.structs.node import NodeStatus
from nomadd.structs.plan import Plan
from tests.unit.server.test_jobs_fakes import FakeServer


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def _plan(node_id: str, *, cpu: int, n: int = 1, eval_id: str = "e1") -> Plan:
    job = mock_job("web", count=n, cpu=cpu)
    tg = job.task_groups[0]
    allocs = tuple(
        Allocation(
            id=str(uuid.uuid4()),
            eval_id=eval_id,
            name=f"web.web[{i}]",
            node_id=node_id,
            job_id="web",
            task_group=tg.name,
            allocated_resources=allocated_resources(tg),
        )
        for i in range(n)
    )
    return Plan(eval_id=eval_id, job=job, node_allocation={node_id: allocs})


def test_commits_fitting_plan_with_created_evals_in_one_entry() -> None:
    async def main() -> None:
        server = FakeServer()
        node = await server.add_node()
        applier = server.scheduling.applier
        applier.set_enabled(True)
        try:
            blocked = Evaluation(id="b1", job_id="web", type="service", status=EvalStatus.BLOCKED)
            before = len(server.raft.applied)
            result = await applier.submit(_plan(node.id, cpu=1000, n=2), [blocked])
            assert server.raft.applied[before:] == [MessageType.ALLOC_UPDATE]
            assert result.refresh_index == 0 and len(result.node_allocation[node.id]) == 2
            snap = server.store.snapshot()
            stored = store_allocs.allocs_by_node(snap, node.id)
            assert len(stored) == 2 and all(
                a.job is not None and a.create_index == result.alloc_index for a in stored
            )
            assert snap.get("evals", "b1") is not None
        finally:
            applier.set_enabled(False)

    _run(main())


def test_rejects_overcommit_and_node_not_ready() -> None:
    async def main() -> None:
        server = FakeServer()
        node = await server.add_node()  # 4000 MHz
        down = await server.add_node()
        await server.set_node_status(down.id, NodeStatus.DOWN)
        applier = server.scheduling.applier
        applier.set_enabled(True)
        try:
            too_big = await applier.submit(_plan(node.id, cpu=3000, n=2))
            assert too_big.node_allocation == {} and too_big.refresh_index > 0
            on_down = await applier.submit(_plan(down.id, cpu=100))
            assert on_down.node_allocation == {} and on_down.refresh_index > 0
            assert store_allocs.list_allocs(server.store.snapshot()) == []
        finally:
            applier.set_enabled(False)

    _run(main())


def test_batched_plans_see_each_other() -> None:
    async def main() -> None:
        server = FakeServer()
        node = await server.add_node()
        applier = server.scheduling.applier
        applier.set_enabled(True)
        try:
            # both fit alone, not together: submitted at once they share one batch
            r1, r2 = await asyncio.gather(
                applier.submit(_plan(node.id, cpu=3000, eval_id="e1")),
                applier.submit(_plan(node.id, cpu=3000, eval_id="e2")),
            )
            assert (len(r1.node_allocation), len(r2.node_allocation)) == (1, 0)
            assert r2.refresh_index > 0
            assert server.raft.applied.count(MessageType.ALLOC_UPDATE) == 1
        finally:
            applier.set_enabled(False)

    _run(main())


def test_stop_frees_capacity_and_keeps_client_fields_on_inplace_update() -> None:
    async def main() -> None:
        server = FakeServer()
        node = await server.add_node()
        applier = server.scheduling.applier
        applier.set_enabled(True)
        try:
            first = _plan(node.id, cpu=3000)
            await applier.submit(first)
            alloc = first.node_allocation[node.id][0]
            await server.rpc("Node.UpdateAlloc", {"Alloc": [{"id": alloc.id, "client_status": "running"}]})
            stop = dataclasses.replace(alloc, desired_status=AllocDesiredStatus.STOP, desired_description="x")
            second = _plan(node.id, cpu=3000, eval_id="e2")
            result = await applier.submit(dataclasses.replace(second, node_update={node.id: (stop,)}))
            assert len(result.node_allocation[node.id]) == 1
            stored = store_allocs.get_alloc(server.store.snapshot(), alloc.id)
            assert stored is not None and stored.desired_status == AllocDesiredStatus.STOP
            assert stored.client_status == "running"
        finally:
            applier.set_enabled(False)

    _run(main())


def test_disabled_applier_refuses() -> None:
    async def main() -> None:
        server = FakeServer()
        from nomadd.structs.errors import NoLeaderError

        try:
            await server.scheduling.applier.submit(Plan(eval_id="x"))
        except NoLeaderError:
            return
        raise AssertionError("submit on a disabled applier must fail")

    _run(main())
