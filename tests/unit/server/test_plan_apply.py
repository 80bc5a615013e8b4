"""The plan applier re-checks plans against current state (and against plans ahead of them in
the same batch) and commits the rest in one PLAN_RESULTS entry."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator
from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest

from nomadd.scheduler.context import allocated_resources
from nomadd.scheduler.testing import mock_job
from nomadd.server.fsm.plan import decode_plan_results, encode_plan_results
from nomadd.server.job_gc import JobGC
from nomadd.server.plan_apply import PlanApplier
from nomadd.server.state import store_allocs, store_jobs
from nomadd.structs.alloc import Allocation, AllocClientStatus, AllocDesiredStatus
from nomadd.structs.codec import to_wire
from nomadd.structs.errors import NoLeaderError, RaftApplyError
from nomadd.structs.eval import EvalStatus, Evaluation
from nomadd.structs.job import Job
from nomadd.structs.messages import MessageType
from nomadd.structs.node import NodeStatus
from nomadd.structs.plan import Plan
from nomadd.structs.requests.alloc import ALLOC_STOP, AllocSpecificRequest
from nomadd.structs.requests.plan import PlanEntry, PlanResultsEntry
from tests.unit.server.fakes import FakeServer, api_job, wait_until


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


@contextlib.asynccontextmanager
async def _enabled(applier: PlanApplier) -> AsyncIterator[PlanApplier]:
    """The applier running for the block (as on a leader), stopped after it."""
    applier.set_enabled(True)
    try:
        yield applier
    finally:
        applier.set_enabled(False)


async def _web(server: FakeServer) -> Job:
    """The stored job the test plans are for: the FSM attaches the stored version a plan names."""
    await server.register_job(api_job("web"))
    job = store_jobs.get_job(server.store.snapshot(), "default", "web")
    assert job is not None
    return job


def _plan(node_id: str, *, cpu: int, n: int = 1, eval_id: str = "e1", job: Job | None = None) -> Plan:
    tg = mock_job("web", count=n, cpu=cpu).task_groups[0]
    job = job or mock_job("web", count=n, cpu=cpu)
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
        web = await _web(server)
        node = await server.add_node()
        async with _enabled(server.scheduling.applier) as applier:
            blocked = Evaluation(id="b1", job_id="web", type="service", status=EvalStatus.BLOCKED)
            before = len(server.raft.applied)
            result = await applier.submit(_plan(node.id, cpu=1000, n=2, job=web), [blocked])
            assert server.raft.applied[before:] == [MessageType.PLAN_RESULTS]
            assert result.refresh_index == 0 and len(result.node_allocation[node.id]) == 2
            snap = server.store.snapshot()
            stored = store_allocs.allocs_by_node(snap, node.id)
            assert len(stored) == 2 and all(
                a.job is not None and a.create_index == result.alloc_index for a in stored
            )
            assert snap.get("evals", "b1") is not None

    _run(main())


def test_rejects_overcommit_and_node_not_ready() -> None:
    async def main() -> None:
        server = FakeServer()
        web = await _web(server)
        node = await server.add_node()  # 4000 MHz
        down = await server.add_node()
        await server.set_node_status(down.id, NodeStatus.DOWN)
        async with _enabled(server.scheduling.applier) as applier:
            too_big = await applier.submit(_plan(node.id, cpu=3000, n=2, job=web))
            assert too_big.node_allocation == {} and too_big.refresh_index > 0
            on_down = await applier.submit(_plan(down.id, cpu=100, job=web))
            assert on_down.node_allocation == {} and on_down.refresh_index > 0
            assert store_allocs.list_allocs(server.store.snapshot()) == []

    _run(main())


def test_batched_plans_see_each_other() -> None:
    async def main() -> None:
        server = FakeServer()
        web = await _web(server)
        node = await server.add_node()
        async with _enabled(server.scheduling.applier) as applier:
            # both fit alone, not together: submitted at once they share one batch
            r1, r2 = await asyncio.gather(
                applier.submit(_plan(node.id, cpu=3000, eval_id="e1", job=web)),
                applier.submit(_plan(node.id, cpu=3000, eval_id="e2", job=web)),
            )
            assert (len(r1.node_allocation), len(r2.node_allocation)) == (1, 0)
            assert r2.refresh_index > 0
            assert server.raft.applied.count(MessageType.PLAN_RESULTS) == 1

    _run(main())


def test_stop_frees_capacity_and_keeps_client_fields_on_inplace_update() -> None:
    async def main() -> None:
        server = FakeServer()
        web = await _web(server)
        node = await server.add_node()
        async with _enabled(server.scheduling.applier) as applier:
            first = _plan(node.id, cpu=3000, job=web)
            await applier.submit(first)
            alloc = first.node_allocation[node.id][0]
            await server.update_allocs([alloc], AllocClientStatus.RUNNING)
            stop = dataclasses.replace(alloc, desired_status=AllocDesiredStatus.STOP, desired_description="x")
            second = _plan(node.id, cpu=3000, eval_id="e2", job=web)
            result = await applier.submit(dataclasses.replace(second, node_update={node.id: (stop,)}))
            assert len(result.node_allocation[node.id]) == 1
            stored = store_allocs.get_alloc(server.store.snapshot(), alloc.id)
            assert stored is not None and stored.desired_status == AllocDesiredStatus.STOP
            assert stored.client_status == "running"

    _run(main())


def test_disabled_applier_refuses() -> None:
    async def main() -> None:
        server = FakeServer()
        try:
            await server.scheduling.applier.submit(Plan(eval_id="x"))
        except NoLeaderError:
            return
        raise AssertionError("submit on a disabled applier must fail")

    _run(main())


class _GatedRaft:
    """The FakeServer's raft with every PLAN_RESULTS entry held until the test releases it, in order."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.held: list[asyncio.Future[None]] = []
        self.fail_next = False

    async def apply(self, msg_type: int, payload: bytes, **kw: Any) -> tuple[object, int]:
        if msg_type != MessageType.PLAN_RESULTS:
            return await self.inner.apply(msg_type, payload, **kw)  # type: ignore[no-any-return]
        gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.held.append(gate)
        await gate
        return await self.inner.apply(msg_type, payload, **kw)  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def _gated(max_inflight: int = 4) -> tuple[FakeServer, _GatedRaft, PlanApplier]:
    server = FakeServer()
    gated = _GatedRaft(server.raft)
    ctx = dataclasses.replace(server.ctx, raft=gated)  # type: ignore[arg-type]
    applier = PlanApplier(ctx, max_inflight=max_inflight)
    applier.set_enabled(True)
    return server, gated, applier


