"""``Node.*`` RPCs (Nomad's node_endpoint.go): register, heartbeat, deregister, eligibility, drain,
reads, and the two allocation RPCs of the client agent.

* ``Node.Register`` — write: commits the node (``NODE_REGISTER``), resets its heartbeat timer.
* ``Node.UpdateStatus`` — the heartbeat. Only a status change is committed (``down → ready``
  adds "Node reregistered by heartbeat"; ``leave`` with ``down`` adds "Node left" and stops the
  timer); otherwise it only resets the leader's timer.
* ``Node.Deregister`` (purge), ``Node.UpdateEligibility``, ``Node.UpdateDrain`` (the leader's
  :class:`~nomadd.server.drainer.Drainer`, owned here, completes drains).
* ``Node.GetNode``, ``Node.List`` — blocking reads; ``Node.HeartbeatStats`` — local: this
  server's active timers and heartbeats served.
* ``Node.GetClientAllocs`` — blocking read of ``{alloc_id: AllocModifyIndex}`` for every
  allocation placed on the node (terminal ones included); ``Node.UpdateAlloc`` — the client's
  status reports, batched into ``ALLOC_CLIENT_UPDATE`` entries by
  :class:`~nomadd.server.alloc_updates.AllocUpdateBatcher`.

The client's calls carry the node's ``secret_id``: a wrong one is refused (403), an unknown node
is 404. Register and heartbeat replies carry the TTL, the HTTP addresses of every alive server
of the region, the leader's and the number of nodes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable

from nomadd.gossip import MemberStatus
from nomadd.rpc import RPCRegistry
from nomadd.scheduler.disconnect import node_disconnect_window_ns
from nomadd.server.alloc_updates import AllocUpdateBatcher
from nomadd.server.context import ServerContext
from nomadd.server.drainer import Drainer
from nomadd.server.heartbeat import HeartbeatTimers, TTLSettings
from nomadd.server.state import store_allocs, store_nodes
from nomadd.server.state.store import StateSnapshot
from nomadd.structs.errors import PermissionDeniedError, UnknownNodeError, ValidationError
from nomadd.structs.messages import MessageType
from nomadd.structs.node import DrainStrategy, Node, NodeListStub, NodeStatus
from nomadd.structs.requests import WriteMeta
from nomadd.structs.requests.node import (
    NODE_DEREGISTER,
    NODE_GET,
    NODE_GET_CLIENT_ALLOCS,
    NODE_HEARTBEAT_STATS,
    NODE_LIST,
    NODE_REGISTER,
    NODE_UPDATE_ALLOC,
    NODE_UPDATE_DRAIN,
    NODE_UPDATE_ELIGIBILITY,
    NODE_UPDATE_STATUS,
    HeartbeatStatsReply,
    HeartbeatStatsRequest,
    NodeClientAllocsReply,
    NodeDeregisterEntry,
    NodeDeregisterReply,
    NodeDeregisterRequest,
    NodeDrainEntry,
    NodeEligibilityEntry,
    NodeGetReply,
    NodeHeartbeatReply,
    NodeListReply,
    NodeListRequest,
    NodeRegisterEntry,
    NodeRegisterRequest,
    NodeServerInfo,
    NodeSpecificRequest,
    NodeStatusEntry,
    NodeUpdateAllocReply,
    NodeUpdateAllocRequest,
    NodeUpdateDrainRequest,
    NodeUpdateEligibilityRequest,
    NodeUpdateStatusRequest,
    NodeWriteReply,
)
from nomadd.structs.timeutil import NS_PER_S, format_time

logger = logging.getLogger(__name__)

__all__ = ["EVENT_HEARTBEAT_MISSED", "EVENT_NODE_LEFT", "EVENT_REREGISTERED", "NodeEndpoint"]

EVENT_HEARTBEAT_MISSED = "Node heartbeat missed"
EVENT_REREGISTERED = "Node reregistered by heartbeat"
EVENT_NODE_LEFT = "Node left"
_TABLES = (store_nodes.TABLE,)
TIMERS_WAIT_S = 3.0  # how long a heartbeat waits for a new leader's timers to start


def _now() -> tuple[int, str]:
    ns = time.time_ns()
    return ns // 1_000_000_000, format_time(ns)


def _require(value: str, what: str) -> str:
    if not value:
        raise ValidationError(f"missing {what}")
    return value


def check_node_secret(snap: StateSnapshot, node_id: str, secret_id: str) -> Node:
    """The registered node ``node_id`` if ``secret_id`` is its secret (404 / 403 otherwise)."""
    node = store_nodes.get(snap, node_id)
    if node is None:
        raise UnknownNodeError(f"node not found: {node_id}")
    if node.secret_id and node.secret_id != secret_id:
        raise PermissionDeniedError("node secret ID does not match")
    return node


class NodeEndpoint:
    """Built once by the server from its context; owns the leader's heartbeat timers, the
    drainer and the batcher of client allocation updates (all leader-side state of nodes)."""

    def __init__(self, ctx: ServerContext, *, leader_http_addr: Callable[[], str | None]) -> None:
        self._ctx = ctx
        self._leader_http_addr = leader_http_addr
        self.timers = HeartbeatTimers(
            settings=self._ttl_settings, live_nodes=self._live_nodes, invalidate=self.invalidate
        )
        self.drainer = Drainer(ctx)
        self.alloc_updates = AllocUpdateBatcher(ctx)
        ctx.register_leader_component(self.timers)
        ctx.register_leader_component(self.drainer)

    def register(self, registry: RPCRegistry) -> None:
        registry.register(NODE_REGISTER, self.register_node, kind="write")
        registry.register(NODE_UPDATE_STATUS, self.update_status, kind="write")
        registry.register(NODE_DEREGISTER, self.deregister, kind="write")
        registry.register(NODE_UPDATE_ELIGIBILITY, self.update_eligibility, kind="write")
        registry.register(NODE_UPDATE_DRAIN, self.update_drain, kind="write")
        registry.register(NODE_GET, self.get_node, kind="read")
        registry.register(NODE_LIST, self.list_nodes, kind="read")
        registry.register(NODE_HEARTBEAT_STATS, self.heartbeat_stats, kind="local")
        registry.register(NODE_GET_CLIENT_ALLOCS, self.get_client_allocs, kind="read")
        registry.register(NODE_UPDATE_ALLOC, self.update_alloc, kind="write")

    def _ttl_settings(self) -> TTLSettings:
        s = self._ctx.config
        return TTLSettings(
            min_ttl=s.min_heartbeat_ttl,
            rate=s.max_heartbeats_per_second,
            grace=s.heartbeat_grace,
            failover_ttl=s.failover_heartbeat_ttl,
        )

    def _live_nodes(self) -> list[str]:
        snap = self._ctx.store.snapshot()
        return [n.id for n in store_nodes.list_nodes(snap) if n.status != NodeStatus.DOWN]

    def _reply(
        self, ttl: float, index: int, snap: StateSnapshot | None = None, *, node_modify_index: int = 0
    ) -> NodeHeartbeatReply:
        ctx = self._ctx
        snap = snap or ctx.store.snapshot()
        servers = tuple(
            NodeServerInfo(rpc_advertise_addr=s.http_addr, datacenter=s.datacenter)
            for s in ctx.servers()
            if s.http_addr and s.status == MemberStatus.ALIVE
        )
        if not servers:
            servers = (NodeServerInfo(rpc_advertise_addr=ctx.http_addr, datacenter=ctx.config.datacenter),)
        return NodeHeartbeatReply(
            meta=WriteMeta(index=index),
            heartbeat_ttl=ttl,
            servers=servers,
            leader_rpc_addr=self._leader_http_addr() or "",
            num_nodes=len(snap.table(store_nodes.TABLE)),
            node_modify_index=node_modify_index,
        )

    async def _propose(self, msg: MessageType, entry: object) -> tuple[store_nodes.NodeWriteResult, int]:
        result, index = await self._ctx.propose(msg, entry)
        assert isinstance(result, store_nodes.NodeWriteResult)
        return result, index

    # ---- writes -----------------------------------------------------------------------
    async def register_node(self, req: NodeRegisterRequest) -> NodeHeartbeatReply:
        node = req.node
        if not node.id:
            raise ValidationError("missing node ID for client registration")
        if not node.secret_id:
            raise ValidationError("missing node secret ID for client registration")
        if node.status not in (NodeStatus.INITIALIZING, NodeStatus.READY):
            raise ValidationError(f"invalid status for node: {node.status}")
        now_s, ts = _now()
        entry = NodeRegisterEntry(
            node=dataclasses.replace(node, status_updated_at=now_s), now_s=now_s, timestamp=ts
        )
        result, index = await self._propose(MessageType.NODE_REGISTER, entry)
        if result.error:
            raise PermissionDeniedError(result.error)
        await self._wait_timers()
        return self._reply(self.timers.reset(node.id), index, node_modify_index=index)

    async def update_status(self, req: NodeUpdateStatusRequest) -> NodeHeartbeatReply:
        node_id = _require(req.node_id, "NodeID")
        status = req.status
        snap = self._ctx.store.snapshot()
        current = check_node_secret(snap, node_id, req.secret_id)
        index = snap.table_index(store_nodes.TABLE)
        event = ""
        if req.leave and status == NodeStatus.DOWN:
            event = EVENT_NODE_LEFT
        elif current.status == NodeStatus.DOWN and status == NodeStatus.READY:
            event = EVENT_REREGISTERED
        changed = status != current.status or bool(event)
        if changed:
            if event == EVENT_NODE_LEFT:
                self.timers.clear(node_id)
            index = await self._set_status(node_id, status, event)
        if status == NodeStatus.DOWN:
            self.timers.clear(node_id)
            return self._reply(0.0, index, None if changed else snap)
        await self._wait_timers()
        return self._reply(self.timers.reset(node_id), index, None if changed else snap)

    async def _wait_timers(self) -> None:
        """Right after an election the timers start once the barrier committed: wait for that
        (bounded) instead of failing the heartbeat, which would make the client back off 15 s+."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMERS_WAIT_S
        while not self.timers.enabled and self._ctx.raft.is_leader() and loop.time() < deadline:
            await asyncio.sleep(0.05)

    async def _set_status(self, node_id: str, status: NodeStatus, event: str) -> int:
        now_s, ts = _now()
        entry = NodeStatusEntry(node_id=node_id, status=status, event=event, now_s=now_s, timestamp=ts)
        result, index = await self._propose(MessageType.NODE_UPDATE_STATUS, entry)
        if result.error:
            raise UnknownNodeError(result.error)
        logger.info("node status changed node_id=%s status=%s event=%r", node_id, status, event)
        return index

    async def invalidate(self, node_id: str) -> None:
        """A heartbeat timer fired: mark the node down (leader only), or disconnected for the
        longest ``lost_after`` of its allocations' groups, then down when that timer fires."""
        snap = self._ctx.store.snapshot()
        current = store_nodes.get(snap, node_id)
        if current is None or current.status == NodeStatus.DOWN:
            return
        if current.status != NodeStatus.DISCONNECTED:
            window = node_disconnect_window_ns(store_allocs.allocs_by_node(snap, node_id))
            if window > 0:
                await self._set_status(node_id, NodeStatus.DISCONNECTED, EVENT_HEARTBEAT_MISSED)
                self.timers.arm(node_id, window / NS_PER_S)
                return
        await self._set_status(node_id, NodeStatus.DOWN, EVENT_HEARTBEAT_MISSED)

    async def deregister(self, req: NodeDeregisterRequest) -> NodeDeregisterReply:
        ids = req.node_ids
        if not ids or not all(ids):
            raise ValidationError("missing node IDs for node deregistration")
        snap = self._ctx.store.snapshot()
        missing = [i for i in ids if store_nodes.get(snap, i) is None]
        if missing:
            raise UnknownNodeError(f"node not found: {missing[0]}")
        result, index = await self._propose(MessageType.NODE_DEREGISTER, NodeDeregisterEntry(node_ids=ids))
        for node_id in result.deleted:
            self.timers.clear(node_id)
        logger.info("nodes deregistered node_ids=%s", ",".join(result.deleted))
        return NodeDeregisterReply(meta=WriteMeta(index=index), node_ids=result.deleted)

    async def update_eligibility(self, req: NodeUpdateEligibilityRequest) -> NodeWriteReply:
        node_id = _require(req.node_id, "NodeID")
        entry = NodeEligibilityEntry(node_id=node_id, eligibility=req.eligibility, timestamp=_now()[1])
        result, index = await self._propose(MessageType.NODE_UPDATE_ELIGIBILITY, entry)
        if result.error:
            if result.error.startswith("node not found"):
                raise UnknownNodeError(result.error)
            raise ValidationError(result.error)
        return NodeWriteReply(meta=WriteMeta(index=index), node_modify_index=index)

    async def update_drain(self, req: NodeUpdateDrainRequest) -> NodeWriteReply:
        """Start or cancel a drain; the endpoint sets the strategy's ``force_deadline`` and
        ``started_at`` (the entry is deterministic)."""
        node_id = _require(req.node_id, "node ID")
        if store_nodes.get(self._ctx.store.snapshot(), node_id) is None:
            raise UnknownNodeError(f"node not found: {node_id}")
        now = time.time_ns()
        strategy = req.drain_strategy
        if strategy is not None:
            force = ""
            if strategy.deadline > 0:
                force = format_time(now + strategy.deadline)
            elif strategy.deadline < 0:
                force = format_time(now)
            strategy = DrainStrategy(
                deadline=strategy.deadline,
                ignore_system_jobs=strategy.ignore_system_jobs,
                force_deadline=force,
                started_at=format_time(now),
            )
        entry = NodeDrainEntry(
            node_id=node_id,
            drain_strategy=strategy,
            mark_eligible=req.mark_eligible,
            meta=req.meta,
            timestamp=format_time(now),
        )
        result, index = await self._propose(MessageType.NODE_UPDATE_DRAIN, entry)
        if result.error:
            raise UnknownNodeError(result.error)
        return NodeWriteReply(meta=WriteMeta(index=index), node_modify_index=index, eval_create_index=index)

    async def update_alloc(self, req: NodeUpdateAllocRequest) -> NodeUpdateAllocReply:
        """A client's allocation reports: only for allocations on its own node."""
        node_id = _require(req.node_id, "node ID")
        snap = self._ctx.store.snapshot()
        check_node_secret(snap, node_id, req.secret_id)
        for u in req.allocs:
            if not u.id:
                raise ValidationError("Alloc update: missing id")
            alloc = store_allocs.get_alloc(snap, u.id)
            if alloc is not None and alloc.node_id != node_id:
                raise PermissionDeniedError(f"allocation {u.id} is not on node {node_id}")
        if not req.allocs:
            return NodeUpdateAllocReply(meta=WriteMeta(index=self._ctx.store.latest_index()))
        index = await self.alloc_updates.submit(req.allocs)
        return NodeUpdateAllocReply(meta=WriteMeta(index=index))

    # ---- reads ------------------------------------------------------------------------
    async def get_node(self, req: NodeSpecificRequest) -> NodeGetReply:
        node_id = _require(req.node_id, "NodeID")

        def fn(snap: StateSnapshot) -> Node | None:
            node = store_nodes.get(snap, node_id)
            return node.sanitize() if node is not None else None

        node, meta = await self._ctx.blocking.query(req, _TABLES, fn)
        return NodeGetReply(meta=meta, node=node)

    async def list_nodes(self, req: NodeListRequest) -> NodeListReply:
        def fn(snap: StateSnapshot) -> tuple[NodeListStub, ...]:
            nodes = store_nodes.list_nodes(snap, req.prefix)
            return tuple(n.stub(os=req.os, resources=req.resources) for n in nodes)

        nodes, meta = await self._ctx.blocking.query(req, _TABLES, fn)
        return NodeListReply(meta=meta, nodes=nodes)

    async def heartbeat_stats(self, req: HeartbeatStatsRequest) -> HeartbeatStatsReply:
        return HeartbeatStatsReply(
            enabled=self.timers.enabled,
            active_timers=self.timers.active(),
            heartbeats=self.timers.heartbeats,
            expired=self.timers.expired,
        )

    async def get_client_allocs(self, req: NodeSpecificRequest) -> NodeClientAllocsReply:
        node_id = _require(req.node_id, "node ID")
        check_node_secret(self._ctx.store.snapshot(), node_id, req.secret_id)

        def fn(snap: StateSnapshot) -> dict[str, int]:
            return {a.id: a.alloc_modify_index for a in store_allocs.allocs_by_node(snap, node_id)}

        # the node's row of allocs_by_node is written whenever one of its allocations is: only
        # those writes wake this node (all of them woke every node's query, O(nodes) a write)
        by_node = (store_allocs.BY_NODE_TABLE, node_id)
        allocs, meta = await self._ctx.blocking.query(req, store_allocs.TABLES, fn, by_node)
        return NodeClientAllocsReply(meta=meta, allocs=allocs)
