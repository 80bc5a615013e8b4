"""Federation: the region map from gossip, forwarding to another region, the routing of
replicated writes to the authoritative region, and ACL replication between two fake servers."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from nomadd.gossip import Member, MemberStatus
from nomadd.server.acl.gc import ACLTokenGC
from nomadd.server.config import ServerConfig
from nomadd.server.federation import Regions
from nomadd.server.membership import server_tags
from nomadd.server.replication import Replicator, authoritative_route
from nomadd.server.state import store_acl, store_namespaces
from nomadd.structs.acl import ACLPolicy, ACLToken
from nomadd.structs.config import ACLConfig
from nomadd.structs.errors import NoRegionPathError, UnreachableError
from nomadd.structs.messages import MessageType
from nomadd.structs.namespace import Namespace, NodePool
from nomadd.structs.requests import Envelope
from nomadd.structs.requests.acl import (
    ACL_BOOTSTRAP,
    ACL_DELETE_POLICIES,
    ACL_DELETE_TOKENS,
    ACL_LIST_POLICIES,
    ACL_UPSERT_POLICIES,
    ACL_UPSERT_TOKENS,
    ACLBootstrapRequest,
    ACLDeleteRequest,
    ACLListRequest,
    ACLTokensEntry,
    ACLUpsertPoliciesRequest,
    ACLUpsertTokensRequest,
)
from nomadd.structs.requests.namespace import (
    NAMESPACE_DELETE,
    NAMESPACE_UPSERT,
    NODE_POOL_UPSERT,
    NamedDeleteRequest,
    NamespaceUpsertRequest,
    NodePoolUpsertRequest,
)
from nomadd.structs.requests.status import STATUS_PING
from tests.unit.server.fakes import FakeServer


def member(name: str, region: str, http: str, status: MemberStatus = MemberStatus.ALIVE) -> Member:
    tags = server_tags(
        node_id=name,
        region=region,
        datacenter="dc1",
        raft_addr=http.replace("4646", "4647"),
        http_addr=http,
        build="0",
        expect=3,
    )
    return Member(
        name=f"{name}.{region}", addr=http.split(":")[0], port=4648, tags=tags, status=status, incarnation=1
    )


MEMBERS = [
    member("e1", "east", "10.0.1.1:4646"),
    member("w1", "west", "10.0.2.1:4646"),
    member("w2", "west", "10.0.2.2:4646"),
    member("w3", "west", "10.0.2.3:4646", MemberStatus.FAILED),
    Member(
        name="other",
        addr="10.0.9.9",
        port=1,
        tags={"role": "consul"},
        status=MemberStatus.ALIVE,
        incarnation=1,
    ),
]


class FakeRPC:
    def __init__(self, unreachable: set[str]) -> None:
        self.unreachable = unreachable
        self.calls: list[str] = []

    async def call(self, addr: str, method: Any, req: Any, **kw: Any) -> str:
        self.calls.append(addr)
        if addr in self.unreachable:
            raise UnreachableError(f"cannot reach {addr}")
        return f"answered by {addr} for {req.region} token={req.auth_token}"


def regions(rpc: FakeRPC, members: list[Member] = MEMBERS) -> Regions:
    return Regions(region="east", members=lambda: members, rpc=rpc)  # type: ignore[arg-type]


def test_known_regions_and_alive_candidates() -> None:
    r = regions(FakeRPC(set()))
    assert r.known() == ["east", "west"]
    assert Regions(region="solo", members=list, rpc=None).known() == ["solo"]  # type: ignore[arg-type]
    assert sorted(r.candidates("west")) == ["10.0.2.1:4646", "10.0.2.2:4646"]  # not the failed w3
    with pytest.raises(NoRegionPathError, match="No path to region") as unknown:
        r.candidates("north")
    assert unknown.value.code == 400  # a region nobody has seen: the caller's mistake, not a 5xx


def test_forward_carries_the_token_and_tries_another_server() -> None:
    rpc = FakeRPC({"10.0.2.1:4646"})
    reply = asyncio.run(regions(rpc).forward(STATUS_PING, Envelope(region="west", auth_token="tok")))
    assert reply == "answered by 10.0.2.2:4646 for west token=tok"
    assert set(rpc.calls) <= {"10.0.2.1:4646", "10.0.2.2:4646"}


def test_forward_with_no_reachable_server_is_no_path_to_region() -> None:
    rpc = FakeRPC({"10.0.2.1:4646", "10.0.2.2:4646"})
    with pytest.raises(NoRegionPathError, match="No path to region"):
        asyncio.run(regions(rpc).forward(STATUS_PING, Envelope(region="west")))
    assert len(rpc.calls) == 2
    with pytest.raises(NoRegionPathError) as known:  # a known region whose servers are down: 500
        asyncio.run(regions(rpc).forward(STATUS_PING, Envelope(region="west")))
    assert known.value.code == 500


def test_replicated_writes_go_to_the_authoritative_region() -> None:
    west = ServerConfig(region="west", authoritative_region="east")
    server = FakeServer()
    snap = server.store.snapshot
    policy = ACLUpsertPoliciesRequest(policies=(ACLPolicy(name="p"),))
    assert authoritative_route(west, ACL_UPSERT_POLICIES, policy, snap).region == "east"
    assert (
        authoritative_route(west, ACL_DELETE_POLICIES, ACLDeleteRequest(keys=("p",)), snap).region == "east"
    )
    assert authoritative_route(west, ACL_BOOTSTRAP, ACLBootstrapRequest(), snap).region == "east"
    local = ACLUpsertTokensRequest(tokens=(ACLToken(accessor_id="", secret_id="", policies=("p",)),))
    assert authoritative_route(west, ACL_UPSERT_TOKENS, local, snap).region == ""
    glob = ACLUpsertTokensRequest(tokens=(ACLToken(accessor_id="", secret_id="", global_=True),))
    assert authoritative_route(west, ACL_UPSERT_TOKENS, glob, snap).region == "east"
    # reads, the authoritative region itself, and requests already aimed elsewhere are left alone
    assert authoritative_route(west, ACL_LIST_POLICIES, ACLListRequest(), snap).region == ""
    east = ServerConfig(region="east", authoritative_region="east")
    assert authoritative_route(east, ACL_UPSERT_POLICIES, policy, snap).region == ""
    north = dataclasses.replace(policy, region="north")
    assert authoritative_route(west, ACL_UPSERT_POLICIES, north, snap).region == "north"
    assert authoritative_route(ServerConfig(region="west"), ACL_UPSERT_POLICIES, policy, snap).region == ""


def counts(acl: bool = True, **changed: int) -> dict[str, int]:
    kinds = ("namespaces", "node_pools", *(("policies", "roles", "tokens") if acl else ()))
    return {k: changed.get(k, 0) for k in kinds}


class Bridge:
    """Regions.forward into another fake server (as if over the network); ``down`` fails it."""

    def __init__(self, there: FakeServer) -> None:
        self.there = there
        self.down = False

    async def forward(self, method: Any, req: Any) -> Any:
        if self.down:
            raise NoRegionPathError()
        return await self.there.rpc(method, dataclasses.replace(req, region=""))


def test_replication_copies_deletes_and_survives_an_outage() -> None:
    async def main() -> None:
        acl = ACLConfig(enabled=True)
        east = FakeServer(acl=acl, authoritative_region="east")
        boot = (await east.rpc(ACL_BOOTSTRAP, ACLBootstrapRequest())).token
        assert boot is not None
        mgmt = boot.secret_id
        west = FakeServer(acl=dataclasses.replace(acl, replication_token=mgmt), authoritative_region="east")
        bridge = Bridge(east)
        rep = Replicator(west.ctx, bridge)  # type: ignore[arg-type]
        assert rep.wanted()

        ro = ACLPolicy(name="ro", rules='namespace "default" { policy = "read" }')
        await east.rpc(ACL_UPSERT_POLICIES, ACLUpsertPoliciesRequest(policies=(ro,), auth_token=mgmt))
        tokens = (
            ACLToken(accessor_id="", secret_id="", policies=("ro",), global_=True),
            ACLToken(accessor_id="", secret_id="", policies=("ro",)),  # local: stays in east
        )
        made = (
            await east.rpc(ACL_UPSERT_TOKENS, ACLUpsertTokensRequest(tokens=tokens, auth_token=mgmt))
        ).tokens
        assert await rep.replicate_once() == counts(policies=1, tokens=2)  # bootstrap + global
        snap = west.store.snapshot()
        copied = store_acl.get_token(snap, made[0].accessor_id)
        assert copied is not None and copied.secret_id == made[0].secret_id
        assert store_acl.get_token(snap, made[1].accessor_id) is None
        assert (await west.ctx.acl.resolve(made[0].secret_id)).management is False
        assert await rep.replicate_once() == counts()  # nothing new

        rw = ACLPolicy(name="ro", rules='namespace "default" { policy = "write" }')
        await east.rpc(ACL_UPSERT_POLICIES, ACLUpsertPoliciesRequest(policies=(rw,), auth_token=mgmt))
        bridge.down = True
        with pytest.raises(NoRegionPathError):
            await rep.replicate_once()
        assert (await west.ctx.acl.resolve(made[0].secret_id)) is not None  # still checked here
        bridge.down = False
        await east.rpc(ACL_DELETE_TOKENS, ACLDeleteRequest(keys=(made[0].accessor_id,), auth_token=mgmt))
        assert await rep.replicate_once() == counts(policies=1, tokens=1)
        snap = west.store.snapshot()
        policy = store_acl.get_policy(snap, "ro")
        assert policy is not None and policy.rules == rw.rules
        assert store_acl.get_token(snap, made[0].accessor_id) is None

    asyncio.run(main())


def test_a_replica_region_collects_only_its_local_expired_tokens() -> None:
    async def main() -> None:
        west = FakeServer(acl=ACLConfig(enabled=True), authoritative_region="east")
        past = 1
        tokens = (
            ACLToken(accessor_id="g", secret_id="00000000-0000-0000-0000-00000000000g", global_=True),
            ACLToken(accessor_id="l", secret_id="00000000-0000-0000-0000-00000000000l"),
        )
        tokens = tuple(dataclasses.replace(t, expiration_time=past) for t in tokens)
        await west.ctx.propose(MessageType.ACL_TOKEN_UPSERT, ACLTokensEntry(tokens=tokens))
        assert await ACLTokenGC(west.ctx).collect() == ["l"]  # "g" goes by replication
        east = FakeServer(acl=ACLConfig(enabled=True), authoritative_region="global")
        await east.ctx.propose(MessageType.ACL_TOKEN_UPSERT, ACLTokensEntry(tokens=tokens))
        assert sorted(await ACLTokenGC(east.ctx).collect()) == ["g", "l"]

    asyncio.run(main())


def test_namespaces_and_node_pools_replicate_and_their_writes_go_to_the_authority() -> None:
    async def main() -> None:
        east = FakeServer(authoritative_region="east")
        west = FakeServer(authoritative_region="east")
        west_cfg = ServerConfig(region="west", authoritative_region="east")
        req = NamespaceUpsertRequest(namespaces=(Namespace(name="ops"),))
        assert authoritative_route(west_cfg, NAMESPACE_UPSERT, req, west.store.snapshot).region == "east"
        pool_req = NodePoolUpsertRequest(pools=(NodePool(name="gpu"),))
        assert authoritative_route(west_cfg, NODE_POOL_UPSERT, pool_req, west.store.snapshot).region == "east"
        await east.rpc(NAMESPACE_UPSERT, req)
        await east.rpc(NODE_POOL_UPSERT, pool_req)
        rep = Replicator(west.ctx, Bridge(east))  # type: ignore[arg-type]
        assert await rep.replicate_once() == counts(acl=False, namespaces=1, node_pools=1)  # no ACLs here
        snap = west.store.snapshot()
        assert store_namespaces.get_namespace(snap, "ops") is not None
        assert store_namespaces.get_pool(snap, "gpu") is not None
        await east.rpc(NAMESPACE_DELETE, NamedDeleteRequest(names=("ops",)))
        assert await rep.replicate_once() == counts(acl=False, namespaces=1)
        assert store_namespaces.get_namespace(west.store.snapshot(), "ops") is None

    asyncio.run(main())