async def _until(pred: Any) -> None:
    for _ in range(200):
        if pred():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


def test_entries_in_flight_count_their_placements_for_later_plans() -> None:
    async def main() -> None:
        server, gated, applier = await _gated()
        web = await _web(server)
        node = await server.add_node()  # 4000 MHz
        try:
            first = asyncio.ensure_future(applier.submit(_plan(node.id, cpu=3000, eval_id="e1", job=web)))
            await _until(lambda: len(gated.held) == 1)
            # checked and proposed while the first entry is still in Raft: it must see it
            second = asyncio.ensure_future(applier.submit(_plan(node.id, cpu=3000, eval_id="e2", job=web)))
            third = asyncio.ensure_future(applier.submit(_plan(node.id, cpu=500, eval_id="e3", job=web)))
            await _until(lambda: len(gated.held) == 2)
            for gate in gated.held:
                gate.set_result(None)
            r1, r2, r3 = await asyncio.gather(first, second, third)
            assert len(r1.node_allocation[node.id]) == 1 and r1.refresh_index == 0
            assert r2.node_allocation == {} and r2.refresh_index > 0
            assert len(r3.node_allocation[node.id]) == 1
            used = sum(
                a.allocated_resources.comparable()[0]
                for a in store_allocs.allocs_by_node(server.store.snapshot(), node.id)
            )
            assert used == 3500
        finally:
            applier.set_enabled(False)

    _run(main())


