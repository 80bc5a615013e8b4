"""The Client against a fake server list: register → ready, re-register only when the
fingerprint changes, leave marks the node down, and the node ID survives a restart."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from nomadd.client import client as client_mod
from nomadd.client.client import Client
from nomadd.client.config import ClientConfig
from nomadd.client.fingerprint import NodeFingerprint
from nomadd.client.servers import ServerList
from nomadd.discovery import Resolver
from nomadd.rpc import RPCClient
from nomadd.structs.requests import Method, QueryMeta, Rep, Req, WriteMeta
from nomadd.structs.requests.node import (
    NODE_GET_CLIENT_ALLOCS,
    NodeClientAllocsReply,
    NodeHeartbeatReply,
    NodeServerInfo,
)


class FakeServers(RPCClient):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, Any]] = []

    async def call(self, addr: str, method: Method[Req, Rep], request: Req, **kw: Any) -> Rep:
        self.calls.append((method.name, request))
        if method == NODE_GET_CLIENT_ALLOCS:
            await asyncio.sleep(30)  # a blocking query that never fires in this test
        servers = (NodeServerInfo(rpc_advertise_addr=addr),)
        reply = NodeHeartbeatReply(meta=WriteMeta(index=1), heartbeat_ttl=0.05, servers=servers)
        assert isinstance(reply, method.reply)
        return reply

    def methods(self) -> list[str]:
        return [m for m, _ in self.calls if m != "Node.GetClientAllocs"]


def _client(tmp_path: Path, fake: FakeServers) -> Client:
    cfg = ClientConfig(
        enabled=True,
        name="c1",
        servers=("127.0.0.1:4646",),
        state_dir=str(tmp_path / "client"),
        alloc_dir=str(tmp_path / "alloc"),
    )
    c = Client(cfg)
    c.server_list = ServerList(["127.0.0.1:4646"], resolver=Resolver(), rpc=fake)
    return c


async def _until(pred: Any, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


@pytest.mark.slow
def test_lifecycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_mod, "MIN_FINGERPRINT_PERIOD_S", 0.05)
    monkeypatch.setattr(client_mod, "FINGERPRINT_PERIOD_S", 0.05)
    monkeypatch.setattr(client_mod, "MIN_HEARTBEAT_INTERVAL_S", 0.01)
    changes = {"n": 0}

    async def refingerprint(cfg: Any, previous: NodeFingerprint) -> NodeFingerprint:
        if changes["n"] == 0:
            return previous  # unchanged: no update to the servers
        return dataclasses.replace(previous, attributes={**previous.attributes, "test.changed": "yes"})

    monkeypatch.setattr(client_mod, "refingerprint_node", refingerprint)
    fake = FakeServers()

    async def first() -> str:
        c = _client(tmp_path, fake)
        await c.start()
        await _until(lambda: c.have_heartbeated and c.node is not None and c.node.status == "ready")
        assert fake.methods()[:2] == ["Node.Register", "Node.UpdateStatus"]
        assert fake.calls[0][1].node.status == "initializing"
        await asyncio.sleep(0.3)  # several unchanged fingerprints, heartbeats every 0.05 s
        assert fake.methods().count("Node.Register") == 1
        assert fake.methods().count("Node.UpdateStatus") >= 3
        changes["n"] = 1
        await _until(lambda: fake.methods().count("Node.Register") >= 2)
        reg = [a for m, a in fake.calls if m == "Node.Register"][1]
        assert reg.node.attributes["test.changed"] == "yes"
        assert c.health() == (True, "ok")
        await c.leave()
        method, req = fake.calls[-1]
        assert (method, req.status, req.leave, req.secret_id) == (
            "Node.UpdateStatus",
            "down",
            True,
            c.node.secret_id,
        )
        await c.shutdown()
        return c.node_id

    node_id = asyncio.run(first())

    async def again() -> str:
        c = _client(tmp_path, FakeServers())
        await c.start()
        await c.shutdown()
        return c.node_id

    assert asyncio.run(again()) == node_id


def test_alloc_watch_does_not_move_past_allocations_older_than_listed(tmp_path: Path) -> None:
    """Node.GetClientAllocs lists alloc a1 at AllocModifyIndex 10; a stale server may still
    answer Alloc.GetAllocs with an older a1. The manager asks with MinQueryIndex and keeps its
    watch index until it has seen the listed version (else it would miss the stop for good)."""
    from nomadd.client.allocs import AllocManager
    from nomadd.structs.alloc import Allocation, AllocDesiredStatus
    from nomadd.structs.requests.alloc import ALLOC_GET_ALLOCS, AllocsGetReply, AllocsGetRequest

    async def main() -> None:
        c = _client(tmp_path, FakeServers())
        manager = AllocManager(c)
        old = Allocation(id="a1", job_id="web", alloc_modify_index=5)
        new = Allocation(id="a1", job_id="web", alloc_modify_index=10, desired_status=AllocDesiredStatus.STOP)
        answers = [old, new]
        calls: list[AllocsGetRequest] = []

        async def call(method: Any, request: Any) -> Any:
            assert method is ALLOC_GET_ALLOCS and isinstance(request, AllocsGetRequest)
            calls.append(request)
            return AllocsGetReply(meta=QueryMeta(index=10), allocs=(answers.pop(0),))

        c.call = call  # type: ignore[method-assign]
        listing = NodeClientAllocsReply(meta=QueryMeta(index=10), allocs={"a1": 10})
        await manager._apply(listing)
        assert calls[0].min_query_index == 9 and calls[0].allow_stale is True
        assert manager._index == 0  # the stale answer is not taken as the listed state
        await manager._apply(listing)
        assert manager._index == 10 and len(calls) == 2
        assert manager.runners == {}  # a stopped allocation that never ran here is not started

    asyncio.run(main())


def test_alloc_status_waits_for_its_state_writes_and_for_registration_only(tmp_path: Path) -> None:
    """A restored allocation's status goes to the servers as soon as the node is registered,
    with no further change needed, and only once the state writes queued before it are done."""
    import time

    from nomadd.client.allocs import AllocManager
    from nomadd.structs.alloc import AllocClientStatus
    from nomadd.structs.node import Node
    from nomadd.structs.requests.node import AllocClientUpdate

    async def main() -> None:
        c = _client(tmp_path, FakeServers())
        c.node = Node(id="n1", secret_id="s1")
        manager = AllocManager(c)
        sent: list[tuple[float, Any]] = []
        written: list[float] = []

        async def call(method: Any, request: Any) -> Any:
            assert method.name == "Node.UpdateAlloc"
            sent.append((time.monotonic(), request))
            return None

        def slow_write() -> None:
            time.sleep(0.5)
            written.append(time.monotonic())

        c.call = call  # type: ignore[method-assign]
        sync = asyncio.create_task(manager._sync_loop())
        try:
            manager._persist(slow_write)
            update = AllocClientUpdate(id="a1", client_status=AllocClientStatus.RUNNING)
            manager._report("a1", update)
            await asyncio.sleep(0.3)
            assert sent == []  # not registered yet
            c.registered = True  # no new report comes: the queued one goes out anyway
            await _until(lambda: sent, timeout=3.0)
            assert sent[0][1].allocs == (update,)
            assert written and written[0] <= sent[0][0]  # the write was done first
        finally:
            sync.cancel()
            await asyncio.gather(sync, return_exceptions=True)
            manager._db.shutdown(wait=True)

    asyncio.run(main())
