"""Node.* RPCs on a one-process fake server (real FSM, store and endpoint; no sockets)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from nomadd.server.state import store_nodes
from nomadd.structs.codec import to_wire
from nomadd.structs.errors import PermissionDeniedError, UnknownNodeError, ValidationError
from nomadd.structs.node import Node, NodeStatus
from tests.unit.server import fakes


class FakeServer(fakes.FakeServer):
    def node(self, node_id: str) -> Node:
        n = store_nodes.get(self.store.snapshot(), node_id)
        assert n is not None
        return n


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
        reply = await s.rpc_legacy("Node.Register", {"Node": to_wire(_node())})
        assert 0.2 <= reply["HeartbeatTTL"] < 0.4
        assert reply["Servers"] == [{"RPCAdvertiseAddr": "127.0.0.1:4646", "Datacenter": "dc1"}]
        assert reply["NumNodes"] == 1
        assert s.node("n-1").status == NodeStatus.INITIALIZING
        hb = {"NodeID": "n-1", "SecretID": "s-1", "Status": "ready"}
        await s.rpc_legacy("Node.UpdateStatus", hb)
        assert s.node("n-1").status == NodeStatus.READY
        index = s.raft.index
        await s.rpc_legacy("Node.UpdateStatus", hb)
        assert s.raft.index == index  # an unchanged status is not committed
        deadline = asyncio.get_running_loop().time() + 3
        while s.node("n-1").status != NodeStatus.DOWN:  # ttl + grace <= 0.5 s
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.02)
        assert s.node("n-1").events[-1].message == "Node heartbeat missed"
        await s.rpc_legacy("Node.UpdateStatus", hb)
        assert s.node("n-1").status == NodeStatus.READY
        assert s.node("n-1").events[-1].message == "Node reregistered by heartbeat"

    _run(body)


@pytest.mark.slow
def test_leave_errors_eligibility_reads_purge_and_gc() -> None:
    async def body(s: FakeServer) -> None:
        await s.rpc_legacy("Node.Register", {"Node": to_wire(_node())})
        await s.rpc_legacy("Node.Register", {"Node": to_wire(_node("n-2", "s-2"))})
        with pytest.raises(PermissionDeniedError):
            await s.rpc_legacy("Node.UpdateStatus", {"NodeID": "n-1", "SecretID": "bad", "Status": "ready"})
        with pytest.raises(PermissionDeniedError):
            await s.rpc_legacy("Node.Register", {"Node": to_wire(_node(secret="other"))})
        with pytest.raises(UnknownNodeError):
            await s.rpc_legacy("Node.UpdateStatus", {"NodeID": "nope", "SecretID": "x", "Status": "ready"})
        with pytest.raises(ValidationError):
            await s.rpc_legacy("Node.UpdateStatus", {"NodeID": "n-1", "SecretID": "s-1", "Status": "bogus"})
        left = await s.rpc_legacy(
            "Node.UpdateStatus", {"NodeID": "n-1", "SecretID": "s-1", "Status": "down", "Leave": True}
        )
        assert left["HeartbeatTTL"] == 0.0
        assert s.node("n-1").status == NodeStatus.DOWN
        assert s.node("n-1").events[-1].message == "Node left"
        stats = await s.rpc_legacy("Node.HeartbeatStats", {})
        assert stats["ActiveTimers"] == 1  # n-2 only
        await s.rpc_legacy("Node.UpdateEligibility", {"NodeID": "n-2", "Eligibility": "ineligible"})
        assert s.node("n-2").scheduling_eligibility == "ineligible"
        with pytest.raises(ValidationError):
            await s.rpc_legacy("Node.UpdateEligibility", {"NodeID": "n-2", "Eligibility": "maybe"})
        got = await s.rpc_legacy("Node.GetNode", {"NodeID": "n-2"})
        assert got["Value"]["SecretID"] == ""
        assert got["Value"]["ID"] == "n-2"
        listed = await s.rpc_legacy("Node.List", {"Prefix": "n-2", "OS": True})
        assert [n["ID"] for n in listed["Value"]] == ["n-2"]
        assert listed["Value"][0]["Attributes"] == {"os.name": "debian"}
        assert "NodeResources" not in listed["Value"][0]
        # a blocking list wakes on a change
        waiting = asyncio.ensure_future(
            s.rpc_legacy("Node.List", {"MinQueryIndex": listed["Index"], "MaxQueryTime": 5})
        )
        await asyncio.sleep(0.05)
        assert not waiting.done()
        await s.rpc_legacy("Node.UpdateEligibility", {"NodeID": "n-2", "Eligibility": "eligible"})
        assert (await asyncio.wait_for(waiting, 5))["Index"] > listed["Index"]
        # forced GC removes the down node at once, not the live one
        gc = await s.rpc_legacy("System.GarbageCollect", {})
        assert gc["NodesRemoved"] == ["n-1"]
        assert store_nodes.get(s.store.snapshot(), "n-1") is None
        # purge
        await s.rpc_legacy("Node.Deregister", {"NodeIDs": ["n-2"]})
        assert store_nodes.list_nodes(s.store.snapshot()) == []
        with pytest.raises(UnknownNodeError):
            await s.rpc_legacy("Node.Deregister", {"NodeIDs": ["n-2"]})

    _run(body)