def test_stops_in_flight_free_nothing_until_committed() -> None:
    async def main() -> None:
        server, gated, applier = await _gated()
        web = await _web(server)
        node = await server.add_node()
        try:
            placed = asyncio.ensure_future(applier.submit(_plan(node.id, cpu=3000, job=web)))
            await _until(lambda: len(gated.held) == 1)
            gated.held[0].set_result(None)
            alloc = (await placed).node_allocation[node.id][0]
            stop = dataclasses.replace(alloc, desired_status=AllocDesiredStatus.STOP)
            stopping = asyncio.ensure_future(
                applier.submit(Plan(eval_id="e2", node_update={node.id: (stop,)}))
            )
            await _until(lambda: len(gated.held) == 2)
            # the stop is only proposed: if its entry failed, this placement would over-commit
            early = await applier.submit(_plan(node.id, cpu=3000, eval_id="e3", job=web))
            assert early.node_allocation == {} and early.refresh_index > 0
            assert len(gated.held) == 2  # refused at the check: nothing to commit
            gated.held[1].set_result(None)
            await stopping
            late = asyncio.ensure_future(applier.submit(_plan(node.id, cpu=3000, eval_id="e4", job=web)))
            await _until(lambda: len(gated.held) == 3)
            gated.held[2].set_result(None)
            assert len((await late).node_allocation[node.id]) == 1
        finally:
            applier.set_enabled(False)

    _run(main())


def test_in_flight_entries_are_bounded_and_a_failed_one_fails_only_its_plans() -> None:
    async def main() -> None:
        server, gated, applier = await _gated(max_inflight=2)
        web = await _web(server)
        nodes = [await server.add_node() for _ in range(4)]
        try:
            subs = []
            for i, node in enumerate(nodes):
                subs.append(
                    asyncio.ensure_future(applier.submit(_plan(node.id, cpu=100, eval_id=f"e{i}", job=web)))
                )
                await _until(lambda i=i: len(gated.held) == min(i + 1, 2))
            for _ in range(50):
                await asyncio.sleep(0)
            assert len(gated.held) == 2  # the other plans wait for a slot
            gated.held[0].set_exception(RaftApplyError("raft apply failed reason=discarded"))
            await _until(lambda: len(gated.held) == 3)
            while not all(s.done() for s in subs):
                for gate in gated.held:
                    if not gate.done():
                        gate.set_result(None)
                await asyncio.sleep(0)
            with pytest.raises(RaftApplyError):
                subs[0].result()
            assert all(len(s.result().node_allocation) == 1 for s in subs[1:])
        finally:
            applier.set_enabled(False)

    _run(main())


def test_leadership_loss_fails_plans_in_flight() -> None:
    async def main() -> None:
        server, gated, applier = await _gated()
        web = await _web(server)
        node = await server.add_node()
        sub = asyncio.ensure_future(applier.submit(_plan(node.id, cpu=100, job=web)))
        await _until(lambda: len(gated.held) == 1)
        applier.set_enabled(False)
        with pytest.raises(NoLeaderError):
            await sub

    _run(main())


def test_placements_travel_as_base_and_differences_and_the_plans_allocations_are_not_touched() -> None:
    async def main() -> None:
        server = FakeServer()
        web = await _web(server)
        nodes = [await server.add_node() for _ in range(3)]
        async with _enabled(server.scheduling.applier) as applier:
            plan = _plan(nodes[0].id, cpu=100, n=2, job=web)
            extra = dataclasses.replace(
                plan.node_allocation[nodes[0].id][0], id=str(uuid.uuid4()), node_id=nodes[1].id
            )
            plan = dataclasses.replace(plan, node_allocation={**plan.node_allocation, nodes[1].id: (extra,)})
            before = {a.id: to_wire(a) for v in plan.node_allocation.values() for a in v}
            await applier.submit(plan)
            wanted = [a for v in plan.node_allocation.values() for a in v]
            # the leader stored copies: the scheduler's objects are as it built them
            assert {a.id: to_wire(a) for a in wanted} == before
            assert all(a.job is None and a.create_index == 0 for a in wanted)
            snap = server.store.snapshot()
            for a in wanted:
                stored = store_allocs.get_alloc(snap, a.id)
                assert stored is not None and stored.job is not None and stored.job.id == "web"
                assert stored.create_index == stored.modify_index == stored.alloc_modify_index > 0
                keep = {"job": None, "create_index": 0, "modify_index": 0, "alloc_modify_index": 0}
                assert dataclasses.replace(stored, **keep) == a
            _, msg_type, payload = server.raft.entries[-1]
            wire = msgpack.unpackb(payload, raw=False)
            assert msg_type == MessageType.PLAN_RESULTS and len(wire["plans"]) == 1
            sent = wire["plans"][0]
            assert sent["alloc_base"]["job"] is None and len(sent["alloc_diffs"]) == 2
            assert all(set(d) <= {"id", "name", "node_id"} for d in sent["alloc_diffs"])

    _run(main())


