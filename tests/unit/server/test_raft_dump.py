"""Raft full dumps are written by a forked child (nomadd/server/raft/dump.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from pysyncobj.config import SERIALIZER_STATE

from nomadd.server.fsm import FSM
from nomadd.server.fsm.dispatch import entry_kinds
from nomadd.server.raft import dump as dump_module
from nomadd.server.raft.dump import DumpSerializer
from nomadd.server.state.store import StateStore, register_table

register_table("test_dump_rows")  # values stored as they are


def _wait_done(dumper: DumpSerializer, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = dumper.check()
        if state != SERIALIZER_STATE.SERIALIZING:
            return state
        time.sleep(0.01)
    raise AssertionError("the dump did not finish")


def _fsm() -> FSM:
    return FSM(StateStore(), entry_kinds())


def test_the_dump_is_encoded_in_another_process_and_restores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The encoding runs in a child (its own GIL), not on a thread of the server; the file it
    leaves restores the store."""
    seen = tmp_path / "encoder-pid"
    real = dump_module.dump_snapshot

    def recording(snap: object) -> bytes:
        seen.write_text(str(os.getpid()))
        return real(snap)  # type: ignore[arg-type]

    monkeypatch.setattr(dump_module, "dump_snapshot", recording)
    fsm = _fsm()
    with fsm.store.write(7) as txn:
        txn.put("test_dump_rows", "k", "v")
    path = str(tmp_path / "raft.dump")
    dumper = DumpSerializer(fsm, path)
    dumper.serialize(path, ("tail", 7))
    assert _wait_done(dumper) == SERIALIZER_STATE.SUCCESS
    assert int(seen.read_text()) != os.getpid()
    assert not Path(path + ".nomadd.tmp").exists()
    other = _fsm()
    assert DumpSerializer(other, path).deserialize(path) == ("tail", 7)
    assert other.store.snapshot().get("test_dump_rows", "k") == "v"
    assert other.store.latest_index() == 7


def test_a_failed_child_leaves_the_old_dump_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fsm = _fsm()
    path = str(tmp_path / "raft.dump")
    Path(path).write_bytes(b"old")

    def broken(snap: object) -> bytes:
        raise RuntimeError("planted")

    monkeypatch.setattr(dump_module, "dump_snapshot", broken)
    dumper = DumpSerializer(fsm, path)
    dumper.serialize(path, None)
    assert _wait_done(dumper) == SERIALIZER_STATE.FAILED
    assert Path(path).read_bytes() == b"old"
    assert not Path(path + ".nomadd.tmp").exists()
    assert dumper.check() == SERIALIZER_STATE.NOT_SERIALIZING  # reported once


def test_close_kills_a_dump_still_being_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def slow(snap: object) -> bytes:
        time.sleep(60)
        return b""

    monkeypatch.setattr(dump_module, "dump_snapshot", slow)
    dumper = DumpSerializer(_fsm(), str(tmp_path / "raft.dump"))
    dumper.serialize(str(tmp_path / "raft.dump"), None)
    pid = dumper._pid
    assert pid
    t0 = time.monotonic()
    dumper.close()
    assert time.monotonic() - t0 < 5
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped
    assert not (tmp_path / "raft.dump").exists()
