"""Node drain: ``Node.UpdateDrain`` (the ``NODE_UPDATE_DRAIN`` entry) and the leader's drainer.

``Node.UpdateDrain`` ``{"NodeID", "DrainStrategy": {"Deadline": ns, "IgnoreSystemJobs": bool} |
None, "MarkEligible": bool, "Meta": {}}`` → ``{"NodeModifyIndex", "EvalIDs", "EvalCreateIndex",
"Index"}``. Setting a strategy marks the node ineligible and records ``LastDrain`` (draining);
the leader's node-eval watcher (``node_evals``) then creates a ``node-drain`` evaluation per job
with live allocations on the node, and the reconciler migrates them (stop here, place
elsewhere). A ``None`` strategy cancels the drain (eligible again when ``MarkEligible``).

:class:`Drainer` (leader only) checks draining nodes every ``DRAIN_CHECK_S``: once no
allocation on the node is still wanted running (system jobs excepted when the drain ignores
them) — or the force deadline passed — it commits the drain as complete (strategy cleared,
node stays ineligible, ``LastDrain.Status = complete``, event ``Node drain complete``).

Simplification (said plainly): allocations are migrated all at once, not ``max_parallel`` at a
time, so the deadline only bounds how long the drain waits for the scheduler.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import TYPE_CHECKING, Any

from nomadd.helper.supervisor import Supervisor
from nomadd.server.fsm import encode_payload
from nomadd.server.state import store_allocs, store_nodes
from nomadd.server.state.store import Txn
from nomadd.structs.codec import from_wire, to_wire
from nomadd.structs.errors import UnknownNodeError, ValidationError
from nomadd.structs.job import JobType
from nomadd.structs.messages import MessageType
from nomadd.structs.node import DrainMetadata, DrainStatus, DrainStrategy, Node, NodeEligibility, NodeEvent
from nomadd.structs.timeutil import format_time, parse_time

if TYPE_CHECKING:
    from nomadd.rpc import RPCRegistry
    from nomadd.server.server import Server

logger = logging.getLogger(__name__)

__all__ = ["DRAIN_CHECK_S", "Drainer", "register"]

DRAIN_CHECK_S = 0.5  # how often the leader looks at draining nodes (cheap: only those)
EVENT_SET = "Node drain strategy set"
EVENT_DISABLED = "Node drain disabled"
EVENT_COMPLETE = "Node drain complete"


def _apply_drain(txn: Txn, req: dict[str, Any]) -> object:
    node: Node | None = txn.get(store_nodes.TABLE, str(req["NodeID"]))
    if node is None:
        return store_nodes.NodeWriteResult(error=f"node not found: {req['NodeID']}")
    ts = str(req["Time"])
    raw = req.get("DrainStrategy")
    meta = {str(k): str(v) for k, v in (req.get("Meta") or {}).items()}
    if raw is not None:
        strategy = from_wire(DrainStrategy, raw)
        last = DrainMetadata(
            started_at=strategy.started_at or ts, updated_at=ts, status=DrainStatus.DRAINING, meta=meta
        )
        new = dataclasses.replace(
            node,
            drain_strategy=strategy,
            scheduling_eligibility=NodeEligibility.INELIGIBLE,
            last_drain=last,
            modify_index=txn.index,
        ).with_event(NodeEvent(message=EVENT_SET, subsystem="Drain", timestamp=ts, create_index=txn.index))
    else:
        complete = bool(req.get("Complete"))
        last = node.last_drain or DrainMetadata(started_at=ts)
        last = dataclasses.replace(
            last, updated_at=ts, status=DrainStatus.COMPLETE if complete else DrainStatus.CANCELED
        )
        elig = NodeEligibility.ELIGIBLE if req.get("MarkEligible") else node.scheduling_eligibility
        new = dataclasses.replace(
            node, drain_strategy=None, scheduling_eligibility=elig, last_drain=last, modify_index=txn.index
        ).with_event(
            NodeEvent(
                message=EVENT_COMPLETE if complete else EVENT_DISABLED,
                subsystem="Drain",
                timestamp=ts,
                create_index=txn.index,
            )
        )
    txn.put(store_nodes.TABLE, node.id, new)
    return store_nodes.NodeWriteResult(node=new, changed=True)


def drain_done(node: Node, allocs: list[Any], now_ns: int) -> bool:
    """No allocation on the node is still wanted running (or the force deadline passed)."""
    strategy = node.drain_strategy
    if strategy is None:
        return False
    if strategy.force_deadline and parse_time(strategy.force_deadline) <= now_ns:
        return True
    for alloc in allocs:
        if alloc.terminal():
            continue
        if strategy.ignore_system_jobs and alloc.job is not None and alloc.job.type == JobType.SYSTEM:
            continue
        return False
    return True


class Drainer:
    """Leader component: completes drains whose node has nothing left to migrate."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self._tasks = Supervisor("drainer")
        self._task: asyncio.Task[None] | None = None

    def set_enabled(self, enabled: bool) -> None:
        if enabled and self._task is None:
            self._task = self._tasks.spawn(self._run(), "drainer")
        elif not enabled and self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(DRAIN_CHECK_S)
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception as err:
                logger.warning("drain check failed err=%r", err)

    async def check(self) -> list[str]:
        snap = self._server.store.snapshot()
        now = time.time_ns()
        done = []
        for node in store_nodes.list_nodes(snap):
            if node.drain_strategy is None:
                continue
            if drain_done(node, store_allocs.allocs_by_node(snap, node.id), now):
                req = {"NodeID": node.id, "DrainStrategy": None, "Complete": True, "Time": format_time(now)}
                await self._server.raft.apply(MessageType.NODE_UPDATE_DRAIN, encode_payload(req))
                logger.info("node drain complete node_id=%s", node.id)
                done.append(node.id)
        return done


def register(server: Server, registry: RPCRegistry) -> None:
    drainer = Drainer(server)
    server.register_leader_component(drainer)

    async def update_drain(args: dict[str, Any]) -> dict[str, Any]:
        node_id = str(args.get("NodeID") or "")
        if not node_id:
            raise ValidationError("missing node ID")
        if store_nodes.get(server.store.snapshot(), node_id) is None:
            raise UnknownNodeError(f"node not found: {node_id}")
        now = time.time_ns()
        raw = args.get("DrainStrategy")
        strategy = None
        if raw is not None:
            if not isinstance(raw, dict):
                raise ValidationError("DrainStrategy: expected an object")
            deadline = int(raw.get("Deadline") or 0)
            force = ""
            if deadline > 0:
                force = format_time(now + deadline)
            elif deadline < 0:
                force = format_time(now)
            strategy = to_wire(
                DrainStrategy(
                    deadline=deadline,
                    ignore_system_jobs=bool(raw.get("IgnoreSystemJobs")),
                    force_deadline=force,
                    started_at=format_time(now),
                )
            )
        req = {
            "NodeID": node_id,
            "DrainStrategy": strategy,
            "MarkEligible": bool(args.get("MarkEligible")),
            "Meta": args.get("Meta") or {},
            "Time": format_time(now),
        }
        result, index = await server.raft.apply(MessageType.NODE_UPDATE_DRAIN, encode_payload(req))
        assert isinstance(result, store_nodes.NodeWriteResult)
        if result.error:
            raise UnknownNodeError(result.error)
        return {"NodeModifyIndex": index, "EvalIDs": [], "EvalCreateIndex": index, "Index": index}

    registry.register_legacy("Node.UpdateDrain", update_drain, kind="write")