def test_plan_results_entry_decodes_to_the_entry_that_was_proposed() -> None:
    """The job travels as its reference (the proposer's copy stays home); entries of the older
    format, with the job inline, still decode to what was proposed."""
    job = mock_job("web", count=3, cpu=100)
    plan = _plan("n1", cpu=100, n=3)
    placements = plan.node_allocation["n1"]
    stop = dataclasses.replace(placements[0], id="old", job=job, desired_status=AllocDesiredStatus.STOP)
    ref = ("default", "web", job.job_modify_index)
    evals = (Evaluation(id="b1", job_id="web", status=EvalStatus.BLOCKED),)
    entry = PlanResultsEntry(
        plans=(PlanEntry(job=job, job_ref=ref, placements=placements, stops=(stop,)), PlanEntry()),
        evals=evals,
    )
    stopped = (dataclasses.replace(stop, job=None),)
    got = decode_plan_results(encode_plan_results(entry))
    assert got == PlanResultsEntry(
        plans=(PlanEntry(job_ref=ref, placements=placements, stops=stopped), PlanEntry()), evals=evals
    )
    older = PlanResultsEntry(plans=(PlanEntry(job=job, placements=placements, stops=(stop,)),), evals=evals)
    got = decode_plan_results(encode_plan_results(older))
    assert got == PlanResultsEntry(
        plans=(PlanEntry(job=job, placements=placements, stops=stopped),), evals=evals
    )


def test_leader_applying_its_own_request_builds_the_state_a_follower_decodes() -> None:
    """The leader's FSM applies the entry structs it proposed (FSM.expect); followers decode the
    bytes into the same structs. Replaying the same entries through a fresh FSM must give equal
    tables: job registers (one alone, then a batch), plans, Alloc.Stop's ALLOC_UPDATE and its
    replacement, and the GC's EVAL_DELETE."""

    async def main() -> None:
        server = FakeServer()
        nodes = [await server.add_node() for _ in range(3)]
        server.scheduling.set_enabled(True)

        def all_complete() -> bool:
            evals = server.store.snapshot().table("evals").values()
            return all(e.status == EvalStatus.COMPLETE for e in evals)

        try:
            await server.register_job(api_job("web", count=4))
            await asyncio.gather(*(server.register_job(api_job(name, count=4)) for name in ("api", "db")))
            await wait_until(
                lambda: len(server.store.snapshot().table(store_allocs.TABLE)) == 12, what="12 placements"
            )
            await wait_until(all_complete, what="evals complete")
            victim = next(iter(server.store.snapshot().table(store_allocs.TABLE)))
            await server.rpc(ALLOC_STOP, AllocSpecificRequest(alloc_id=victim))
            await wait_until(
                lambda: len(server.store.snapshot().table(store_allocs.TABLE)) == 13, what="a replacement"
            )
            await wait_until(all_complete, what="evals complete")
            await server.deregister_job("db", purge=True)
            await wait_until(all_complete, what="evals complete")
            gc = next(c for c in server.components if isinstance(c, JobGC))
            assert (await gc.collect(0.0, 0.0)).evals
        finally:
            server.scheduling.set_enabled(False)
        kinds = {t for _, t, _ in server.raft.entries}
        assert {
            MessageType.JOB_REGISTER,
            MessageType.JOB_REGISTER_BATCH,
            MessageType.PLAN_RESULTS,
            MessageType.ALLOC_UPDATE,
            MessageType.EVAL_DELETE,
        } <= kinds
        leader_snap, follower_snap = server.store.snapshot(), server.follower().store.snapshot()
        for table in (store_allocs.TABLE, "evals", "jobs", "job_versions"):
            assert dict(leader_snap.table(table)) == dict(follower_snap.table(table)), table
        assert len(nodes) == 3

    _run(main())


