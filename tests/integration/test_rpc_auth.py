"""Issue 9 acceptance 2: every ``/v1/internal/*`` method refuses an unauthenticated caller and a
client presenting another node's secret; a node may only act on its own objects; a forged,
stale or replayed server signature and a forwarding flag alone grant nothing.

One real server and one real client agent (the client registering and heartbeating through the
same checks), plus simulated nodes that join over the internal RPC with their own secrets.
"""

from __future__ import annotations

import dataclasses
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from nomadd.rpc.auth import ServerSigner, server_caller
from nomadd.rpc.wire import MSGPACK_CONTENT_TYPE, decode, encode, encode_request
from nomadd.scheduler.testing import mock_node
from nomadd.server.config import ServerConfig
from nomadd.server.server import Server
from nomadd.structs.alloc import AllocClientStatus
from nomadd.structs.config import Advertise
from nomadd.structs.requests import Caller, CallerKind
from nomadd.structs.requests.job import JOB_LIST, JobListRequest
from nomadd.structs.requests.node import (
    NODE_GET_CLIENT_ALLOCS,
    NODE_REGISTER,
    NODE_UPDATE_ALLOC,
    AllocClientUpdate,
    NodeRegisterRequest,
    NodeSpecificRequest,
    NodeUpdateAllocRequest,
)
from tests.helpers import wait_for
from tests.integration.cluster import Agent, Cluster
from tests.integration.internal_rpc import call_internal, join, node_headers, server_headers
from tests.integration.test_jobs_api import job

pytestmark = pytest.mark.slow


def registry_names() -> list[str]:
    """Every method a server registers (the same code the agent runs, built in-process)."""
    adv = Advertise(http="127.0.0.1:1", raft="127.0.0.1:2", serf="127.0.0.1:3")
    server = Server(ServerConfig(enabled=True, raft_secret="x" * 24, advertise=adv))
    return server.registry.names()


def post(agent: Agent, name: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        f"{agent.url}/v1/internal/{name}",
        data=body,
        method="POST",
        headers={"Content-Type": MSGPACK_CONTENT_TYPE, **headers},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, decode(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, decode(err.read())


def refused(status: int, reply: dict[str, Any]) -> bool:
    return status in (401, 403) and "error" in reply


def test_every_internal_method_refuses_anonymous_and_foreign_secret(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    try:
        server = cluster.add_server(bootstrap_expect=1).start()
        server.wait_http()
        cluster.wait_leader([server])
        client = cluster.add_client(servers=[server]).start()
        # the real client agent registers and heartbeats with its own secret
        wait_for(
            lambda: [n for n in server.api("GET", "/v1/nodes") if n["Status"] == "ready"],
            timeout=30,
            what="the client agent's node ready",
        )
        a, b = join(server), join(server)
        names = registry_names()
        assert {"Node.Register", "Node.UpdateAlloc", "Operator.RaftRemovePeerByAddress"} <= set(names)
        empty = encode({})
        for name in names:
            status, reply = post(server, name, empty, {})
            assert refused(status, reply) and status == 401, (name, status, reply)
            # node A's ID with node B's secret
            status, reply = post(server, name, empty, node_headers(a.id, b.secret_id))
            assert refused(status, reply) and status == 403, (name, status, reply)
        # a node ID nobody registered: 404 (a client then registers again, after a node GC); only
        # its own Node.Register gets further (this empty body is then a 400)
        for name, want in (("Node.UpdateStatus", 404), ("Job.List", 404), ("Node.Register", 400)):
            status, reply = post(server, name, empty, node_headers(str(uuid.uuid4()), "s"))
            assert status == want and "error" in reply, (name, status, reply)

        # the client agent still works end to end: its node stays ready
        assert all(n["Status"] == "ready" for n in server.api("GET", "/v1/nodes"))
        assert client.api("GET", "/v1/jobs") == []  # an API call relayed by a client agent

        # a node acts only on its own objects, whatever the body claims
        server.api("PUT", "/v1/jobs", {"Job": job("web", count=3)})
        victim = wait_for(
            lambda: next(
                (x for x in server.api("GET", "/v1/job/web/allocations") if x["NodeID"] != a.id), None
            ),
            timeout=20,
            what="an allocation on another node than A",
        )
        failed = (AllocClientUpdate(id=victim["ID"], client_status=AllocClientStatus.FAILED),)
        a_creds = (a.id, a.secret_id)
        for forged in (
            NodeUpdateAllocRequest(node_id="", allocs=failed),  # no NodeID (the bug found in issue 9)
            NodeUpdateAllocRequest(node_id=victim["NodeID"], secret_id=a.secret_id, allocs=failed),
            NodeUpdateAllocRequest(
                node_id=victim["NodeID"], allocs=failed, caller=server_caller(), forwarded=True
            ),
        ):
            status, reply = call_internal(server, NODE_UPDATE_ALLOC, forged, node=a_creds)
            assert status == 403, (forged, status, reply)
        if victim["NodeID"] != a.id:
            status, reply = call_internal(
                server, NODE_GET_CLIENT_ALLOCS, NodeSpecificRequest(node_id=victim["NodeID"]), node=a_creds
            )
            assert status == 403, reply
        after = server.api("GET", f"/v1/allocation/{victim['ID']}")
        assert after["ClientStatus"] != "failed"

        # re-registering an existing node with another secret is refused
        hijack = dataclasses.replace(b, secret_id="new-secret")
        status, reply = call_internal(
            server, NODE_REGISTER, NodeRegisterRequest(node=hijack), node=(b.id, "new-secret")
        )
        assert status == 403, reply
        # a joining node must register itself, not another ID
        other = mock_node(str(uuid.uuid4()))
        status, reply = call_internal(
            server, NODE_REGISTER, NodeRegisterRequest(node=other), node=(str(uuid.uuid4()), other.secret_id)
        )
        assert status == 403, reply

        # a body claiming to be a server, or forwarded, is only a body
        claim = JobListRequest(caller=Caller(kind=CallerKind.SERVER), forwarded=True)
        status, reply = call_internal(server, JOB_LIST, claim)
        assert status == 401, reply

        # server signatures: a valid one works once; forged (other secret) and replayed ones do not
        body = encode_request(JobListRequest())
        signed = server_headers(server, "Job.List", body)
        assert post(server, "Job.List", body, signed)[0] == 200
        assert post(server, "Job.List", body, signed)[0] == 403  # replay
        forged_sig = ServerSigner("another-cluster-secret")("Job.List", body)
        assert post(server, "Job.List", body, forged_sig)[0] == 403
        stale = ServerSigner(str(server.config["server"]["raft_secret"]), clock=lambda: 1_000_000.0)
        assert post(server, "Job.List", body, stale("Job.List", body))[0] == 403
        # a signature binds the method and the body
        assert post(server, "Job.Register", body, server_headers(server, "Job.List", body))[0] == 403
    finally:
        cluster.close()
