"""The one fake server of the server unit tests: real endpoints, FSM and store; no sockets.

``FakeRaft`` applies each proposed entry to the real FSM at once (one "server"), handing the FSM
the proposer's entry as ``Raft.apply`` does. ``FakeServer`` builds a real
:class:`~nomadd.server.context.ServerContext` around it, the real endpoint classes and the
scheduling service, and dispatches RPCs through the real registry (every method runs here, as
on a leader). ``FakeServer.follower()`` gives a second store fed with the same entries decoded
from their bytes, for leader/follower comparisons.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from nomadd.helper.supervisor import Supervisor
from nomadd.rpc import RPCRegistry
from nomadd.server.acl.endpoint import ACLEndpoint
from nomadd.server.acl.resolver import ACLResolver, local_source
from nomadd.server.alloc_endpoint import AllocEndpoint
from nomadd.server.blocking import BlockingQueries
from nomadd.server.config import ServerConfig
from nomadd.server.context import RPCDispatch, ServerContext
from nomadd.server.deployment_endpoint import DeploymentEndpoint
from nomadd.server.eval_endpoint import EvalEndpoint
from nomadd.server.fsm import FSM
from nomadd.server.fsm.dispatch import entry_kinds
from nomadd.server.job_endpoint import JobEndpoint
from nomadd.server.job_gc import JobGC
from nomadd.server.job_validate import JobValidateEndpoint
from nomadd.server.keyring import Keyring, KeyringEndpoint
from nomadd.server.namespace_endpoint import NamespaceEndpoint
from nomadd.server.node_endpoint import NodeEndpoint
from nomadd.server.node_gc import NodeGC
from nomadd.server.operator_endpoint import OperatorEndpoint
from nomadd.server.scheduling_service import SchedulingService
from nomadd.server.search_endpoint import SearchEndpoint
from nomadd.server.service_endpoint import ServiceEndpoint
from nomadd.server.state import store_nodes
from nomadd.server.state.store import StateStore
from nomadd.server.status_endpoint import StatusEndpoint
from nomadd.server.system_endpoint import SystemEndpoint
from nomadd.server.var_endpoint import VariablesEndpoint
from nomadd.structs.alloc import Allocation, AllocClientStatus
from nomadd.structs.codec import from_api
from nomadd.structs.job import Job
from nomadd.structs.messages import MessageType
from nomadd.structs.namespace import Namespace
from nomadd.structs.node import Node, NodeStatus
from nomadd.structs.requests import Method, Rep, Req
from nomadd.structs.requests.job import (
    JOB_DEREGISTER,
    JOB_REGISTER,
    JobDeregisterReply,
    JobDeregisterRequest,
    JobRegisterReply,
    JobRegisterRequest,
)
from nomadd.structs.requests.namespace import NAMESPACE_UPSERT, NamespaceUpsertRequest
from nomadd.structs.requests.node import (
    NODE_UPDATE_ALLOC,
    AllocClientUpdate,
    NodeRegisterEntry,
    NodeStatusEntry,
    NodeUpdateAllocReply,
    NodeUpdateAllocRequest,
)

__all__ = ["FakeRaft", "FakeServer", "api_job", "make_fsm", "replace_node", "wait_until"]

SERVER_DEFAULTS: dict[str, Any] = {
    "num_schedulers": 2,
    "min_heartbeat_ttl": 0.2,
    "max_heartbeats_per_second": 50.0,
    "heartbeat_grace": 0.1,
    "failover_heartbeat_ttl": 0.5,
    "node_gc_interval": 300.0,
    "node_gc_threshold": 3600.0,
}


def make_fsm(store: StateStore | None = None) -> FSM:
    """An FSM with the real dispatch table."""
    return FSM(store if store is not None else StateStore(), entry_kinds())


class FakeRaft:
    def __init__(self, fsm: FSM) -> None:
        self.fsm = fsm
        self.index = 1
        self.applied: list[int] = []
        self.entries: list[tuple[int, int, bytes]] = []  # (index, type, payload), for followers

    async def apply(
        self, msg_type: int, payload: bytes, *, request: object | None = None
    ) -> tuple[object, int]:
        if request is not None:
            self.fsm.expect(payload, request)  # as Raft.apply does: the proposer's copy is used
        await asyncio.sleep(0)
        self.index += 1
        self.applied.append(int(msg_type))
        self.entries.append((self.index, int(msg_type), payload))
        return self.fsm.apply(self.index, int(msg_type), payload), self.index

    def known_leader(self) -> bool:
        return True

    async def dump_for_save(self, index: int, timeout: float) -> None:
        return None  # no data dir: a save encodes the store itself

    def last_contact_ms(self) -> int:
        return 0

    def is_leader(self) -> bool:
        return True

    def leader(self) -> str:
        return "127.0.0.1:4647"

    def stats(self) -> dict[str, str]:
        return {"term": "1"}

    def peers(self) -> list[str]:
        return [self.leader()]

    def applied_index(self) -> int:
        return self.index


class FakeServer:
    def __init__(self, **server_config: Any) -> None:
        self.store = StateStore()
        self.fsm = make_fsm(self.store)
        self.raft = FakeRaft(self.fsm)
        self.http_addr = "127.0.0.1:4646"
        self.config = ServerConfig(datacenter="dc1", region="global", **{**SERVER_DEFAULTS, **server_config})
        self.registry = RPCRegistry()
        self.tasks = Supervisor("server")
        self.components: list[Any] = []
        self.ctx = ServerContext(
            config=self.config,
            store=self.store,
            fsm=self.fsm,
            raft=self.raft,  # type: ignore[arg-type]
            blocking=BlockingQueries(self.store, self.raft),  # type: ignore[arg-type]
            rpc=RPCDispatch(self.rpc),
            register_leader_component=self.register_leader_component,
            servers=list,
            http_addr=self.http_addr,
            raft_addr="127.0.0.1:4647",
            acl=ACLResolver(self.config.acl, local_source(self.store.snapshot)),
        )
        self.jobs = JobEndpoint(self.ctx)
        self.jobs.register(self.registry)
        self.allocs = AllocEndpoint(self.ctx)
        self.allocs.register(self.registry)
        self.evals = EvalEndpoint(self.ctx)
        self.evals.register(self.registry)
        self.nodes = NodeEndpoint(self.ctx, leader_http_addr=self.leader_http_addr)
        self.nodes.register(self.registry)
        StatusEndpoint(self.ctx, members=list).register(self.registry)
        OperatorEndpoint(self.ctx).register(self.registry)
        self.keyring = Keyring(self.ctx)
        VariablesEndpoint(self.ctx, self.keyring).register(self.registry)
        KeyringEndpoint(self.ctx, self.keyring).register(self.registry)
        ACLEndpoint(self.ctx).register(self.registry)
        NamespaceEndpoint(self.ctx).register(self.registry)
        SearchEndpoint(self.ctx).register(self.registry)
        JobValidateEndpoint(self.ctx).register(self.registry)
        self.deployments = DeploymentEndpoint(self.ctx)
        self.deployments.register(self.registry)
        ServiceEndpoint(self.ctx).register(self.registry)
        self.job_gc = JobGC(self.ctx)
        self.node_gc = NodeGC(self.ctx)
        self.register_leader_component(self.node_gc)
        self.register_leader_component(self.job_gc)
        SystemEndpoint(self.ctx, job_gc=self.job_gc, node_gc=self.node_gc).register(self.registry)
        self.scheduling = SchedulingService(self.ctx, self.tasks, self.registry)

    def register_leader_component(self, component: Any) -> None:
        self.components.append(component)

    def servers(self) -> list[Any]:
        return []

    def leader_http_addr(self) -> str:
        return self.http_addr

    async def rpc(self, method: Method[Req, Rep], req: Req) -> Rep:
        reply: Rep = await self.registry.lookup(method.name).handler(req)
        return reply

    def follower(self) -> FSM:
        """A follower's FSM fed every entry so far, decoded from its bytes."""
        fsm = make_fsm()
        for index, msg_type, payload in self.raft.entries:
            fsm.apply(index, msg_type, payload)
        return fsm

    async def register_job(self, api: dict[str, Any]) -> JobRegisterReply:
        """Register an API JSON job as the HTTP edge would."""
        job = from_api(Job, api, path="Job")
        return await self.rpc(JOB_REGISTER, JobRegisterRequest(job=job, namespace=job.namespace))

    async def add_namespace(self, name: str) -> None:
        """Create namespace ``name`` through the real NAMESPACE_UPSERT FSM case."""
        await self.rpc(NAMESPACE_UPSERT, NamespaceUpsertRequest(namespaces=(Namespace(name=name),)))

    async def deregister_job(self, job_id: str, *, purge: bool = False) -> JobDeregisterReply:
        return await self.rpc(JOB_DEREGISTER, JobDeregisterRequest(job_id=job_id, purge=purge))

    async def add_node(self, **kw: Any) -> Node:
        """Register a ready node through the real NODE_REGISTER FSM case."""
        from nomadd.scheduler.testing import mock_node

        node = mock_node(str(uuid.uuid4()), **kw)
        entry = NodeRegisterEntry(node=node, now_s=int(time.time()), timestamp="2026-01-01T00:00:00Z")
        await self.ctx.propose(MessageType.NODE_REGISTER, entry)
        return node

    async def set_node_status(self, node_id: str, status: NodeStatus) -> None:
        entry = NodeStatusEntry(node_id=node_id, status=status, now_s=int(time.time()), timestamp="x")
        await self.ctx.propose(MessageType.NODE_UPDATE_STATUS, entry)

    async def update_allocs(self, allocs: Iterable[Allocation], status: AllocClientStatus, **kw: Any) -> int:
        """Report ``status`` for ``allocs`` as their nodes' clients do (one ``Node.UpdateAlloc``
        per node, with the node's secret, sent together); returns the highest entry index."""
        by_node: dict[str, list[AllocClientUpdate]] = {}
        for a in allocs:
            by_node.setdefault(a.node_id, []).append(AllocClientUpdate(id=a.id, client_status=status, **kw))
        snap = self.store.snapshot()

        async def send(node_id: str, updates: list[AllocClientUpdate]) -> NodeUpdateAllocReply:
            node = store_nodes.get(snap, node_id)
            assert node is not None, f"no node {node_id}"
            req = NodeUpdateAllocRequest(node_id=node_id, secret_id=node.secret_id, allocs=tuple(updates))
            return await self.rpc(NODE_UPDATE_ALLOC, req)

        replies = await asyncio.gather(*(send(n, u) for n, u in by_node.items()))
        return max(r.meta.index for r in replies)


def api_job(job_id: str = "web", *, count: int = 3, job_type: str = "service", **kw: Any) -> dict[str, Any]:
    """A Nomad API JSON job (what ``{"Job": ...}`` carries)."""
    job: dict[str, Any] = {
        "ID": job_id,
        "Type": job_type,
        "Datacenters": ["dc1"],
        "TaskGroups": [
            {
                "Name": "g",
                "Count": count,
                "Tasks": [
                    {
                        "Name": "t",
                        "Driver": "raw_exec",
                        "Config": {"command": "/bin/sleep", "args": ["1000"]},
                        "Resources": {"CPU": 100, "MemoryMB": 64},
                    }
                ],
            }
        ],
    }
    job.update(kw)
    return job


async def wait_until(pred: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or pred}")
        await asyncio.sleep(0.01)


def replace_node(node: Node, **kw: Any) -> Node:
    return dataclasses.replace(node, **kw)