def test_overlay_usage_check_agrees_with_evaluate_node_plan_over_every_row() -> None:
    """Random states, in-flight placements, in-place updates, stops and earlier plans of the
    batch: the overlay's usage-based check gives evaluate_node_plan's answer on its rows."""
    import random

    from nomadd.server.plan_apply import _Overlay
    from nomadd.structs.alloc import AllocClientStatus
    from nomadd.structs.funcs import evaluate_node_plan
    from nomadd.structs.node import Node

    async def main() -> None:
        rng = random.Random(7)
        server = FakeServer()
        web = await _web(server)
        nodes = [await server.add_node() for _ in range(3)]
        await server.set_node_status(nodes[2].id, NodeStatus.DOWN)
        async with _enabled(server.scheduling.applier) as applier:
            for i in range(12):  # state: allocations of various sizes on the two ready nodes
                await applier.submit(
                    _plan(nodes[i % 2].id, cpu=rng.choice((100, 300, 500)), eval_id=f"s{i}", job=web)
                )
        snap = server.store.snapshot()
        stored = {n.id: list(store_allocs.allocs_by_node(snap, n.id)) for n in nodes}
        checked = 0
        for _ in range(300):
            node = rng.choice(nodes)
            existing = stored[node.id]

            def variant(a: Allocation, node: Node = node) -> Allocation:
                return dataclasses.replace(
                    a,
                    allocated_resources=_plan(node.id, cpu=rng.choice((50, 700, 2500)))
                    .node_allocation[node.id][0]
                    .allocated_resources,
                    client_status=rng.choice((AllocClientStatus.RUNNING, AllocClientStatus.COMPLETE)),
                )

            def fresh(node: Node = node) -> Allocation:
                return _plan(node.id, cpu=rng.choice((100, 900, 3000))).node_allocation[node.id][0]

            inflight = [
                {
                    node.id: [fresh() for _ in range(rng.randrange(2))]
                    + rng.sample(existing, k=min(1, len(existing)))
                }
            ]
            overlay = _Overlay(snap, inflight)
            node_now = snap.get("nodes", node.id)
            if rng.random() < 0.5 and existing:  # an earlier plan of the batch
                earlier_stops, earlier_places = tuple(rng.sample(existing, k=1)), (fresh(), fresh())
                if rng.random() < 0.5:  # as check_plan does it: the usage evaluate() summed is kept
                    overlay.evaluate(node_now, node.id, earlier_stops, earlier_places)
                overlay.accept(node.id, earlier_stops, earlier_places)
                live = [a for a in overlay.allocs(node.id).values() if not a.terminal()]
                assert overlay._used[node.id] == [
                    sum(a.allocated_resources.comparable()[i] for a in live) for i in range(3)
                ]
            stops = (
                tuple(rng.sample(existing, k=rng.randrange(min(3, len(existing)) + 1))) if existing else ()
            )
            places = tuple(
                [fresh() for _ in range(rng.randrange(3))]
                + [variant(a) for a in rng.sample(existing, k=rng.randrange(min(2, len(existing)) + 1))]
            )
            want = evaluate_node_plan(node_now, overlay.allocs(node.id).values(), stops, places)
            assert overlay.evaluate(node_now, node.id, stops, places) == want
            checked += want[0]
        assert 30 < checked < 270  # both answers were exercised

    _run(main())


def test_placements_for_a_purged_job_are_refused_and_dropped_alike_everywhere() -> None:
    """Plans name their job's version instead of carrying it (fsm/plan.py): when that version is
    gone the applier refuses the placements, and an entry that still names it stores nothing on
    the leader (its own struct) and on a follower (the bytes) alike."""

    async def main() -> None:
        server = FakeServer()
        web = await _web(server)
        node = await server.add_node()
        async with _enabled(server.scheduling.applier) as applier:
            await server.deregister_job("web", purge=True)
            refused = await applier.submit(_plan(node.id, cpu=100, job=web))
            assert refused.node_allocation == {} and refused.refresh_index > 0
            plan = _plan(node.id, cpu=100, job=web)
            ref = ("default", "web", web.job_modify_index)
            placements = plan.node_allocation[node.id]
            entry = PlanResultsEntry(plans=(PlanEntry(job=web, job_ref=ref, placements=placements),))
            payload = encode_plan_results(entry)
            await server.raft.apply(MessageType.PLAN_RESULTS, payload, request=entry)
            assert store_allocs.list_allocs(server.store.snapshot()) == []
            assert store_allocs.list_allocs(server.follower().store.snapshot()) == []

    _run(main())
