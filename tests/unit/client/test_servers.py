"""The client's server list: fail over, demote, replace from replies, rediscover."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from nomadd.client.servers import NoServersError, ServerList
from nomadd.discovery import Resolver
from nomadd.rpc import RPCClient
from nomadd.structs.errors import NoLeaderError, RPCError, UnknownNodeError, UnreachableError
from nomadd.structs.node import Node, NodeStatus
from nomadd.structs.requests.node import (
    NODE_REGISTER,
    NODE_UPDATE_STATUS,
    NodeRegisterRequest,
    NodeServerInfo,
    NodeUpdateStatusRequest,
)

_HEARTBEAT = NodeUpdateStatusRequest(node_id="n1", secret_id="s1", status=NodeStatus.READY)
_REGISTER = NodeRegisterRequest(node=Node(id="n1", secret_id="s1"))


class FakeRPC(RPCClient):
    """Answers per address: an exception instance to raise or a value to return."""

    def __init__(self, answers: dict[str, Any]) -> None:
        super().__init__()
        self.answers = answers
        self.calls: list[str] = []

    async def call(self, addr: str, method: Any, request: Any, **kw: Any) -> Any:
        self.calls.append(addr)
        answer = self.answers.get(addr, RPCError(f"connect to {addr} refused"))
        if isinstance(answer, BaseException):
            raise answer
        return answer


def _list(rpc: FakeRPC, entries: list[str], fallback: str = "") -> ServerList:
    return ServerList(entries, resolver=Resolver(), rpc=rpc, fallback=fallback, rng=random.Random(1))


def test_moves_on_and_demotes_failed_server() -> None:
    rpc = FakeRPC({"127.0.0.2:4646": {"ok": 2}})
    sl = _list(rpc, ["127.0.0.1", "127.0.0.2"])

    async def main() -> None:
        assert await sl.call(NODE_UPDATE_STATUS, _HEARTBEAT) == {"ok": 2}
        assert sl.servers() == ["127.0.0.2:4646", "127.0.0.1:4646"]
        rpc.calls.clear()
        await sl.call(NODE_UPDATE_STATUS, _HEARTBEAT)
        assert rpc.calls == ["127.0.0.2:4646"]

    asyncio.run(main())


def test_an_unreachable_server_is_passed_over_like_any_transport_failure() -> None:
    """The RPC client raises UnreachableError when it cannot connect (a dead server, or a TLS
    handshake refused by a rogue one): the client must move on, not stick to that server."""
    rpc = FakeRPC({"127.0.0.1:4646": UnreachableError("connect failed"), "127.0.0.2:4646": {"ok": 2}})
    sl = _list(rpc, ["127.0.0.1", "127.0.0.2"])

    async def main() -> None:
        assert await sl.call(NODE_UPDATE_STATUS, _HEARTBEAT) == {"ok": 2}
        assert sl.servers()[0] == "127.0.0.2:4646"

    asyncio.run(main())


def test_no_leader_tries_next_but_rule_errors_raise() -> None:
    rpc = FakeRPC({"10.0.0.1:4646": NoLeaderError(), "10.0.0.2:4646": UnknownNodeError("node not found")})
    sl = _list(rpc, [])
    sl.set_servers(["10.0.0.1:4646", "10.0.0.2:4646"])
    sl._servers = ["10.0.0.1:4646", "10.0.0.2:4646"]  # fixed order for the test

    async def main() -> None:
        with pytest.raises(UnknownNodeError):
            await sl.call(NODE_UPDATE_STATUS, _HEARTBEAT)

    asyncio.run(main())
    assert rpc.calls == ["10.0.0.1:4646", "10.0.0.2:4646"]


def test_reply_replaces_list_and_all_failing_raises_last() -> None:
    rpc = FakeRPC({})
    sl = _list(rpc, [], fallback="127.0.0.1:4646")
    sl.set_from_reply([NodeServerInfo(rpc_advertise_addr=a) for a in ("10.0.0.5:4646", "10.0.0.6:4646")])
    assert sorted(sl.servers()) == ["10.0.0.5:4646", "10.0.0.6:4646"]
    sl.set_from_reply([])  # an empty list never wipes the known servers
    assert len(sl.servers()) == 2

    async def main() -> None:
        with pytest.raises(RPCError, match="refused"):
            await sl.call(NODE_REGISTER, _REGISTER)

    asyncio.run(main())


def test_no_servers() -> None:
    sl = _list(FakeRPC({}), [])

    async def main() -> None:
        with pytest.raises(NoServersError):
            await sl.call(NODE_REGISTER, _REGISTER)

    asyncio.run(main())


def test_discover_from_entries_and_rediscover_after_failures() -> None:
    rpc = FakeRPC({"127.0.0.9:4700": {"ok": 9}})
    sl = _list(rpc, ["127.0.0.9:4700", "127.0.0.8"])

    async def main() -> None:
        sl.set_servers(["10.0.0.1:4646"])  # a stale list from an earlier reply: all dead
        assert await sl.call(NODE_UPDATE_STATUS, _HEARTBEAT) == {"ok": 9}  # re-resolved the entries
        assert sl.servers()[0] == "127.0.0.9:4700"
        assert "127.0.0.8:4646" in sl.servers()  # default port 4646

    asyncio.run(main())
