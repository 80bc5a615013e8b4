"""The RPCs clients use: Node.GetClientAllocs (blocking, secret-checked), Alloc.GetAllocs,
Node.UpdateAlloc (batched into one entry; failed → alloc-failure eval); Alloc.Stop, Alloc.GetAlloc,
Alloc.List and the Eval reads."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from nomadd.server.state import store_allocs, store_evals
from nomadd.structs.alloc import Allocation, AllocClientStatus, TaskState, TaskStatus
from nomadd.structs.errors import PermissionDeniedError, UnknownAllocError, UnknownNodeError
from nomadd.structs.eval import EvalTrigger
from nomadd.structs.messages import MessageType
from nomadd.structs.requests.alloc import (
    ALLOC_GET,
    ALLOC_GET_ALLOCS,
    ALLOC_LIST,
    ALLOC_STOP,
    AllocListRequest,
    AllocsGetRequest,
    AllocSpecificRequest,
)
from nomadd.structs.requests.eval import (
    EVAL_ALLOCATIONS,
    EVAL_GET,
    EVAL_LIST,
    EvalListRequest,
    EvalSpecificRequest,
)
from nomadd.structs.requests.node import (
    NODE_GET_CLIENT_ALLOCS,
    NODE_UPDATE_ALLOC,
    AllocClientUpdate,
    NodeClientAllocsReply,
    NodeSpecificRequest,
    NodeUpdateAllocRequest,
)
from tests.unit.server.fakes import FakeServer, api_job, wait_until


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _placed(server: FakeServer, count: int = 2) -> tuple[Any, list[Allocation]]:
    node = await server.add_node()
    server.scheduling.set_enabled(True)
    await server.register_job(api_job(count=count))
    await wait_until(lambda: len(store_allocs.allocs_by_node(server.store.snapshot(), node.id)) == count)
    return node, store_allocs.allocs_by_node(server.store.snapshot(), node.id)


async def _client_allocs(server: FakeServer, node_id: str, secret: str, **env: Any) -> NodeClientAllocsReply:
    return await server.rpc(
        NODE_GET_CLIENT_ALLOCS, NodeSpecificRequest(node_id=node_id, secret_id=secret, **env)
    )


def test_get_client_allocs_and_get_allocs() -> None:
    async def main() -> None:
        server = FakeServer()
        try:
            node, allocs = await _placed(server)
            reply = await _client_allocs(server, node.id, node.secret_id)
            assert reply.allocs == {a.id: a.alloc_modify_index for a in allocs}
            full = await server.rpc(ALLOC_GET_ALLOCS, AllocsGetRequest(alloc_ids=(*reply.allocs, "nope")))
            got = full.allocs
            assert sorted(a.id for a in got) == sorted(a.id for a in allocs)
            assert all(a.job is not None and a.job.id == "web" for a in got)
            with pytest.raises(PermissionDeniedError):
                await _client_allocs(server, node.id, "wrong")
            with pytest.raises(UnknownNodeError):
                await _client_allocs(server, "missing", "x")
        finally:
            server.scheduling.set_enabled(False)

    _run(main())


def test_get_client_allocs_blocks_until_a_change() -> None:
    async def main() -> None:
        server = FakeServer()
        try:
            node, allocs = await _placed(server, count=1)
            first = await _client_allocs(server, node.id, node.secret_id)
            waiting = asyncio.ensure_future(
                _client_allocs(
                    server, node.id, node.secret_id, min_query_index=first.meta.index, max_query_time_s=5
                )
            )
            await asyncio.sleep(0.05)
            assert not waiting.done()
            await server.deregister_job("web")  # the scheduler stops the alloc
            reply = await asyncio.wait_for(waiting, 5)
            assert reply.meta.index > first.meta.index
            assert reply.allocs[allocs[0].id] > first.allocs[allocs[0].id]
        finally:
            server.scheduling.set_enabled(False)

    _run(main())


def test_update_alloc_batches_and_failed_creates_eval() -> None:
    async def main() -> None:
        server = FakeServer()
        try:
            node, allocs = await _placed(server)
            before = len(server.raft.applied)
            state = TaskState(state=TaskStatus.RUNNING)
            a, b = allocs
            r1, r2 = await asyncio.gather(
                server.update_allocs([a], AllocClientStatus.RUNNING, task_states={"t": state}),
                server.update_allocs([b], AllocClientStatus.FAILED),
            )
            assert r1 == r2
            assert server.raft.applied[before:].count(MessageType.ALLOC_CLIENT_UPDATE) == 1  # one batch
            snap = server.store.snapshot()
            ra = store_allocs.get_alloc(snap, a.id)
            assert ra is not None and ra.client_status == AllocClientStatus.RUNNING
            assert ra.task_states["t"].state == TaskStatus.RUNNING
            assert ra.alloc_modify_index == a.alloc_modify_index  # client updates do not move it
            evals = store_evals.evals_by_job(snap, "default", "web")
            assert any(e.triggered_by == EvalTrigger.ALLOC_FAILURE for e in evals)
            running = (AllocClientUpdate(id=a.id, client_status=AllocClientStatus.RUNNING),)
            with pytest.raises(PermissionDeniedError):
                await server.rpc(
                    NODE_UPDATE_ALLOC,
                    NodeUpdateAllocRequest(node_id=node.id, secret_id="bad", allocs=running),
                )
            other = await server.add_node()  # a client may only report its own allocations
            with pytest.raises(PermissionDeniedError):
                await server.rpc(
                    NODE_UPDATE_ALLOC,
                    NodeUpdateAllocRequest(node_id=other.id, secret_id=other.secret_id, allocs=running),
                )
        finally:
            server.scheduling.set_enabled(False)

    _run(main())


def test_alloc_stop_migrates_and_replaces() -> None:
    async def main() -> None:
        server = FakeServer()
        try:
            _, allocs = await _placed(server, count=1)
            reply = await server.rpc(ALLOC_STOP, AllocSpecificRequest(alloc_id=allocs[0].id))
            assert reply.eval_id and reply.meta.index == server.raft.index
            assert MessageType.ALLOC_UPDATE in server.raft.applied
            ev = await server.rpc(EVAL_GET, EvalSpecificRequest(eval_id=reply.eval_id[:8]))
            assert ev.eval is not None and ev.eval.triggered_by == EvalTrigger.ALLOC_STOP

            def replaced() -> bool:
                live = [a for a in store_allocs.list_allocs(server.store.snapshot()) if not a.terminal()]
                return len(live) == 1 and live[0].id != allocs[0].id

            await wait_until(replaced, what="replacement of the stopped alloc")
            got = await server.rpc(ALLOC_GET, AllocSpecificRequest(alloc_id=allocs[0].id[:8]))
            assert got.alloc is not None and got.alloc.desired_transition.migrate
            assert got.alloc.desired_status == "stop" and got.alloc.next_allocation
            listed = await server.rpc(ALLOC_LIST, AllocListRequest(prefix=allocs[0].id[:8]))
            assert [a.id for a in listed.allocations] == [allocs[0].id]
            placed = await server.rpc(EVAL_ALLOCATIONS, EvalSpecificRequest(eval_id=reply.eval_id))
            assert [a.id for a in placed.allocations] == [got.alloc.next_allocation]
            evals = await server.rpc(EVAL_LIST, EvalListRequest())
            assert reply.eval_id in {e.id for e in evals.evaluations}
            with pytest.raises(UnknownAllocError):
                await server.rpc(ALLOC_STOP, AllocSpecificRequest(alloc_id="missing"))
            missing = await server.rpc(ALLOC_GET, AllocSpecificRequest(alloc_id="missing"))
            assert missing.alloc is None
        finally:
            server.scheduling.set_enabled(False)

    _run(main())


def test_get_client_allocs_wakes_for_its_own_node_only() -> None:
    """A node's blocking query returns when one of ITS allocations is written, not when another
    node's are (each plan apply woke every node's query)."""

    async def main() -> None:
        server = FakeServer()
        try:
            n1, allocs = await _placed(server, count=1)
            n2 = await server.add_node()
            r1 = await _client_allocs(server, n1.id, n1.secret_id)
            r2 = await _client_allocs(server, n2.id, n2.secret_id)
            assert r2.allocs == {}

            def block(node: Any, index: int) -> asyncio.Future[NodeClientAllocsReply]:
                call = _client_allocs(
                    server, node.id, node.secret_id, min_query_index=index, max_query_time_s=5
                )
                return asyncio.ensure_future(call)

            w1, w2 = block(n1, r1.meta.index), block(n2, r2.meta.index)
            await asyncio.sleep(0.05)
            assert not w1.done() and not w2.done()
            await server.update_allocs(allocs, AllocClientStatus.RUNNING)  # node 1's allocation
            before = r1.meta.index
            r1 = await asyncio.wait_for(w1, 5)
            assert r1.meta.index > before
            await asyncio.sleep(0.2)
            assert not w2.done()  # node 2 had nothing written
            await server.register_job(api_job("sys", job_type="system", count=1))  # one on each node
            r2 = await asyncio.wait_for(w2, 5)
            assert len(r2.allocs) == 1
            assert r2.meta.index > r1.meta.index
        finally:
            server.scheduling.set_enabled(False)

    _run(main())
