"""Node.* RPCs on a one-process fake server (real FSM, store and endpoint; no sockets)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from nomadd.rpc.wire import decode_request, encode
from nomadd.scheduler.testing import mock_node
from nomadd.server.state import store_allocs, store_nodes
from nomadd.structs.alloc import AllocClientStatus, TaskState, TaskStatus
from nomadd.structs.errors import PermissionDeniedError, UnknownNodeError, ValidationError
from nomadd.structs.node import DrainStrategy, Node, NodeEligibility, NodeStatus
from nomadd.structs.requests import Envelope
from nomadd.structs.requests.node import (
    NODE_DEREGISTER,
    NODE_GET,
    NODE_HEARTBEAT_STATS,
    NODE_LIST,
    NODE_REGISTER,
    NODE_UPDATE_DRAIN,
    NODE_UPDATE_ELIGIBILITY,
    NODE_UPDATE_STATUS,
    HeartbeatStatsRequest,
    NodeDeregisterRequest,
    NodeHeartbeatReply,
    NodeListRequest,
    NodeRegisterRequest,
    NodeServerInfo,
    NodeSpecificRequest,
    NodeUpdateDrainRequest,
    NodeUpdateEligibilityRequest,
    NodeUpdateStatusRequest,
)
from nomadd.structs.requests.system import SYSTEM_GARBAGE_COLLECT
from tests.unit.server import fakes


class FakeServer(fakes.FakeServer):
    def node(self, node_id: str) -> Node:
        n = store_nodes.get(self.store.snapshot(), node_id)
        assert n is not None
        return n

    async def register(self, node: Node) -> NodeHeartbeatReply:
        return await self.rpc(NODE_REGISTER, NodeRegisterRequest(node=node))

    async def status(
        self, node_id: str, secret: str, status: NodeStatus, *, leave: bool = False
    ) -> NodeHeartbeatReply:
        req = NodeUpdateStatusRequest(node_id=node_id, secret_id=secret, status=status, leave=leave)
        return await self.rpc(NODE_UPDATE_STATUS, req)

    async def eligibility(self, node_id: str, elig: NodeEligibility) -> None:
        await self.rpc(
            NODE_UPDATE_ELIGIBILITY, NodeUpdateEligibilityRequest(node_id=node_id, eligibility=elig)
        )


def _node(node_id: str = "n-1", secret: str = "s-1") -> Node:
    return Node(id=node_id, secret_id=secret, name=node_id, attributes={"os.name": "debian"})


def _run(fn: Callable[[FakeServer], Any]) -> None:
    async def main() -> None:
        server = FakeServer()
        for c in server.components:
            c.set_enabled(True)
        try:
            await fn(server)
        finally:
            for c in server.components:
                c.set_enabled(False)

    asyncio.run(main())


@pytest.mark.slow
def test_register_heartbeat_expire_and_return() -> None:
    async def body(s: FakeServer) -> None:
        reply = await s.register(_node())
        assert 0.2 <= reply.heartbeat_ttl < 0.4
        assert reply.servers == (NodeServerInfo(rpc_advertise_addr="127.0.0.1:4646", datacenter="dc1"),)
        assert reply.num_nodes == 1
        assert reply.node_modify_index == reply.meta.index > 0
        assert s.node("n-1").status == NodeStatus.INITIALIZING
        await s.status("n-1", "s-1", NodeStatus.READY)
        assert s.node("n-1").status == NodeStatus.READY
        index = s.raft.index
        await s.status("n-1", "s-1", NodeStatus.READY)
        assert s.raft.index == index  # an unchanged status is not committed
        deadline = asyncio.get_running_loop().time() + 3
        while s.node("n-1").status != NodeStatus.DOWN:  # ttl + grace <= 0.5 s
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.02)
        assert s.node("n-1").events[-1].message == "Node heartbeat missed"
        await s.status("n-1", "s-1", NodeStatus.READY)
        assert s.node("n-1").status == NodeStatus.READY
        assert s.node("n-1").events[-1].message == "Node reregistered by heartbeat"

    _run(body)


def test_bad_wire_requests_are_refused_with_the_field() -> None:
    """What the internal RPC decodes: a wrong status or eligibility is a 400 naming the field."""
    with pytest.raises(ValidationError, match="status"):
        decode_request(
            NodeUpdateStatusRequest, encode({"node_id": "n-1", "secret_id": "s-1", "status": "bogus"})
        )
    with pytest.raises(ValidationError, match="eligibility"):
        decode_request(NodeUpdateEligibilityRequest, encode({"node_id": "n-1", "eligibility": "maybe"}))
    with pytest.raises(ValidationError, match="node_ids"):
        decode_request(NodeDeregisterRequest, encode({"node_ids": "n-1"}))
    req = decode_request(NodeUpdateStatusRequest, encode({"node_id": "n-1", "status": "down", "leave": True}))
    assert (req.status, req.leave, req.secret_id) == (NodeStatus.DOWN, True, "")


@pytest.mark.slow
def test_leave_errors_eligibility_reads_purge_and_gc() -> None:
    async def body(s: FakeServer) -> None:
        await s.register(_node())
        await s.register(_node("n-2", "s-2"))
        with pytest.raises(PermissionDeniedError):
            await s.status("n-1", "bad", NodeStatus.READY)
        with pytest.raises(PermissionDeniedError):
            await s.register(_node(secret="other"))
        with pytest.raises(UnknownNodeError):
            await s.status("nope", "x", NodeStatus.READY)
        with pytest.raises(ValidationError):
            await s.register(_node(secret=""))
        left = await s.status("n-1", "s-1", NodeStatus.DOWN, leave=True)
        assert left.heartbeat_ttl == 0.0
        assert s.node("n-1").status == NodeStatus.DOWN
        assert s.node("n-1").events[-1].message == "Node left"
        stats = await s.rpc(NODE_HEARTBEAT_STATS, HeartbeatStatsRequest())
        assert stats.active_timers == 1  # n-2 only
        await s.eligibility("n-2", NodeEligibility.INELIGIBLE)
        assert s.node("n-2").scheduling_eligibility == "ineligible"
        with pytest.raises(UnknownNodeError):
            await s.eligibility("nope", NodeEligibility.INELIGIBLE)
        got = await s.rpc(NODE_GET, NodeSpecificRequest(node_id="n-2"))
        assert got.node is not None and got.node.secret_id == ""
        assert got.node.id == "n-2"
        listed = await s.rpc(NODE_LIST, NodeListRequest(prefix="n-2", os=True))
        assert [n.id for n in listed.nodes] == ["n-2"]
        assert listed.nodes[0].attributes == {"os.name": "debian"}
        assert listed.nodes[0].node_resources is None
        # a blocking list wakes on a change
        waiting = asyncio.ensure_future(
            s.rpc(NODE_LIST, NodeListRequest(min_query_index=listed.meta.index, max_query_time_s=5))
        )
        await asyncio.sleep(0.05)
        assert not waiting.done()
        await s.eligibility("n-2", NodeEligibility.ELIGIBLE)
        assert (await asyncio.wait_for(waiting, 5)).meta.index > listed.meta.index
        # forced GC removes the down node at once, not the live one
        gc = await s.rpc(SYSTEM_GARBAGE_COLLECT, Envelope())
        assert gc.nodes_removed == ("n-1",)
        assert store_nodes.get(s.store.snapshot(), "n-1") is None
        # purge
        purged = await s.rpc(NODE_DEREGISTER, NodeDeregisterRequest(node_ids=("n-2",)))
        assert purged.node_ids == ("n-2",)
        assert store_nodes.list_nodes(s.store.snapshot()) == []
        with pytest.raises(UnknownNodeError):
            await s.rpc(NODE_DEREGISTER, NodeDeregisterRequest(node_ids=("n-2",)))

    _run(body)


def test_follower_decoding_the_node_entries_builds_the_same_state() -> None:
    """Every node entry (and the clients' alloc updates) applied from its bytes on a follower
    gives the rows the leader applied from its own copy: entries carry every time and ID."""

    async def main() -> None:
        s = FakeServer(min_heartbeat_ttl=60.0)
        s.scheduling.set_enabled(True)
        s.nodes.timers.set_enabled(True)
        try:
            for node_id in ("n-1", "n-2"):
                node = mock_node(node_id, secret_id=f"s-{node_id[-1]}", status=NodeStatus.INITIALIZING)
                await s.register(node)
                await s.status(node_id, node.secret_id, NodeStatus.READY)
            await s.register_job(fakes.api_job(count=2))
            await fakes.wait_until(lambda: len(store_allocs.list_allocs(s.store.snapshot())) == 2)
            allocs = store_allocs.list_allocs(s.store.snapshot())
            running = {"t": TaskState(state=TaskStatus.RUNNING, started_at="2026-01-01T00:00:00Z")}
            await s.update_allocs(allocs, AllocClientStatus.RUNNING, task_states=running)
            await s.eligibility("n-2", NodeEligibility.INELIGIBLE)
            drain = NodeUpdateDrainRequest(
                node_id="n-1", drain_strategy=DrainStrategy(deadline=-1), meta={"why": "kernel"}
            )
            await s.rpc(NODE_UPDATE_DRAIN, drain)
            assert await s.nodes.drainer.check() == ["n-1"]
            await s.status("n-2", "s-2", NodeStatus.DOWN, leave=True)
            await s.rpc(NODE_DEREGISTER, NodeDeregisterRequest(node_ids=("n-2",)))
        finally:
            s.nodes.timers.set_enabled(False)
            s.scheduling.set_enabled(False)
        follower = s.follower().store.snapshot()
        leader = s.store.snapshot()
        for table in (store_nodes.TABLE, store_allocs.TABLE):
            assert dict(follower.table(table)) == dict(leader.table(table)), table
        node = store_nodes.get(leader, "n-1")
        assert node is not None and node.last_drain is not None and node.last_drain.meta == {"why": "kernel"}

    asyncio.run(main())
