"""Calling a real agent's internal RPC (``POST /v1/internal/<Method>``) from a test, with the
credential an agent would present: a node's ID and SecretID, or a server's signature made from
the cluster secret in the agent's config (``nomadd.rpc.auth``)."""

from __future__ import annotations

import dataclasses
import urllib.error
import urllib.request
import uuid
from typing import Any

from nomadd.rpc.auth import NodeCredentials, ServerSigner
from nomadd.rpc.wire import MSGPACK_CONTENT_TYPE, decode, encode_request
from nomadd.scheduler.testing import mock_node
from nomadd.structs.node import Node, NodeStatus
from nomadd.structs.requests import Method, Req
from nomadd.structs.requests.node import (
    NODE_REGISTER,
    NODE_UPDATE_STATUS,
    NodeRegisterRequest,
    NodeUpdateStatusRequest,
)
from tests.integration.cluster import Agent

__all__ = ["call_internal", "join", "node_headers", "server_headers"]


def node_headers(node_id: str, secret: str) -> dict[str, str]:
    return NodeCredentials(lambda: (node_id, secret))("", b"")


def server_headers(agent: Agent, method: str, body: bytes) -> dict[str, str]:
    """A server's signature over ``body`` with the cluster secret in ``agent``'s config."""
    return ServerSigner(str(agent.config["server"]["raft_secret"]))(method, body)


def call_internal(
    agent: Agent,
    method: Method[Req, Any],
    request: Req,
    *,
    node: tuple[str, str] | None = None,
    as_server: bool = False,
    timeout: float = 10.0,
) -> tuple[int, dict[str, Any]]:
    """``(HTTP status, decoded reply)``; ``node=(id, secret)`` or ``as_server`` pick the credential."""
    body = encode_request(request)
    headers = {"Content-Type": MSGPACK_CONTENT_TYPE}
    if node is not None:
        headers.update(node_headers(*node))
    if as_server:
        headers.update(server_headers(agent, method.name, body))
    req = urllib.request.Request(
        f"{agent.url}/v1/internal/{method.name}", data=body, method="POST", headers=headers
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, decode(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, decode(err.read())


def join(server: Agent) -> Node:
    """A simulated node joins: Node.Register as itself, then a heartbeat marks it ready."""
    node = dataclasses.replace(mock_node(str(uuid.uuid4())), status=NodeStatus.INITIALIZING)
    ident = (node.id, node.secret_id)
    status, reply = call_internal(server, NODE_REGISTER, NodeRegisterRequest(node=node), node=ident)
    assert status == 200, reply
    ready = NodeUpdateStatusRequest(node_id=node.id, secret_id=node.secret_id, status=NodeStatus.READY)
    status, reply = call_internal(server, NODE_UPDATE_STATUS, ready, node=ident)
    assert status == 200, reply
    return node
