"""``Node.*`` RPCs (Nomad's node_endpoint.go): register, heartbeat, deregister, eligibility, reads.

* ``Node.Register`` {Node (wire)} — write: Raft-applies the node, resets its heartbeat timer.
* ``Node.UpdateStatus`` {NodeID, SecretID, Status, Leave} — the heartbeat. Only a status change
  is committed (``down → ready`` adds "Node reregistered by heartbeat"; ``Leave`` with ``down``
  adds "Node left" and stops the timer); otherwise it only resets the leader's timer.
* ``Node.Deregister`` {NodeIDs} (purge), ``Node.UpdateEligibility`` {NodeID, Eligibility}.
* ``Node.GetNode`` {NodeID}, ``Node.List`` {Prefix, OS, Resources} — blocking reads, API shape.
* ``Node.HeartbeatStats`` — local: this server's active timers and heartbeats served.

Register and heartbeat replies carry ``HeartbeatTTL`` (seconds), ``Servers`` (the HTTP
addresses of every alive server of the region), ``LeaderRPCAddr`` and ``NumNodes``.
Status changes call the listeners added with :func:`add_status_listener` (``node_evals``
creates node evaluations there).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from nomadd.gossip import MemberStatus
from nomadd.server.fsm import encode_payload
from nomadd.server.heartbeat import HeartbeatTimers, TTLSettings
from nomadd.server.state import store_nodes
from nomadd.server.state.store import StateSnapshot, Txn
from nomadd.structs.codec import from_wire, to_api, to_wire
from nomadd.structs.errors import PermissionDeniedError, UnknownNodeError, ValidationError
from nomadd.structs.messages import MessageType
from nomadd.structs.node import Node, NodeEligibility, NodeStatus
from nomadd.structs.timeutil import format_time

if TYPE_CHECKING:
    from nomadd.rpc import RPCRegistry
    from nomadd.server.server import Server

logger = logging.getLogger(__name__)

__all__ = [
    "EVENT_HEARTBEAT_MISSED",
    "EVENT_NODE_LEFT",
    "EVENT_REREGISTERED",
    "StatusListener",
    "add_status_listener",
    "register",
]

EVENT_HEARTBEAT_MISSED = "Node heartbeat missed"
EVENT_REREGISTERED = "Node reregistered by heartbeat"
EVENT_NODE_LEFT = "Node left"
_TABLES = (store_nodes.TABLE,)
TIMERS_WAIT_S = 3.0  # how long a heartbeat waits for a new leader's timers to start

StatusListener = Callable[["Server", Node], Awaitable[None]]
_LISTENERS: list[StatusListener] = []


def add_status_listener(fn: StatusListener) -> None:
    """Call ``fn(server, node)`` on the leader after a node's status changed (committed)."""
    if fn not in _LISTENERS:
        _LISTENERS.append(fn)


# ---- FSM ------------------------------------------------------------------------------------
def _apply_register(txn: Txn, req: dict[str, Any]) -> object:
    node = from_wire(Node, req["Node"])
    return store_nodes.upsert_locked(txn, node, now_s=req["Now"], timestamp=req["Time"])


def _apply_status(txn: Txn, req: dict[str, Any]) -> object:
    return store_nodes.update_status_locked(
        txn, req["NodeID"], req["Status"], event=req.get("Event", ""), now_s=req["Now"], timestamp=req["Time"]
    )


def _apply_deregister(txn: Txn, req: dict[str, Any]) -> object:
    return store_nodes.delete_locked(txn, req["NodeIDs"])


def _apply_eligibility(txn: Txn, req: dict[str, Any]) -> object:
    return store_nodes.update_eligibility_locked(
        txn, req["NodeID"], req["Eligibility"], timestamp=req["Time"]
    )


def _now() -> tuple[int, str]:
    ns = time.time_ns()
    return ns // 1_000_000_000, format_time(ns)


def _str_arg(args: dict[str, Any], key: str) -> str:
    value = args.get(key)
    if not isinstance(value, str) or not value:
        raise ValidationError(f"missing {key}")
    return value


