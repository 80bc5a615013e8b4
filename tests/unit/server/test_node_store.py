"""The nodes table through FSM.apply: register, status, eligibility, deregister, GC candidates."""

from __future__ import annotations

import dataclasses

from nomadd.server.fsm import FSM
from nomadd.server.state import store_nodes
from nomadd.server.state.store import StateStore
from nomadd.structs.alloc import Allocation, AllocClientStatus
from nomadd.structs.messages import MessageType
from nomadd.structs.node import Node, NodeEligibility, NodeStatus
from nomadd.structs.requests.node import (
    NodeDeregisterEntry,
    NodeEligibilityEntry,
    NodeRegisterEntry,
    NodeStatusEntry,
)
from tests.unit.server.fakes import make_fsm


def _node(node_id: str = "n1", secret: str = "s1", status: NodeStatus = NodeStatus.INITIALIZING) -> Node:
    return Node(id=node_id, secret_id=secret, name=node_id, status=status, attributes={"os.name": "debian"})


def _apply(fsm: FSM, index: int, msg_type: MessageType, entry: object) -> object:
    """Apply ``entry`` as a follower does: from its encoded bytes."""
    return fsm.apply(index, msg_type, fsm.encode(msg_type, entry))


def _register(fsm: FSM, index: int, node: Node, now: int = 100) -> store_nodes.NodeWriteResult:
    entry = NodeRegisterEntry(node=node, now_s=now, timestamp=f"t{index}")
    result = _apply(fsm, index, MessageType.NODE_REGISTER, entry)
    assert isinstance(result, store_nodes.NodeWriteResult)
    return result


def _status(fsm: FSM, index: int, node_id: str, status: str, event: str = "", now: int = 200) -> object:
    entry = NodeStatusEntry(
        node_id=node_id, status=NodeStatus(status), event=event, now_s=now, timestamp=f"t{index}"
    )
    return _apply(fsm, index, MessageType.NODE_UPDATE_STATUS, entry)


def test_register_keeps_identity_and_rejects_other_secret() -> None:
    store = StateStore()
    fsm = make_fsm(store)
    r = _register(fsm, 3, _node())
    assert r.node is not None
    assert (r.node.create_index, r.node.modify_index) == (3, 3)
    assert [e.message for e in r.node.events] == ["Node registered"]
    assert r.node.computed_class.startswith("v1:")
    again = _register(fsm, 4, _node(status=NodeStatus.READY))
    assert again.node is not None
    assert (again.node.create_index, again.node.modify_index) == (3, 4)
    assert again.changed
    bad = _register(fsm, 5, _node(secret="other"))
    assert bad.error
    got = store_nodes.get(store.snapshot(), "n1")
    assert got is not None
    assert got.secret_id == "s1"
    assert got.modify_index == 4


def test_status_events_and_eligibility() -> None:
    store = StateStore()
    fsm = make_fsm(store)
    _register(fsm, 1, _node())
    r = _status(fsm, 2, "n1", "down", "Node heartbeat missed", now=500)
    assert isinstance(r, store_nodes.NodeWriteResult)
    assert r.changed
    assert r.node is not None
    assert r.node.status == NodeStatus.DOWN
    assert r.node.status_updated_at == 500
    assert r.node.events[-1].message == "Node heartbeat missed"
    missing = _status(fsm, 3, "nope", "ready")
    assert isinstance(missing, store_nodes.NodeWriteResult)
    assert missing.error.startswith("node not found")
    entry = NodeEligibilityEntry(node_id="n1", eligibility=NodeEligibility.INELIGIBLE, timestamp="t")
    e = _apply(fsm, 4, MessageType.NODE_UPDATE_ELIGIBILITY, entry)
    assert isinstance(e, store_nodes.NodeWriteResult)
    assert e.node is not None
    assert e.node.scheduling_eligibility == "ineligible"
    # re-registering keeps the operator's eligibility
    r2 = _register(fsm, 5, _node(status=NodeStatus.READY))
    assert r2.node is not None
    assert r2.node.scheduling_eligibility == "ineligible"
    assert r2.node.events[-1].message == "Node re-registered"


def test_deregister_and_gc_candidates() -> None:
    store = StateStore()
    fsm = make_fsm(store)
    for i, nid in enumerate(("a", "b", "c", "d"), start=1):
        _register(fsm, i, _node(nid, secret=nid))
    _status(fsm, 5, "a", "down", now=1000)
    _status(fsm, 6, "b", "down", now=1000)
    _status(fsm, 7, "c", "down", now=1900)
    # "b" still has a running allocation: not collected
    with store.write(8) as txn:
        txn.put(store_nodes.ALLOCS_TABLE, "x", Allocation(id="x", node_id="b"))
        txn.put(
            store_nodes.ALLOCS_TABLE,
            "y",
            dataclasses.replace(Allocation(id="y", node_id="a"), client_status=AllocClientStatus.COMPLETE),
        )
    snap = store.snapshot()
    assert store_nodes.gc_candidates(snap, now_s=2000, threshold_s=500) == ["a"]
    assert store_nodes.gc_candidates(snap, now_s=1500, threshold_s=500) == []  # whole seconds: not early
    assert store_nodes.gc_candidates(snap, now_s=1900, threshold_s=0) == ["a", "c"]
    r = _apply(fsm, 9, MessageType.NODE_DEREGISTER, NodeDeregisterEntry(node_ids=("a", "zz")))
    assert isinstance(r, store_nodes.NodeWriteResult)
    assert r.deleted == ("a",)
    assert [n.id for n in store_nodes.list_nodes(store.snapshot())] == ["b", "c", "d"]
    assert [n.id for n in store_nodes.list_nodes(store.snapshot(), prefix="c")] == ["c"]
    assert store.table_index(store_nodes.TABLE) == 9


def test_dump_restore_round_trip() -> None:
    store = StateStore()
    fsm = make_fsm(store)
    _register(fsm, 1, _node())
    other = StateStore()
    other.restore(store.dump())
    assert store_nodes.get(other.snapshot(), "n1") == store_nodes.get(store.snapshot(), "n1")
