"""Register → eval broker → worker → scheduler → plan applier → allocations, on one fake-Raft
server (real FSM, state store, endpoints and scheduling service)."""

from __future__ import annotations

import asyncio
from typing import Any

from nomadd.server.state import store_allocs, store_evals
from nomadd.structs.alloc import AllocClientStatus
from nomadd.structs.eval import EvalStatus, EvalTrigger
from nomadd.structs.messages import MessageType
from nomadd.structs.node import NodeStatus
from tests.unit.server.fakes import FakeServer, api_job, wait_until


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def _live(server: FakeServer, job_id: str) -> list[Any]:
    snap = server.store.snapshot()
    return [a for a in store_allocs.allocs_by_job(snap, "default", job_id) if not a.terminal()]


def _eval(server: FakeServer, eval_id: str) -> Any:
    return store_evals.get_eval(server.store.snapshot(), eval_id)


def test_register_places_allocations_and_completes_eval() -> None:
    async def main() -> None:
        server = FakeServer()
        for _ in range(2):
            await server.add_node()
        server.scheduling.set_enabled(True)
        try:
            reply = await server.register_job(api_job(count=3))
            assert reply.eval_create_index == reply.meta.index
            await wait_until(lambda: _eval(server, reply.eval_id).status == EvalStatus.COMPLETE)
            allocs = _live(server, "web")
            assert len(allocs) == 3
            assert sorted(a.name for a in allocs) == ["web.g[0]", "web.g[1]", "web.g[2]"]
            assert all(a.job is not None and a.job.job_modify_index == reply.job_modify_index for a in allocs)
            # job and eval were one entry; placements + eval outcome two more at most
            assert server.raft.applied.count(MessageType.JOB_REGISTER) == 1
        finally:
            server.scheduling.set_enabled(False)

    _run(main())


def test_no_capacity_blocks_then_new_node_unblocks() -> None:
    async def main() -> None:
        server = FakeServer()
        server.scheduling.set_enabled(True)
        try:
            reply = await server.register_job(api_job(count=2))
            await wait_until(lambda: _eval(server, reply.eval_id).status == EvalStatus.COMPLETE)
            ev = _eval(server, reply.eval_id)
            assert ev.blocked_eval
            assert ev.failed_tg_allocs["g"].nodes_evaluated == 0
            assert _eval(server, ev.blocked_eval).status == EvalStatus.BLOCKED
            await server.add_node()
            await wait_until(lambda: len(_live(server, "web")) == 2, what="placed after node joined")
            await wait_until(lambda: _eval(server, ev.blocked_eval).status == EvalStatus.COMPLETE)
        finally:
            server.scheduling.set_enabled(False)

    _run(main())


def test_node_down_marks_lost_and_replaces_then_back_stops_nothing_live() -> None:
    async def main() -> None:
        server = FakeServer()
        n1 = await server.add_node()
        server.scheduling.set_enabled(True)
        try:
            await server.register_job(api_job(count=2))
            await wait_until(lambda: len(_live(server, "web")) == 2)
            n2 = await server.add_node()
            await server.set_node_status(n1.id, NodeStatus.DOWN)

            def replaced() -> bool:
                live = _live(server, "web")
                return len(live) == 2 and all(a.node_id == n2.id for a in live)

            await wait_until(replaced, what="replacements on the other node")
            snap = server.store.snapshot()
            old = [a for a in store_allocs.allocs_by_node(snap, n1.id)]
            assert old and all(a.client_status == AllocClientStatus.LOST for a in old)
            assert all(a.next_allocation for a in old)
            evals = store_evals.list_evals(snap)
            assert any(e.triggered_by == EvalTrigger.NODE_UPDATE and e.node_id == n1.id for e in evals)
        finally:
            server.scheduling.set_enabled(False)

    _run(main())


def test_restore_after_election_enqueues_pending_evals() -> None:
    async def main() -> None:
        server = FakeServer()
        await server.add_node()
        reply = await server.register_job(api_job(count=1))
        assert _eval(server, reply.eval_id).status == EvalStatus.PENDING
        server.scheduling.set_enabled(True)  # "won the election": restore from state
        try:
            await wait_until(lambda: _eval(server, reply.eval_id).status == EvalStatus.COMPLETE)
            assert len(_live(server, "web")) == 1
        finally:
            server.scheduling.set_enabled(False)

    _run(main())


def test_restored_store_keeps_indexes_working() -> None:
    async def main() -> None:
        server = FakeServer()
        node = await server.add_node()
        server.scheduling.set_enabled(True)
        try:
            await server.register_job(api_job(count=2))
            await wait_until(lambda: len(_live(server, "web")) == 2)
            before = sorted(a.id for a in store_allocs.allocs_by_node(server.store.snapshot(), node.id))
            server.store.restore(server.store.dump())  # index rows come back as IDs
            snap = server.store.snapshot()
            assert sorted(a.id for a in store_allocs.allocs_by_node(snap, node.id)) == before
            assert all(a.job is not None for a in store_allocs.allocs_by_job(snap, "default", "web"))
            await server.register_job(api_job(count=3))
            await wait_until(lambda: len(_live(server, "web")) == 3, what="scale up after restore")
        finally:
            server.scheduling.set_enabled(False)

    _run(main())


def test_node_usage_index_matches_allocations() -> None:
    async def main() -> None:
        from nomadd.scheduler.protocols import NodeUsageIndex
        from nomadd.server.worker import SnapshotState

        server = FakeServer()
        n1 = await server.add_node()
        server.scheduling.set_enabled(True)

        def check() -> None:
            snap = server.store.snapshot()
            want = [0, 0, 0]
            for a in store_allocs.allocs_by_node(snap, n1.id):
                if not a.terminal():
                    for i, v in enumerate(a.allocated_resources.comparable()):
                        want[i] += v
            state = SnapshotState(snap)
            assert isinstance(state, NodeUsageIndex)
            assert state.node_usage(n1.id) == tuple(want)

        try:
            await server.register_job(api_job(count=3))
            await wait_until(lambda: len(_live(server, "web")) == 3)
            check()
            assert store_allocs.node_usage(server.store.snapshot(), n1.id)[0] == 300
            first = _live(server, "web")[0]
            await server.update_allocs([first], AllocClientStatus.COMPLETE)
            await wait_until(lambda: len(_live(server, "web")) == 2, what="client update applied")
            check()
            assert store_allocs.node_usage(server.store.snapshot(), n1.id)[0] == 200
            await server.deregister_job("web")
            await wait_until(lambda: _live(server, "web") == [])
            check()
            assert store_allocs.node_usage(server.store.snapshot(), n1.id) == (0, 0, 0)
        finally:
            server.scheduling.set_enabled(False)

    _run(main())
