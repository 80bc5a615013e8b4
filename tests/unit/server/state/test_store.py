"""StateStore: snapshots are isolated, indexes follow writes, watchers wake, dump round-trips."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from nomadd.server.state import store_variables
from nomadd.server.state.store import StateStore, register_table

register_table("t_test")
register_table("t_other")


def test_snapshot_is_isolated_from_later_writes() -> None:
    s = StateStore()
    with s.write(5) as txn:
        txn.put("t_test", "a", 1)
    snap = s.snapshot()
    with s.write(6) as txn:
        txn.put("t_test", "a", 2)
        txn.put("t_test", "b", 3)
    assert dict(snap.table("t_test")) == {"a": 1}
    assert snap.table_index("t_test") == 5
    assert dict(s.snapshot().table("t_test")) == {"a": 2, "b": 3}
    assert s.table_index("t_test") == 6
    assert s.table_index("never_written") == 1


def test_delete_of_missing_key_does_not_move_index() -> None:
    s = StateStore()
    with s.write(3) as txn:
        txn.put("t_test", "a", 1)
    with s.write(4) as txn:
        assert not txn.delete("t_test", "zz")
    assert s.table_index("t_test") == 3
    assert s.latest_index() == 4


def test_wait_for_wakes_on_write_from_another_thread() -> None:
    async def main() -> None:
        s = StateStore()
        with s.write(2) as txn:
            txn.put("t_test", "a", 1)

        def writer() -> None:
            time.sleep(0.05)  # a separate thread, standing in for the raft thread
            with s.write(9) as txn:
                txn.put("t_test", "b", 2)

        t = threading.Thread(target=writer)
        t0 = time.monotonic()
        t.start()
        idx = await s.wait_for(["t_test"], 2, timeout=5)
        t.join()
        assert idx == 9
        assert time.monotonic() - t0 < 2
        # already past min_index: returns at once
        assert await s.wait_for(["t_test"], 3, timeout=5) == 9
        # nothing changes: times out with the current index
        t1 = time.monotonic()
        assert await s.wait_for(["t_test"], 9, timeout=0.1) == 9
        assert time.monotonic() - t1 >= 0.09

    asyncio.run(main())


def test_writes_to_other_tables_do_not_wake() -> None:
    async def main() -> None:
        s = StateStore()
        task = asyncio.create_task(s.wait_for(["t_test"], 1, timeout=0.3))
        await asyncio.sleep(0.01)
        with s.write(4) as txn:
            txn.put(store_variables.TABLE, "x", None)
        assert not task.done()
        assert await task == 1

    asyncio.run(main())


def test_dump_restore_round_trip() -> None:
    s = StateStore()
    with s.write(7) as txn:
        store_variables.upsert_locked(
            txn, namespace="default", path="a/b", key_id="k1", data=b"sealed", now_ns=10, cas=None
        )
    data = s.dump()
    s2 = StateStore()
    s2.restore(data)
    var = store_variables.get(s2.snapshot(), "default", "a/b")
    assert var is not None
    assert var.modify_index == 7
    assert (var.key_id, var.data) == ("k1", b"sealed")
    assert s2.table_index(store_variables.TABLE) == 7
    assert s2.latest_index() == 7


def test_restore_rejects_unknown_table() -> None:
    import msgpack

    bad = msgpack.packb({"v": 1, "latest": 1, "indexes": {}, "tables": {"nope": {}}})
    with pytest.raises(ValueError, match="unknown table"):
        StateStore().restore(bad)


def test_changed_keys_follow_puts_and_deletes_and_a_restore_means_every_row() -> None:
    s = StateStore()
    journal = s.watch_keys("t_test")
    with s.write(1) as txn:
        txn.put("t_test", "a", 1)
    assert s.take(journal)[1] is None  # the first take: read the whole table
    with s.write(2) as txn:
        txn.put("t_test", "b", 2)
        txn.put("t_other", "x", 0)
    with s.write(3) as txn:
        txn.delete("t_test", "a")
        txn.delete("t_test", "missing")
    snap, keys = s.take(journal)
    assert keys == {"a", "b"} and dict(snap.table("t_test")) == {"b": 2}
    assert s.take(journal)[1] == set()
    s.restore(s.dump())
    assert s.take(journal)[1] is None
    with s.write(4) as txn:
        txn.replace_all({"t_test": {"c": 3}})
    assert s.take(journal)[1] is None
    s.unwatch_keys(journal)
    with s.write(5) as txn:
        txn.put("t_test", "d", 4)
    assert journal.keys == set()


def test_changed_keys_past_the_cap_mean_every_row(monkeypatch: pytest.MonkeyPatch) -> None:
    from nomadd.server.state import store as store_module

    monkeypatch.setattr(store_module, "MAX_CHANGED_KEYS", 2)
    s = StateStore()
    journal = s.watch_keys("t_test")
    s.take(journal)
    for i, key in enumerate("ab"):
        with s.write(i + 1) as txn:
            txn.put("t_test", key, i)
    assert s.take(journal)[1] == {"a", "b"}
    for i, key in enumerate("cde"):
        with s.write(i + 3) as txn:
            txn.put("t_test", key, i)
    assert s.take(journal)[1] is None and journal.keys == set()


def test_a_row_waiter_wakes_for_its_row_only_and_on_a_restore() -> None:
    async def main() -> None:
        s = StateStore()
        with s.write(1) as txn:
            txn.put("t_test", "mine", 0)
        assert await s.wait_for(["t_test"], 0, 1.0, row=("t_test", "mine")) == 1  # older: at once
        waiting = asyncio.ensure_future(s.wait_for(["t_test"], 1, 5.0, row=("t_test", "mine")))
        await asyncio.sleep(0.02)
        with s.write(2) as txn:
            txn.put("t_test", "other", 1)
        await asyncio.sleep(0.05)
        assert not waiting.done()  # another row was written
        with s.write(3) as txn:
            txn.delete("t_test", "mine")
        assert await asyncio.wait_for(waiting, 1) == 3
        waiting = asyncio.ensure_future(s.wait_for(["t_test"], 3, 5.0, row=("t_test", "mine")))
        await asyncio.sleep(0.02)
        s.restore(s.dump())
        assert await asyncio.wait_for(waiting, 1) == 3
        assert not s._row_waiters and not s._waiters

    asyncio.run(main())
