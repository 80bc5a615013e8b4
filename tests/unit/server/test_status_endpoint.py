"""Status.*, Operator.* and System.* RPCs on a fake-Raft server, and their wire round trip."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from nomadd.rpc import ok_reply, parse_reply
from nomadd.structs.codec import to_api
from nomadd.structs.errors import NotFoundError, ValidationError
from nomadd.structs.requests import Envelope
from nomadd.structs.requests.operator import (
    OPERATOR_RAFT_CONFIGURATION,
    OPERATOR_REMOVE_PEER_BY_ADDRESS,
    OPERATOR_REMOVE_PEER_BY_ID,
    RaftPeerByAddressRequest,
    RaftPeerByIDRequest,
    RaftServer,
)
from nomadd.structs.requests.status import (
    STATUS_LEADER,
    STATUS_MEMBERS,
    STATUS_PEERS,
    STATUS_PING,
    STATUS_REGIONS,
    ServerMember,
    StatusMembersReply,
    StatusPingReply,
)
from nomadd.structs.requests.system import SYSTEM_GARBAGE_COLLECT
from tests.unit.server.fakes import FakeServer


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_status_answers_from_raft_and_config() -> None:
    async def main() -> None:
        server = FakeServer()
        assert (await server.rpc(STATUS_LEADER, Envelope())).leader == "127.0.0.1:4647"
        assert (await server.rpc(STATUS_PEERS, Envelope())).peers == ("127.0.0.1:4647",)
        assert await server.rpc(STATUS_PING, Envelope()) == StatusPingReply()
        assert (await server.rpc(STATUS_REGIONS, Envelope())).regions == ("global",)
        members = await server.rpc(STATUS_MEMBERS, Envelope())
        assert (members.server_name, members.server_region, members.server_dc) == (
            ".global",  # the fake server has no name
            "global",
            "dc1",
        )
        assert members.members == ()

    _run(main())


def test_member_json_is_nomads_agent_member_shape() -> None:
    m = ServerMember(name="s1.global", addr="127.0.0.1", port=4648, tags={"role": "nomad"}, status="alive")
    assert list(to_api(m)) == [
        "Name",
        "Addr",
        "Port",
        "Tags",
        "Status",
        "ProtocolMin",
        "ProtocolMax",
        "ProtocolCur",
        "DelegateMin",
        "DelegateMax",
        "DelegateCur",
    ]
    reply = StatusMembersReply(server_name="s1.global", server_region="global", server_dc="dc1", members=(m,))
    assert parse_reply(StatusMembersReply, ok_reply(reply)) == reply
    assert parse_reply(StatusPingReply, ok_reply(StatusPingReply())) == StatusPingReply()


def test_operator_configuration_and_peer_removal_errors() -> None:
    async def main() -> None:
        server = FakeServer()
        conf = await server.rpc(OPERATOR_RAFT_CONFIGURATION, Envelope())
        assert conf.servers == (
            RaftServer(id="127.0.0.1:4647", node="(unknown)", address="127.0.0.1:4647", leader=True),
        )
        assert conf.meta.index == server.raft.index
        assert to_api(conf.servers[0]) == {
            "ID": "127.0.0.1:4647",
            "Node": "(unknown)",
            "Address": "127.0.0.1:4647",
            "Leader": True,
            "Voter": True,
            "RaftProtocol": "3",
        }
        with pytest.raises(NotFoundError):
            await server.rpc(
                OPERATOR_REMOVE_PEER_BY_ADDRESS, RaftPeerByAddressRequest(address="10.0.0.9:4647")
            )
        with pytest.raises(NotFoundError):
            await server.rpc(OPERATOR_REMOVE_PEER_BY_ID, RaftPeerByIDRequest(id="nope"))
        with pytest.raises(ValidationError):
            await server.rpc(OPERATOR_REMOVE_PEER_BY_ADDRESS, RaftPeerByAddressRequest(address=""))
        with pytest.raises(ValidationError):
            await server.rpc(OPERATOR_REMOVE_PEER_BY_ID, RaftPeerByIDRequest(id=""))

    _run(main())


def test_system_gc_runs_the_collectors_it_was_given() -> None:
    async def main() -> None:
        server = FakeServer()
        calls: list[str] = []

        async def job_collect(eval_threshold_s: float, job_threshold_s: float) -> dict[str, Any]:
            calls.append(f"job {eval_threshold_s} {job_threshold_s}")
            return {}

        async def node_collect(threshold_s: float) -> list[str]:
            calls.append(f"node {threshold_s}")
            return ["n-1"]

        server.job_gc.collect = job_collect  # type: ignore[method-assign]
        server.node_gc.collect = node_collect  # type: ignore[method-assign]
        reply = await server.rpc(SYSTEM_GARBAGE_COLLECT, Envelope())
        assert reply.nodes_removed == ("n-1",)
        assert calls == ["job 0.0 0.0", "node 0.0"]  # node GC last, as Nomad

    _run(main())
