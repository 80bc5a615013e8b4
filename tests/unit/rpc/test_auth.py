"""The internal RPC's credentials (nomadd.rpc.auth) and the server's checks (server/rpc_auth.py)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from nomadd.rpc.auth import METHOD_ACCESS, SERVER_AUTH_HEADER, ServerSigner, access_of
from nomadd.scheduler.testing import mock_node
from nomadd.server.config import ServerConfig
from nomadd.server.rpc_auth import RPCAuth, Verified
from nomadd.server.server import Server
from nomadd.structs.config import Advertise
from nomadd.structs.errors import PermissionDeniedError, UnknownNodeError
from nomadd.structs.requests import Caller, CallerKind
from nomadd.structs.requests.job import JobListRequest
from nomadd.structs.requests.node import NodeRegisterRequest, NodeUpdateAllocRequest


def test_every_registered_method_has_an_access_class() -> None:
    adv = Advertise(http="127.0.0.1:1", raft="127.0.0.1:2", serf="127.0.0.1:3")
    names = Server(ServerConfig(enabled=True, raft_secret="x" * 24, advertise=adv)).registry.names()
    assert [n for n in names if n not in METHOD_ACCESS] == []
    assert access_of("Made.Up") == "server"  # a method nobody classified is for servers only


def test_signature_binds_method_body_time_and_is_single_use() -> None:
    now = [1_000.0]
    signer = ServerSigner("cluster-secret-0123456789", clock=lambda: now[0])
    value = signer("Job.List", b"body")[SERVER_AUTH_HEADER]
    signer.verify("Job.List", b"body", value)
    with pytest.raises(PermissionDeniedError, match="replayed"):
        signer.verify("Job.List", b"body", value)
    value = signer("Job.List", b"body")[SERVER_AUTH_HEADER]
    for method, body, val in (
        ("Job.Register", b"body", value),
        ("Job.List", b"other", value),
        ("Job.List", b"body", value[:-2] + "00"),
        ("Job.List", b"body", "garbage"),
        (
            "Job.List",
            b"body",
            ServerSigner("another-secret-0123456")("Job.List", b"body")[SERVER_AUTH_HEADER],
        ),
    ):
        with pytest.raises(PermissionDeniedError):
            signer.verify(method, body, val)
    now[0] += 120
    with pytest.raises(PermissionDeniedError, match="replay window"):
        signer.verify("Job.List", b"body", value)


def test_nodes_are_checked_against_the_stored_secret_and_their_own_objects() -> None:
    asyncio.run(_nodes_checked())


async def _nodes_checked() -> None:
    node = mock_node("n1")
    auth = RPCAuth(ServerSigner("cluster-secret-0123456789"), lambda i: node if i == "n1" else None)
    with pytest.raises(PermissionDeniedError) as err:
        await auth.authenticate("Job.List", {}, b"")
    assert err.value.code == 401
    # a server certificate over mutual TLS counts as a server credential (a bad signature does not)
    assert await auth.authenticate("Job.List", {}, b"", peer_server=True) == Verified(server=True)
    with pytest.raises(PermissionDeniedError, match="malformed"):
        await auth.authenticate("Job.List", {"X-Nomadd-Server-Auth": "x"}, b"", peer_server=True)
    with pytest.raises(PermissionDeniedError, match="does not match"):
        await auth.authenticate("Job.List", {"X-Nomadd-Node-ID": "n1", "X-Nomadd-Node-Secret": "x"}, b"")
    with pytest.raises(UnknownNodeError, match="node not found"):  # 404: the client registers again
        await auth.authenticate("Job.List", {"X-Nomadd-Node-ID": "n2", "X-Nomadd-Node-Secret": "x"}, b"")
    ok = await auth.authenticate(
        "Job.List", {"X-Nomadd-Node-ID": "n1", "X-Nomadd-Node-Secret": node.secret_id}, b""
    )
    # the body's claim to be a server is replaced by the verified node
    req = auth.admit("Job.List", JobListRequest(caller=Caller(kind=CallerKind.SERVER), forwarded=True), ok)
    assert req.caller == Caller(kind=CallerKind.NODE, node_id="n1") and not req.forwarded
    auth.authorize("Job.List", req)
    upd = auth.admit("Node.UpdateAlloc", NodeUpdateAllocRequest(node_id="n2"), ok)
    with pytest.raises(PermissionDeniedError, match="node itself"):
        auth.authorize("Node.UpdateAlloc", upd)
    with pytest.raises(PermissionDeniedError, match="node itself"):
        auth.authorize("Node.UpdateAlloc", NodeUpdateAllocRequest(node_id="n1"))  # an API caller
    auth.authorize("Node.UpdateAlloc", dataclasses.replace(upd, node_id="n1"))
    # joining: a new node registers itself only
    new = mock_node("n3")
    joining = await auth.authenticate(
        "Node.Register", {"X-Nomadd-Node-ID": "n3", "X-Nomadd-Node-Secret": new.secret_id}, b""
    )
    assert joining == Verified(node_id="n3", node_secret=new.secret_id, joining=True)
    auth.admit("Node.Register", NodeRegisterRequest(node=new), joining)
    with pytest.raises(PermissionDeniedError, match="only register itself"):
        auth.admit("Node.Register", NodeRegisterRequest(node=mock_node("n4")), joining)
