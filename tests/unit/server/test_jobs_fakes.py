"""Fakes for the server unit tests of jobs, evaluations and allocations (no tests here).

``FakeRaft`` applies each proposed entry to the real FSM at once (one "server", no sockets), so
endpoints, the state store and the FSM handlers are the real ones. ``FakeServer`` carries what
endpoints and :class:`SchedulingService` use from ``Server``: ``raft``, ``store``, ``fsm``,
``config.num_schedulers``, ``registry``, ``blocking_query`` and ``rpc``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from nomadd.rpc import RPCRegistry
from nomadd.server import alloc_endpoint, drainer, eval_endpoint, job_endpoint, job_gc, node_endpoint
from nomadd.server.config import ServerConfig
from nomadd.server.fsm import FSM, encode_payload
from nomadd.server.state.store import StateSnapshot, StateStore
from nomadd.server.worker import SchedulingService
from nomadd.structs.codec import to_wire
from nomadd.structs.messages import MessageType
from nomadd.structs.node import Node, NodeStatus


class FakeRaft:
    def __init__(self, fsm: FSM) -> None:
        self.fsm = fsm
        self.index = 1
        self.applied: list[int] = []

    async def apply(
        self, msg_type: int, payload: bytes, *, request: dict[str, Any] | None = None
    ) -> tuple[object, int]:
        if request is not None:
            self.fsm.expect(payload, request)  # as Raft.apply does: the proposer's copy is used
        await asyncio.sleep(0)
        self.index += 1
        self.applied.append(int(msg_type))
        return self.fsm.apply(self.index, int(msg_type), payload), self.index

    def known_leader(self) -> bool:
        return True

    def last_contact_ms(self) -> int:
        return 0

    def is_leader(self) -> bool:
        return True


class FakeServer:
    def __init__(self, num_schedulers: int = 2) -> None:
        self.store = StateStore()
        self.fsm = FSM(self.store)
        self.raft = FakeRaft(self.fsm)
        self.config = ServerConfig(num_schedulers=num_schedulers)
        self.registry = RPCRegistry()
        self.components: list[Any] = []
        for module in (job_endpoint, eval_endpoint, alloc_endpoint, drainer, job_gc):
            module.register(self, self.registry)  # type: ignore[arg-type]
        self.scheduling = SchedulingService(self)  # type: ignore[arg-type]

    def register_leader_component(self, component: Any) -> None:
        self.components.append(component)

    async def rpc(self, method: str, args: dict[str, Any]) -> Any:
        return await self.registry.lookup(method).handler(args)

    async def blocking_query(
        self, args: dict[str, Any], tables: Iterable[str], fn: Callable[[StateSnapshot], Any]
    ) -> dict[str, Any]:
        names = list(tables)
        min_index = int(args.get("MinQueryIndex", 0) or 0)
        if min_index > 0:
            wait = float(args.get("MaxQueryTime", 300.0))
            wait += random.uniform(0, wait / 16)
            await self.store.wait_for(names, min_index, wait)
        snap = self.store.snapshot()
        return {"Value": fn(snap), "Index": snap.table_index(*names), "KnownLeader": True, "LastContact": 0}

    async def add_node(self, **kw: Any) -> Node:
        """Register a ready node through the real NODE_REGISTER FSM case."""
        from nomadd.scheduler.testing import mock_node

        node = mock_node(str(uuid.uuid4()), **kw)
        req = {"Node": to_wire(node), "Now": int(time.time()), "Time": "2026-01-01T00:00:00Z"}
        await self.raft.apply(MessageType.NODE_REGISTER, encode_payload(req))
        return node

    async def set_node_status(self, node_id: str, status: NodeStatus) -> None:
        req = {"NodeID": node_id, "Status": str(status), "Event": "", "Now": int(time.time()), "Time": "x"}
        await self.raft.apply(MessageType.NODE_UPDATE_STATUS, encode_payload(req))


assert node_endpoint  # imported for its FSM handlers (NODE_REGISTER, NODE_UPDATE_STATUS)


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
