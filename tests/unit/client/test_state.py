"""The client's sqlite state db: identity survives reopening; allocs and handles round-trip."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from nomadd.client.state import ClientState


def test_identity_survives_reopen(tmp_path: Path) -> None:
    d = tmp_path / "client"
    s1 = ClientState(str(d))
    ident = s1.node_identity()
    assert ident == s1.node_identity()
    s1.close()
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(d / "state.db").st_mode) == 0o600
    s2 = ClientState(str(d))
    assert s2.node_identity() == ident
    s2.close()


def test_allocs_handles_and_states(tmp_path: Path) -> None:
    s = ClientState(str(tmp_path))
    s.put_alloc("a1", {"id": "a1", "n": 1})
    s.put_alloc("a1", {"id": "a1", "n": 2})
    s.put_alloc("a2", {"id": "a2"})
    s.put_task_handle("a1", "web", {"pid": 10})
    s.put_task_state("a1", "web", {"State": "running"})
    assert s.allocs() == {"a1": {"id": "a1", "n": 2}, "a2": {"id": "a2"}}
    assert s.task_handles("a1") == {"web": {"pid": 10}}
    s.put_task_handle("a1", "web", None)
    assert s.task_handles("a1") == {}
    s.put_task_handle("a1", "web", {"pid": 11})
    s.delete_alloc("a1")
    assert s.allocs() == {"a2": {"id": "a2"}}
    assert s.task_handles("a1") == {}
    assert s.task_states("a1") == {}
    s.close()


def test_task_launches_and_durability(tmp_path: Path) -> None:
    s = ClientState(str(tmp_path))
    # every commit is fsync'ed: the writes the client relies on survive a power cut
    assert s._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert s._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    s.put_alloc("a1", {"id": "a1"})
    s.put_task_launch("a1", "web", "aaaa1111")
    s.put_task_launch("a1", "web", "bbbb2222")  # the next start replaces it
    s.put_task_launch("a1", "db", "cccc3333")
    assert s.task_launches("a1") == {"web": "bbbb2222", "db": "cccc3333"}
    s.close()
    s = ClientState(str(tmp_path))
    assert s.task_launches("a1") == {"web": "bbbb2222", "db": "cccc3333"}
    s.delete_alloc("a1")
    assert s.task_launches("a1") == {}
    s.close()
