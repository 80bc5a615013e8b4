"""The ``nodes`` table: client nodes keyed by node ID (Nomad's state_store nodes table).

Writes come only from the FSM (``*_locked`` functions, called with a :class:`Txn`); they are
deterministic: timestamps are in the request the endpoint proposed. Rule rejections (a node ID
registered again with another secret, an unknown node) are returned as values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from nomadd.server.state.store import StateSnapshot, Txn, register_table
from nomadd.server.state.store_services import delete_node_locked as delete_node_services_locked
from nomadd.structs.codec import from_wire, to_wire
from nomadd.structs.node import (
    DrainMetadata,
    DrainStatus,
    DrainStrategy,
    Node,
    NodeEligibility,
    NodeEvent,
    NodeStatus,
)

__all__ = [
    "ALLOCS_TABLE",
    "EVENT_DRAIN_COMPLETE",
    "EVENT_DRAIN_DISABLED",
    "EVENT_DRAIN_SET",
    "TABLE",
    "NodeWriteResult",
    "delete_locked",
    "gc_candidates",
    "get",
    "list_nodes",
    "node_sequence",
    "update_drain_locked",
    "update_eligibility_locked",
    "update_status_locked",
    "upsert_locked",
]

EVENT_DRAIN_SET = "Node drain strategy set"
EVENT_DRAIN_DISABLED = "Node drain disabled"
EVENT_DRAIN_COMPLETE = "Node drain complete"

TABLE = "nodes"
# The allocations table (written by store_allocs.py); read here only for node GC.
ALLOCS_TABLE = "allocs"


def _encode(node: Node) -> dict[str, object]:
    return to_wire(node)


def _decode(raw: dict[str, Any]) -> Node:
    return from_wire(Node, raw)


register_table(TABLE, _encode, _decode)


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeWriteResult:
    """What an applied node entry did: ``error`` is a rule rejection (nothing written)."""

    node: Node | None = None
    error: str = ""
    changed: bool = False  # the status changed (the caller may want node evaluations)
    deleted: tuple[str, ...] = ()


def _event(message: str, subsystem: str, timestamp: str, index: int) -> NodeEvent:
    return NodeEvent(message=message, subsystem=subsystem, timestamp=timestamp, create_index=index)


def upsert_locked(txn: Txn, node: Node, *, now_s: int, timestamp: str) -> NodeWriteResult:
    """Register or re-register ``node``. A known node keeps its create index, eligibility and
    drain; a new one gets the event "Node registered". A different secret is rejected."""
    current: Node | None = txn.get(TABLE, node.id)
    if current is not None and current.secret_id and current.secret_id != node.secret_id:
        return NodeWriteResult(error=f"node secret ID does not match for node {node.id}")
    if current is None:
        new = dataclasses.replace(
            node,
            create_index=txn.index,
            modify_index=txn.index,
            status_updated_at=now_s,
            events=(_event("Node registered", "Cluster", timestamp, txn.index),),
        )
        changed = True
    else:
        changed = current.status != node.status
        new = dataclasses.replace(
            node,
            create_index=current.create_index,
            modify_index=txn.index,
            scheduling_eligibility=current.scheduling_eligibility,
            drain_strategy=current.drain_strategy,
            last_drain=current.last_drain,
            events=current.events,
            status_updated_at=now_s if changed else current.status_updated_at,
        )
        if changed and current.status == NodeStatus.DOWN:
            new = new.with_event(_event("Node re-registered", "Cluster", timestamp, txn.index))
    new = new.with_computed_class()
    txn.put(TABLE, new.id, new)
    return NodeWriteResult(node=new, changed=changed)


def update_status_locked(
    txn: Txn, node_id: str, status: str, *, event: str, now_s: int, timestamp: str
) -> NodeWriteResult:
    current: Node | None = txn.get(TABLE, node_id)
    if current is None:
        return NodeWriteResult(error=f"node not found: {node_id}")
    new = dataclasses.replace(
        current,
        status=NodeStatus(status),
        status_updated_at=now_s,
        modify_index=txn.index,
    )
    if event:
        new = new.with_event(_event(event, "Cluster", timestamp, txn.index))
    txn.put(TABLE, node_id, new)
    return NodeWriteResult(node=new, changed=current.status != new.status)


def update_eligibility_locked(txn: Txn, node_id: str, eligibility: str, *, timestamp: str) -> NodeWriteResult:
    current: Node | None = txn.get(TABLE, node_id)
    if current is None:
        return NodeWriteResult(error=f"node not found: {node_id}")
    elig = NodeEligibility(eligibility)
    if elig == NodeEligibility.ELIGIBLE and current.drain_strategy is not None:
        return NodeWriteResult(
            error="can not set node's scheduling eligibility to eligible while it is draining"
        )
    if current.scheduling_eligibility == elig:
        return NodeWriteResult(node=current)
    message = (
        "Node marked as eligible for scheduling"
        if elig == NodeEligibility.ELIGIBLE
        else ("Node marked as ineligible for scheduling")
    )
    new = dataclasses.replace(current, scheduling_eligibility=elig, modify_index=txn.index)
    new = new.with_event(_event(message, "Cluster", timestamp, txn.index))
    txn.put(TABLE, node_id, new)
    return NodeWriteResult(node=new, changed=True)


def update_drain_locked(
    txn: Txn,
    node_id: str,
    strategy: DrainStrategy | None,
    *,
    mark_eligible: bool,
    complete: bool,
    meta: Mapping[str, str],
    timestamp: str,
) -> NodeWriteResult:
    """Start a drain (``strategy``: the node turns ineligible, ``LastDrain`` draining), or end it
    (None): canceled, or ``complete`` (the drainer found nothing left to migrate); ending it
    makes the node eligible again only with ``mark_eligible``."""
    node: Node | None = txn.get(TABLE, node_id)
    if node is None:
        return NodeWriteResult(error=f"node not found: {node_id}")
    if strategy is not None:
        last = DrainMetadata(
            started_at=strategy.started_at or timestamp,
            updated_at=timestamp,
            status=DrainStatus.DRAINING,
            meta=dict(meta),
        )
        new = dataclasses.replace(
            node,
            drain_strategy=strategy,
            scheduling_eligibility=NodeEligibility.INELIGIBLE,
            last_drain=last,
            modify_index=txn.index,
        ).with_event(_event(EVENT_DRAIN_SET, "Drain", timestamp, txn.index))
    else:
        last = node.last_drain or DrainMetadata(started_at=timestamp)
        last = dataclasses.replace(
            last, updated_at=timestamp, status=DrainStatus.COMPLETE if complete else DrainStatus.CANCELED
        )
        elig = NodeEligibility.ELIGIBLE if mark_eligible else node.scheduling_eligibility
        new = dataclasses.replace(
            node, drain_strategy=None, scheduling_eligibility=elig, last_drain=last, modify_index=txn.index
        ).with_event(
            _event(EVENT_DRAIN_COMPLETE if complete else EVENT_DRAIN_DISABLED, "Drain", timestamp, txn.index)
        )
    txn.put(TABLE, node.id, new)
    return NodeWriteResult(node=new, changed=True)


def delete_locked(txn: Txn, node_ids: Iterable[str]) -> NodeWriteResult:
    deleted = tuple(nid for nid in node_ids if txn.delete(TABLE, nid))
    delete_node_services_locked(txn, deleted)
    if not deleted:
        txn.touch(TABLE)
    return NodeWriteResult(deleted=deleted)


def get(snap: StateSnapshot, node_id: str) -> Node | None:
    value: Node | None = snap.get(TABLE, node_id)
    return value


_walked: tuple[object, tuple[Node, ...]] = (None, ())  # (a nodes table, its rows): see below


def node_sequence(snap: StateSnapshot) -> tuple[Node, ...]:
    """Every node of the snapshot, in table order. A table is an immutable map and a node
    write makes a new one, so the walk of one table version serves every evaluation until the
    next node write: walking a persistent map of 5,000 nodes per evaluation cost the scheduler
    more than placing in it (the walk is in hash order, a cache miss per node)."""
    global _walked
    rows = snap.table(TABLE)
    table, nodes = _walked
    if table is not rows:
        nodes = tuple(rows.values())
        _walked = (rows, nodes)
    return nodes


def list_nodes(snap: StateSnapshot, prefix: str = "") -> list[Node]:
    """Nodes whose ID starts with ``prefix``, sorted by ID."""
    rows = snap.table(TABLE)
    return sorted((n for n in rows.values() if n.id.startswith(prefix)), key=lambda n: n.id)


def _has_live_allocs(snap: StateSnapshot, node_ids: set[str]) -> set[str]:
    live: set[str] = set()
    for alloc in snap.table(ALLOCS_TABLE).values():
        node_id = getattr(alloc, "node_id", None)
        if node_id in node_ids:
            terminal = getattr(alloc, "terminal", None)
            if terminal is None or not terminal():
                live.add(node_id)
    return live


def gc_candidates(snap: StateSnapshot, *, now_s: float, threshold_s: float) -> list[str]:
    """Nomad's nodeGC: down nodes whose status changed more than ``threshold_s`` ago and whose
    allocations are all terminal. ``status_updated_at`` is in whole (floored) seconds, so a
    node counts as down for ``now - status_updated_at - 1`` seconds (never collected early);
    ``threshold_s <= 0`` (forced GC) ignores the age."""
    old = {
        n.id
        for n in snap.table(TABLE).values()
        if n.status == NodeStatus.DOWN
        and (threshold_s <= 0 or now_s - n.status_updated_at - 1 >= threshold_s)
    }
    if not old:
        return []
    return sorted(old - _has_live_allocs(snap, old))