class _NodeEndpoint:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.timers = HeartbeatTimers(
            settings=self._ttl_settings,
            live_nodes=self._live_nodes,
            invalidate=self.invalidate,
        )

    def _ttl_settings(self) -> TTLSettings:
        s = self.server.config
        return TTLSettings(
            min_ttl=s.min_heartbeat_ttl,
            rate=s.max_heartbeats_per_second,
            grace=s.heartbeat_grace,
            failover_ttl=s.failover_heartbeat_ttl,
        )

    def _live_nodes(self) -> list[str]:
        snap = self.server.store.snapshot()
        return [n.id for n in store_nodes.list_nodes(snap) if n.status != NodeStatus.DOWN]

    def _reply(self, ttl: float, index: int, snap: StateSnapshot | None = None) -> dict[str, Any]:
        snap = snap or self.server.store.snapshot()
        servers = [
            {"RPCAdvertiseAddr": s.http_addr, "Datacenter": s.datacenter}
            for s in self.server.servers()
            if s.http_addr and s.status == MemberStatus.ALIVE
        ]
        if not servers:
            servers = [
                {"RPCAdvertiseAddr": self.server.http_addr, "Datacenter": self.server.config.datacenter}
            ]
        return {
            "HeartbeatTTL": ttl,
            "Servers": servers,
            "LeaderRPCAddr": self.server.leader_http_addr() or "",
            "NumNodes": len(snap.table(store_nodes.TABLE)),
            "Index": index,
        }

    async def _notify(self, node: Node | None) -> None:
        if node is None:
            return
        for fn in list(_LISTENERS):
            try:
                await fn(self.server, node)
            except Exception:
                logger.exception("node status listener failed node_id=%s", node.id)

    async def _apply(self, msg: MessageType, req: dict[str, Any]) -> tuple[store_nodes.NodeWriteResult, int]:
        result, index = await self.server.raft.apply(msg, encode_payload(req))
        assert isinstance(result, store_nodes.NodeWriteResult)
        return result, index

    # ---- writes -----------------------------------------------------------------------
    async def register(self, args: dict[str, Any]) -> dict[str, Any]:
        raw = args.get("Node")
        if not isinstance(raw, dict):
            raise ValidationError("missing node for client registration")
        node = from_wire(Node, raw)
        if not node.id:
            raise ValidationError("missing node ID for client registration")
        if not node.secret_id:
            raise ValidationError("missing node secret ID for client registration")
        if node.status not in (NodeStatus.INITIALIZING, NodeStatus.READY):
            raise ValidationError(f"invalid status for node: {node.status}")
        now_s, ts = _now()
        node = dataclasses.replace(node, status_updated_at=now_s)
        req = {"Node": to_wire(node), "Now": now_s, "Time": ts}
        result, index = await self._apply(MessageType.NODE_REGISTER, req)
        if result.error:
            raise PermissionDeniedError(result.error)
        await self._wait_timers()
        ttl = self.timers.reset(node.id)
        if result.changed:
            await self._notify(result.node)
        reply = self._reply(ttl, index)
        reply["NodeModifyIndex"] = index
        return reply

    async def update_status(self, args: dict[str, Any]) -> dict[str, Any]:
        node_id = _str_arg(args, "NodeID")
        status = str(args.get("Status") or "")
        if status not in tuple(NodeStatus):
            raise ValidationError(f"invalid status for node: {status!r}")
        snap = self.server.store.snapshot()
        current = store_nodes.get(snap, node_id)
        if current is None:
            raise UnknownNodeError(f"node not found: {node_id}")
        if current.secret_id and args.get("SecretID") != current.secret_id:
            raise PermissionDeniedError("node secret ID does not match")
        leave = bool(args.get("Leave"))
        index = snap.table_index(store_nodes.TABLE)
        event = ""
        if leave and status == NodeStatus.DOWN:
            event = EVENT_NODE_LEFT
        elif current.status == NodeStatus.DOWN and status == NodeStatus.READY:
            event = EVENT_REREGISTERED
        if status != current.status or event:
            if event == EVENT_NODE_LEFT:
                self.timers.clear(node_id)
            index = await self._set_status(node_id, status, event)
        changed = status != current.status or bool(event)
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
        while not self.timers.enabled and self.server.raft.is_leader() and loop.time() < deadline:
            await asyncio.sleep(0.05)

    async def _set_status(self, node_id: str, status: str, event: str) -> int:
        now_s, ts = _now()
        req = {"NodeID": node_id, "Status": status, "Event": event, "Now": now_s, "Time": ts}
        result, index = await self._apply(MessageType.NODE_UPDATE_STATUS, req)
        if result.error:
            raise UnknownNodeError(result.error)
        logger.info("node status changed node_id=%s status=%s event=%r", node_id, status, event)
        if result.changed:
            await self._notify(result.node)
        return index

    async def invalidate(self, node_id: str) -> None:
        """A heartbeat timer fired: mark the node down (leader only)."""
        current = store_nodes.get(self.server.store.snapshot(), node_id)
        if current is None or current.status == NodeStatus.DOWN:
            return
        await self._set_status(node_id, NodeStatus.DOWN, EVENT_HEARTBEAT_MISSED)

    async def deregister(self, args: dict[str, Any]) -> dict[str, Any]:
        ids = args.get("NodeIDs")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
            raise ValidationError("missing node IDs for node deregistration")
        snap = self.server.store.snapshot()
        missing = [i for i in ids if store_nodes.get(snap, i) is None]
        if missing:
            raise UnknownNodeError(f"node not found: {missing[0]}")
        result, index = await self._apply(MessageType.NODE_DEREGISTER, {"NodeIDs": ids})
        for node_id in result.deleted:
            self.timers.clear(node_id)
        logger.info("nodes deregistered node_ids=%s", ",".join(result.deleted))
        return {"NodeIDs": list(result.deleted), "Index": index}

    async def update_eligibility(self, args: dict[str, Any]) -> dict[str, Any]:
        node_id = _str_arg(args, "NodeID")
        elig = str(args.get("Eligibility") or "")
        if elig not in tuple(NodeEligibility):
            raise ValidationError(f"invalid scheduling eligibility {elig!r}")
        _, ts = _now()
        req = {"NodeID": node_id, "Eligibility": elig, "Time": ts}
        result, index = await self._apply(MessageType.NODE_UPDATE_ELIGIBILITY, req)
        if result.error:
            if result.error.startswith("node not found"):
                raise UnknownNodeError(result.error)
            raise ValidationError(result.error)
        return {"NodeModifyIndex": index, "EvalIDs": [], "EvalCreateIndex": 0, "Index": index}

    # ---- reads ------------------------------------------------------------------------
    async def get_node(self, args: dict[str, Any]) -> dict[str, Any]:
        node_id = _str_arg(args, "NodeID")

        def fn(snap: StateSnapshot) -> Any:
            node = store_nodes.get(snap, node_id)
            return to_api(node.sanitize()) if node is not None else None

        return await self.server.blocking_query(args, _TABLES, fn)

    async def list_(self, args: dict[str, Any]) -> dict[str, Any]:
        prefix = str(args.get("Prefix") or "")
        os_ = bool(args.get("OS"))
        resources = bool(args.get("Resources"))

        def fn(snap: StateSnapshot) -> Any:
            out = []
            for n in store_nodes.list_nodes(snap, prefix):
                stub = to_api(n.stub(os=os_, resources=resources))
                for key in ("Attributes", "NodeResources", "ReservedResources"):
                    if stub.get(key) is None:
                        stub.pop(key, None)
                out.append(stub)
            return out

        return await self.server.blocking_query(args, _TABLES, fn)

    async def heartbeat_stats(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "Enabled": self.timers.enabled,
            "ActiveTimers": self.timers.active(),
            "Heartbeats": self.timers.heartbeats,
            "Expired": self.timers.expired,
        }


def register(server: Server, registry: RPCRegistry) -> None:
    ep = _NodeEndpoint(server)
    server.register_leader_component(ep.timers)
    registry.register_legacy("Node.Register", ep.register, kind="write")
    registry.register_legacy("Node.UpdateStatus", ep.update_status, kind="write")
    registry.register_legacy("Node.Deregister", ep.deregister, kind="write")
    registry.register_legacy("Node.UpdateEligibility", ep.update_eligibility, kind="write")
    registry.register_legacy("Node.GetNode", ep.get_node, kind="read")
    registry.register_legacy("Node.List", ep.list_, kind="read")
    registry.register_legacy("Node.HeartbeatStats", ep.heartbeat_stats, kind="local")
