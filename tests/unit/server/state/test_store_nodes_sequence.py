"""store_nodes.node_sequence: one walk of the nodes table per table version."""

from __future__ import annotations

from nomadd.scheduler.testing import mock_node
from nomadd.server.state import store_nodes
from nomadd.server.state.store import StateStore


def _put(store: StateStore, index: int, node_id: str) -> None:
    with store.write(index) as txn:
        store_nodes.upsert_locked(txn, mock_node(node_id), now_s=0, timestamp="t")


def test_the_walk_is_reused_until_a_node_is_written() -> None:
    store = StateStore()
    _put(store, 1, "n1")
    _put(store, 2, "n2")
    first = store_nodes.node_sequence(store.snapshot())
    assert sorted(n.id for n in first) == ["n1", "n2"]
    assert store_nodes.node_sequence(store.snapshot()) is first  # same table: no new walk
    with store.write(3) as txn:
        txn.put("variables_unrelated_test", "k", "v")
    assert store_nodes.node_sequence(store.snapshot()) is first
    _put(store, 4, "n3")
    after = store_nodes.node_sequence(store.snapshot())
    assert sorted(n.id for n in after) == ["n1", "n2", "n3"]
    assert sorted(n.id for n in store_nodes.node_sequence(store.snapshot())) == ["n1", "n2", "n3"]
