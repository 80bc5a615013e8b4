"""Raft full dumps are written by a forked child (nomadd/server/raft/dump.py)."""

from __future__ import annotations

import gzip
import hashlib
import itertools
import os
import pickle
import time
from pathlib import Path
from typing import Any

import msgpack
import pytest
from pysyncobj.config import SERIALIZER_STATE

from nomadd.server.fsm import FSM
from nomadd.server.fsm.dispatch import entry_kinds
from nomadd.server.raft import dump as dump_module
from nomadd.server.raft import dump_read, dump_write
from nomadd.server.raft.dump import MAGIC, DumpSerializer, staggered, write_dump_file
from nomadd.server.state.store import StateStore, dump_snapshot, register_table
from nomadd.structs.codec import pack
from nomadd.structs.messages import MessageType
from nomadd.structs.requests.snapshot import RestoreResult, SnapshotAbortEntry, SnapshotChunkEntry

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
    real = dump_write.write_dump

    def recording(snap: object, sink: object) -> None:
        seen.write_text(str(os.getpid()))
        real(snap, sink)  # type: ignore[arg-type]

    monkeypatch.setattr(dump_write, "write_dump", recording)
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

    def broken(snap: object, sink: object) -> None:
        raise RuntimeError("planted")

    monkeypatch.setattr(dump_write, "write_dump", broken)
    dumper = DumpSerializer(fsm, path)
    dumper.serialize(path, None)
    assert _wait_done(dumper) == SERIALIZER_STATE.FAILED
    assert Path(path).read_bytes() == b"old"
    assert not Path(path + ".nomadd.tmp").exists()
    assert dumper.check() == SERIALIZER_STATE.NOT_SERIALIZING  # reported once


def test_close_kills_a_dump_still_being_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def slow(snap: object, sink: object) -> None:
        time.sleep(60)

    monkeypatch.setattr(dump_write, "write_dump", slow)
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


def _fsm_with_rows(index: int, rows: int) -> FSM:
    fsm = _fsm()
    with fsm.store.write(index) as txn:
        for i in range(rows):
            txn.put("test_dump_rows", f"k{i}", f"value-{i}")
    return fsm


def test_a_dump_written_by_format_1_still_loads(tmp_path: Path) -> None:
    """A server upgraded in place restarts from the dump its previous version wrote: format 1,
    ``gzip(pickle((1, store msgpack, tail data)))``, as that writer made it."""
    source = _fsm_with_rows(9, 3)
    path = tmp_path / "raft.dump"
    blob = pickle.dumps((1, dump_snapshot(source.store.snapshot()), ("tail", 9)), protocol=4)
    path.write_bytes(gzip.compress(blob, compresslevel=1))
    other = _fsm()
    assert DumpSerializer(other, str(path)).deserialize(str(path)) == ("tail", 9)
    assert other.store.snapshot().get("test_dump_rows", "k2") == "value-2"
    assert other.store.latest_index() == 9


def _with_crc_of(good: bytes, content: bytes) -> bytes:
    """``content`` gzip'ed, carrying the CRC of ``good``'s content: only the CRC tells."""
    bad = gzip.compress(content, compresslevel=1)
    return bad[:-8] + good[-8:-4] + bad[-4:]


def _mangled(good: bytes, what: str) -> bytes:
    raw = gzip.decompress(good)
    end = msgpack.packb(["end", 5])
    assert raw.endswith(end)
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0xFF
    return {
        "empty": b"",
        "not gzip": b"garbage",
        "cut in the header": good[:30],
        "cut in the rows": good[: len(good) // 2],
        "cut before the gzip trailer": good[:-8],
        "a flipped byte": bytes(flipped),
        "a changed value, whole framing": _with_crc_of(good, raw.replace(b"value-7", b"valuX-7")),
        "the end mark cut off": gzip.compress(raw[: -len(end)]),
        "the store cut off": gzip.compress(raw[: len(raw) // 2]),
        "data after the end mark": gzip.compress(raw + end),
        "a bad end mark": gzip.compress(raw[: -len(end)] + msgpack.packb(["end", 4])),
        "a huge tail length": gzip.compress(
            raw[: len(MAGIC)] + (1 << 62).to_bytes(8, "big") + raw[len(MAGIC) + 8 :]
        ),
    }[what]


_MANGLES = [
    "empty",
    "not gzip",
    "cut in the header",
    "cut in the rows",
    "cut before the gzip trailer",
    "a flipped byte",
    "a changed value, whole framing",
    "the end mark cut off",
    "the store cut off",
    "data after the end mark",
    "a bad end mark",
    "a huge tail length",
]


@pytest.mark.parametrize("what", _MANGLES)
def test_a_truncated_or_corrupt_dump_is_refused_and_changes_nothing(tmp_path: Path, what: str) -> None:
    """The file checks itself (gzip CRC and length, msgpack framing, the end mark) and is
    decoded whole before the store changes: never half-applied."""
    path = tmp_path / "raft.dump"
    write_dump_file(str(path), _fsm_with_rows(5, 2000).store.snapshot(), ("tail", 5))
    good = path.read_bytes()
    path.write_bytes(_mangled(good, what))
    target = _fsm_with_rows(3, 1)
    with pytest.raises(ValueError, match=f"raft dump {path} refused"):
        DumpSerializer(target, str(path)).deserialize(str(path))
    snap = target.store.snapshot()
    assert target.store.latest_index() == 3
    assert snap.get("test_dump_rows", "k0") == "value-0" and snap.get("test_dump_rows", "k1") is None
    path.write_bytes(good)
    target = _fsm()
    assert DumpSerializer(target, str(path)).deserialize(str(path)) == ("tail", 5)
    assert target.store.snapshot().get("test_dump_rows", "k1999") == "value-1999"


def test_each_server_dumps_at_its_own_phase_of_the_period() -> None:
    """The servers apply the same entries at the same time: with the same period each dumps at
    its own phase (place / count of it), so their dumps (a child encoding the whole store each)
    never coincide, and once in phase a server dumps exactly one period apart."""
    period, count = 9000, 3
    dumps: dict[int, list[int]] = {}
    for place in range(count):
        at = [0]  # every server starts from the same log (a fresh cluster, or all restarted)
        for _ in range(6):
            at.append(at[-1] + staggered(at[-1], period, place, count))
        dumps[place] = at[1:]
        gaps = [b - a for a, b in itertools.pairwise(at[1:])]
        assert all(a % period == place * period // count for a in at[1:]), at
        assert gaps == [period] * len(gaps)
        assert period // 2 <= at[1] < period * 3 // 2
    every = sorted(i for at in dumps.values() for i in at)
    assert min(b - a for a, b in itertools.pairwise(every)) == period // count
    # one server alone: every period; a dump off its phase (late) is pulled back onto it
    assert staggered(0, period, 0, 1) == period
    assert staggered(3100 + 200, period, 1, 3) + 3300 == 12_000


def test_a_dump_is_read_back_in_pieces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A restore (a restart, a follower installing the leader's file) never reads the file
    whole: the store comes back row by row from reads of at most 1 MiB."""
    path = tmp_path / "raft.dump"
    write_dump_file(str(path), _fsm_with_rows(5, 20_000).store.snapshot(), ("tail", 5))
    asked: list[int] = []
    real = dump_read.Inflater.read

    def read(self: Any, size: int = -1) -> bytes:
        asked.append(size)
        return real(self, size)

    monkeypatch.setattr(dump_read.Inflater, "read", read)
    target = _fsm()
    assert DumpSerializer(target, str(path)).deserialize(str(path)) == ("tail", 5)
    assert target.store.snapshot().get("test_dump_rows", "k19999") == "value-19999"
    assert asked and all(0 <= n <= 1 << 20 for n in asked), asked


def _chunks(path: Path, size: int) -> list[tuple[bytes, bool, bool]]:
    """``path`` as pysyncobj's sender cuts it: pieces of ``size``, then an empty last one."""
    data = path.read_bytes()
    out = [(data[i : i + size], i == 0, False) for i in range(0, len(data), size)]
    return [*out, (b"", False, True)]


def _receiver(path: Path, fsm: FSM) -> tuple[DumpSerializer, Any]:
    """A DumpSerializer and pysyncobj's serializer around it, as a follower has them."""
    from nomadd.server.raft.transmit import SnapshotSerializer

    dumper = DumpSerializer(fsm, str(path))
    return dumper, SnapshotSerializer(str(path), 1 << 20, False, None, dumper.deserialize, None, hooks=dumper)


def test_a_snapshot_from_the_leader_is_decoded_while_it_arrives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pysyncobj writes the leader's chunks to a file and loads it after the last one; the
    store is decoded from that file as it grows, so the load takes the decoded state instead
    of decoding the whole file on the tick thread then."""
    source = tmp_path / "leader.dump"
    write_dump_file(str(source), _fsm_with_rows(9, 30_000).store.snapshot(), ("tail", 9))
    path = tmp_path / "raft.dump"
    target = _fsm()
    dumper, serializer = _receiver(path, target)

    def whole(filename: str) -> Any:
        raise AssertionError("the snapshot was decoded from the whole file after the last chunk")

    monkeypatch.setattr(dumper, "_decode_file", whole)
    chunks = _chunks(source, 64 * 1024)
    assert len(chunks) > 3
    for chunk in chunks[:-1]:
        assert serializer.setTransmissionData(chunk) is False
        time.sleep(0.002)  # the leader's ticks: the decoder reads as the file grows
    assert serializer.setTransmissionData(chunks[-1]) is True  # renamed into place
    assert serializer.deserialize() == (None, "tail", 9)  # what pysyncobj's load calls
    assert target.store.snapshot().get("test_dump_rows", "k29999") == "value-29999"
    assert target.store.latest_index() == 9
    # what a stop that finds this follower's first own dump in progress estimates its size by
    rows = sum(map(len, target.store.snapshot()._tables.values()))
    assert dumper.bytes_per_row == pytest.approx(path.stat().st_size / rows)


def test_a_snapshot_sent_again_from_the_start_is_decoded_from_its_new_start(tmp_path: Path) -> None:
    """A send cut off (a new leader starts over, or the same one after a reconnect) leaves a
    decoder waiting; the new first chunk replaces it, and a bad stream is still refused whole."""
    source = tmp_path / "leader.dump"
    write_dump_file(str(source), _fsm_with_rows(4, 5000).store.snapshot(), ("tail", 4))
    path = tmp_path / "raft.dump"
    target = _fsm()
    _, serializer = _receiver(path, target)
    chunks = _chunks(source, 16 * 1024)
    for chunk in chunks[:3]:
        serializer.setTransmissionData(chunk)
    for chunk in chunks:
        serializer.setTransmissionData(chunk)
    assert serializer.deserialize() == (None, "tail", 4)
    assert target.store.snapshot().get("test_dump_rows", "k4999") == "value-4999"
    # a stream that lost a piece in the middle: refused, the store unchanged
    other = _fsm()
    _, serializer = _receiver(tmp_path / "b.dump", other)
    for chunk in chunks[:2] + chunks[3:]:
        serializer.setTransmissionData(chunk)
    with pytest.raises(ValueError, match="refused"):
        serializer.deserialize()
    assert other.store.latest_index() == 0


def _sized(path: Path, size: int) -> str:
    with open(path, "wb") as f:
        f.truncate(size)
    return str(path)


def test_a_quiet_server_with_a_large_journal_dumps_at_its_own_delay(tmp_path: Path) -> None:
    """A server that applied nothing for IDLE_DUMP_S dumps once per quiet spell, if its journal
    holds more than IDLE_DUMP_MIN_BYTES: a restart then replays next to nothing. Whatever its
    place among the voters: a follower's quiet dump runs nicer, and a later one leaves a restart
    meanwhile to replay the whole journal."""
    journal = _sized(tmp_path / "raft.journal", dump_module.IDLE_DUMP_MIN_BYTES + 1)
    dumper = DumpSerializer(_fsm(), str(tmp_path / "raft.dump"), journal=journal)
    quiet = dump_module.IDLE_DUMP_S
    assert not dumper.tick(7, 100.0)
    assert not dumper.tick(7, 100.0 + quiet - 0.1)
    assert dumper.tick(7, 100.0 + quiet + 0.1)
    assert not dumper.tick(7, 100.0 + quiet + 5)  # once per quiet spell
    assert not dumper.tick(8, 200.0)
    dumper._place = (2, 3)
    assert not dumper.tick(8, 200.0 + quiet - 0.1, leader=False)
    assert dumper.tick(8, 200.0 + quiet + 0.1, leader=False)
    dumper.sending_until = 450.0  # a send of the dump in progress: a new dump would restart it
    assert not dumper.tick(9, 300.0) and not dumper.tick(9, 400.0)
    assert dumper.tick(9, 460.0)  # ... a send that stalled (a leader that stepped down) no longer counts
    dumper.sending_until = 0.0
    _sized(tmp_path / "raft.journal", dump_module.IDLE_DUMP_MIN_BYTES)  # small: nothing to gain
    assert not dumper.tick(10, 500.0) and not dumper.tick(10, 600.0)


def test_no_quiet_dump_while_a_restore_is_staged(tmp_path: Path) -> None:
    """While an operator restore stages its chunks the log is quiet (the leader waits for its
    own decoder before the last chunk), but a full dump then would take the cores the three
    servers' decoders need (at a million allocations all three dumped inside that wait); once
    the restore is aborted (or done) the quiet spell dumps as before."""
    journal = _sized(tmp_path / "raft.journal", dump_module.IDLE_DUMP_MIN_BYTES + 1)
    fsm = _fsm()
    dumper = DumpSerializer(fsm, str(tmp_path / "raft.dump"), journal=journal)
    chunk = SnapshotChunkEntry(restore_id="r", seq=0, total=3, sha256="0" * 64, data=b"\x1f\x8b")
    assert fsm.apply(7, MessageType.SNAPSHOT_RESTORE_CHUNK, pack(chunk)) == RestoreResult()
    quiet = dump_module.IDLE_DUMP_S
    assert not dumper.tick(7, 100.0)
    assert not dumper.tick(7, 100.0 + quiet + 0.1)
    assert not dumper.tick(7, 100.0 + quiet + 30)
    fsm.apply(8, MessageType.SNAPSHOT_RESTORE_ABORT, pack(SnapshotAbortEntry(restore_id="r")))
    assert not dumper.tick(8, 200.0)
    assert dumper.tick(8, 200.0 + quiet + 0.1)


def test_a_quiet_dump_in_progress_stops_when_an_operator_restore_starts_staging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A quiet dump started just before an operator restore (a restarted server's, once it had
    replayed its journal) encodes a state the restore replaces, on the cores the three
    servers' decoders need: it is stopped once the first chunk is staged. An entry-paced dump
    and one a send waits for go on."""

    def slow(snap: object, sink: object) -> None:
        time.sleep(60)

    monkeypatch.setattr(dump_write, "write_dump", slow)
    journal = _sized(tmp_path / "raft.journal", dump_module.IDLE_DUMP_MIN_BYTES + 1)
    fsm = _fsm()
    path = str(tmp_path / "raft.dump")
    dumper = DumpSerializer(fsm, path, journal=journal)
    quiet = dump_module.IDLE_DUMP_S
    try:
        assert not dumper.tick(7, 100.0)
        assert dumper.tick(7, 100.0 + quiet + 0.1, leader=False)  # a quiet follower's
        dumper.serialize(path, None)  # what pysyncobj does when told to
        quiet_pid = dumper._pid
        assert quiet_pid and not dumper.tick(7, 150.0) and dumper._pid == quiet_pid  # nothing staged
        chunk = SnapshotChunkEntry(restore_id="r", seq=0, total=3, sha256="0" * 64, data=b"\x1f\x8b")
        assert fsm.apply(8, MessageType.SNAPSHOT_RESTORE_CHUNK, pack(chunk)) == RestoreResult()
        assert not dumper.tick(8, 151.0)
        assert dumper._pid == 0 and _wait_done(dumper) == SERIALIZER_STATE.FAILED
        dumper.serialize(path, None)  # the entry pace: pysyncobj's own trigger
        paced_pid = dumper._pid
        assert paced_pid and not dumper.tick(8, 152.0) and dumper._pid == paced_pid
        dumper.close()
        fsm.apply(9, MessageType.SNAPSHOT_RESTORE_ABORT, pack(SnapshotAbortEntry(restore_id="r")))
        assert not dumper.tick(9, 200.0, leader=False)
        assert dumper.tick(9, 200.0 + quiet + 0.1, leader=False)
        dumper.serialize(path, None)
        assert dumper.hold_send()  # a leader's send waits for the dump in progress
        assert fsm.apply(10, MessageType.SNAPSHOT_RESTORE_CHUNK, pack(chunk)) == RestoreResult()
        sent_pid = dumper._pid
        assert sent_pid and not dumper.tick(10, 260.0) and dumper._pid == sent_pid
    finally:
        dumper.close()
        # the staged restore's decoder thread stops with it (other tests count those threads)
        fsm.apply(11, MessageType.SNAPSHOT_RESTORE_ABORT, pack(SnapshotAbortEntry(restore_id="r")))


def test_a_leader_dumps_before_sending_a_dump_older_than_much_of_its_journal(tmp_path: Path) -> None:
    """A follower catching up gets the leader's dump, then the journal since it: when that
    journal is larger than SEND_FRESH_RATIO times the dump the send waits for a new dump."""
    dump = _sized(tmp_path / "raft.dump", 50 << 20)
    journal = _sized(tmp_path / "raft.journal", int(dump_module.SEND_FRESH_RATIO * (50 << 20)) - 1)
    dumper = DumpSerializer(_fsm(), dump, journal=journal)
    assert not dumper.tick(3, 0.0)
    assert not dumper.hold_send()
    _sized(tmp_path / "raft.journal", int(dump_module.SEND_FRESH_RATIO * (50 << 20)) + 1)
    assert dumper.hold_send()
    assert dumper.hold_send()  # still waiting: the tick starts the dump
    assert dumper.tick(3, 0.0)
    assert dumper.hold_send()  # ... which pysyncobj begins at its next tick
    dumper._state = SERIALIZER_STATE.SERIALIZING
    assert dumper.hold_send()
    dumper._state = SERIALIZER_STATE.NOT_SERIALIZING
    assert not dumper.tick(3, 0.0)
    assert not dumper.hold_send()  # one dump per applied index (pysyncobj had nothing newer)
    assert not dumper.tick(4, 1.0)
    assert dumper.hold_send()
    assert dumper.tick(4, 1.0)
    assert not dumper.tick(4, 1.0)  # pysyncobj did not start it: the send goes on
    assert not dumper.hold_send()
    dumper.sending_until = time.monotonic() + 10  # another follower is sent the current one
    assert not dumper.hold_send()


def test_no_quiet_dump_while_a_restores_followers_may_still_decode(tmp_path: Path) -> None:
    """A restore applied here (its chunks fill the journal) is followed by a quiet spell, but
    the followers' decoders, nicer than the leader's, are still at work: no quiet dump for
    RESTORE_SETTLE_S after it. A restore the server started with (loaded from its dump) does
    not delay one."""
    from nomadd.server.fsm.snapshot import STAGING_TABLE

    journal = _sized(tmp_path / "raft.journal", dump_module.IDLE_DUMP_MIN_BYTES + 1)
    fsm = _fsm()
    with fsm.store.write(5) as txn:
        txn.put(STAGING_TABLE, "done", ("r0", 3))  # a restore before this server started
    dumper = DumpSerializer(fsm, str(tmp_path / "raft.dump"), journal=journal)
    quiet, settle = dump_module.IDLE_DUMP_S, dump_module.RESTORE_SETTLE_S
    assert not dumper.tick(5, 100.0)
    assert dumper.tick(5, 100.0 + quiet + 0.1)
    with fsm.store.write(9) as txn:  # the last chunk of a restore, applied here
        txn.put(STAGING_TABLE, "done", ("r1", 8))
    assert not dumper.tick(9, 200.0)
    assert not dumper.tick(9, 200.0 + quiet + 0.1)
    assert not dumper.tick(9, 200.0 + settle - 0.1)
    assert dumper.tick(9, 200.0 + settle + 0.1)


def test_a_quiet_dump_runs_at_the_servers_priority_a_paced_one_nicer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dump beside placements (entry-paced) yields the CPU (+10); a quiet leader's dump, or one
    a follower waits for, does not (at +10 a C1M leader's quiet dump took 125 s beside a save and
    a follower's decode, and the follower's catch-up waited for it). A quiet follower's dump
    yields too: nothing waits for it, and two at the server's priority beside the leader's dump
    for an operator snapshot save made that save 33 s at a million allocations."""
    nices: list[int] = []
    monkeypatch.setattr(dump_module, "fork_worker", lambda work, on_error, nice: nices.append(nice) or 0)
    journal = _sized(tmp_path / "raft.journal", dump_module.IDLE_DUMP_MIN_BYTES + 1)
    path = str(tmp_path / "raft.dump")
    dumper = DumpSerializer(_fsm(), path, journal=journal)
    dumper.serialize(path, ("tail", 7))  # pysyncobj's own trigger: the entry pace
    dumper._state = SERIALIZER_STATE.NOT_SERIALIZING
    assert dumper.tick(7, 100.0 + dump_module.IDLE_DUMP_S + 1) or dumper.tick(7, 200.0)
    dumper.serialize(path, ("tail", 7))  # the quiet dump tick asked for
    dumper._state = SERIALIZER_STATE.NOT_SERIALIZING
    dumper.serialize(path, ("tail", 8))  # paced again
    dumper._state = SERIALIZER_STATE.NOT_SERIALIZING
    assert dumper.tick(9, 300.0) is False  # applied moved: a new quiet spell starts
    assert dumper.tick(9, 300.0 + dump_module.IDLE_DUMP_S + 1, leader=False)
    dumper.serialize(path, ("tail", 9))  # a quiet follower's
    assert nices == [dump_module.CHILD_NICE, 0, dump_module.CHILD_NICE, dump_module.CHILD_NICE]


def test_the_stores_member_of_a_dump_is_what_a_save_copies(tmp_path: Path) -> None:
    """The store's dump is a gzip member of its own in the dump file; the server knows where,
    its size and sha256 (an operator snapshot save copies it into its archive as it is), and
    that it no longer holds once another file is in place."""
    fsm = _fsm_with_rows(7, 3000)
    path = str(tmp_path / "raft.dump")
    dumper = DumpSerializer(fsm, path)
    assert dumper.dump_at(0) is None
    dumper.serialize(path, ("tail", 7))
    assert _wait_done(dumper) == SERIALIZER_STATE.SUCCESS
    dumped = dumper.dump_at(7)
    assert dumped is not None and dumped.index == 7 and dumped.tables == {"test_dump_rows"}
    member = Path(path).read_bytes()[dumped.offset : dumped.offset + dumped.length]
    state = gzip.decompress(member)
    assert state == dump_snapshot(fsm.store.snapshot())
    assert (dumped.size, dumped.sha256) == (len(state), hashlib.sha256(state).hexdigest())
    assert dumper.dump_at(8) is None  # not at a later index
    write_dump_file(path + ".x", fsm.store.snapshot(), None)
    os.replace(path + ".x", path)
    assert dumper.dump_at(7) is None  # another file (a leader's snapshot) is in place


def test_a_save_gets_a_dump_at_its_index(tmp_path: Path) -> None:
    """A save asks for a dump at its index: the next tick starts one unless the last will do;
    when pysyncobj starts none (nothing new) or it fails, the save is told not to wait."""
    dumper = DumpSerializer(_fsm_with_rows(7, 10), str(tmp_path / "raft.dump"))
    dumper.want_dump(7)
    assert dumper.dump_wanted(7)
    assert dumper.tick(7, 100.0)  # started at once: no quiet delay
    assert not dumper.tick(7, 100.1)  # pysyncobj started none (nothing new since the last)
    assert not dumper.dump_wanted(7)
    dumper.want_dump(7)
    dumper.sending_until = time.monotonic() + 10  # a send of the current dump goes on first
    assert not dumper.tick(7, time.monotonic())
    assert dumper.dump_wanted(7)
    dumper.sending_until = 0.0
    assert dumper.tick(7, time.monotonic())
    dumper.serialize(dumper._filename, ("tail", 7))  # what pysyncobj then does
    assert _wait_done(dumper) == SERIALIZER_STATE.SUCCESS
    assert not dumper.tick(7, time.monotonic())  # the dump is at the save's index
    assert not dumper.dump_wanted(7) and dumper.dump_at(7) is not None
    dumper.want_dump(7)
    assert not dumper.tick(7, time.monotonic()) and dumper.dump_at(7) is not None


def _slow_dump(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, index: int) -> DumpSerializer:
    """A dumper whose entry-paced dump (pysyncobj's own trigger: +10) of the store at ``index``
    is still being written, once its child has made itself nicer."""

    def slow(snap: object, sink: object) -> None:
        time.sleep(60)

    monkeypatch.setattr(dump_write, "write_dump", slow)
    path = str(tmp_path / "raft.dump")
    dumper = DumpSerializer(_fsm_with_rows(index, 1), path)
    dumper.serialize(path, None)
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    deadline = time.monotonic() + 5
    while (os.getpriority(os.PRIO_PROCESS, dumper._pid), os.sched_getscheduler(dumper._pid)) != (
        min(19, mine + dump_module.CHILD_NICE),
        os.SCHED_IDLE,
    ):
        assert time.monotonic() < deadline, "the child did not make itself nicer and idle"
        time.sleep(0.01)
    return dumper


@pytest.mark.skipif(
    os.geteuid() != 0 and os.environ.get("CI") != "true",
    reason="raising a process's priority needs CAP_SYS_NICE",
)
def test_a_dump_a_follower_or_a_save_waits_for_gets_the_servers_priority(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An entry-paced dump runs SCHED_IDLE at +10; once a follower's catch-up (or a save, at its
    index) waits for it, it runs at the server's priority, in the ordinary class."""
    dumper = _slow_dump(tmp_path, monkeypatch, 5)
    try:
        pid, mine = dumper._pid, os.getpriority(os.PRIO_PROCESS, 0)
        assert not dumper.tick(5, time.monotonic())
        assert os.getpriority(os.PRIO_PROCESS, pid) != mine  # nothing waits for it
        assert os.sched_getscheduler(pid) == os.SCHED_IDLE
        assert dumper.hold_send()
        assert os.getpriority(os.PRIO_PROCESS, pid) == mine
        assert os.sched_getscheduler(pid) == os.SCHED_OTHER
    finally:
        dumper.close()


@pytest.mark.skipif(
    os.geteuid() != 0 and os.environ.get("CI") != "true", reason="leaving SCHED_IDLE needs CAP_SYS_NICE"
)
def test_an_idle_dump_that_runs_too_long_leaves_the_idle_class(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a machine that other work keeps busy a SCHED_IDLE dump would never end (and the
    journal grow): after IDLE_CLASS_MAX_S it runs in the ordinary class, still +10."""
    dumper = _slow_dump(tmp_path, monkeypatch, 5)
    try:
        pid, mine = dumper._pid, os.getpriority(os.PRIO_PROCESS, 0)
        started = dumper._started
        assert not dumper.tick(5, started + dump_module.IDLE_CLASS_MAX_S - 1)
        assert os.sched_getscheduler(pid) == os.SCHED_IDLE
        assert not dumper.tick(5, started + dump_module.IDLE_CLASS_MAX_S + 1)
        assert os.sched_getscheduler(pid) == os.SCHED_OTHER
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, mine + dump_module.CHILD_NICE)
    finally:
        dumper.close()


def test_an_entry_paced_dump_of_an_older_index_makes_way_for_a_saves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A save wants a dump at its index while a dump of an older state is being written (an
    entry-paced one at +10 after a busy spell: 30 s): that one is stopped and the save's starts
    at once, instead of after it. One at the save's index or later is left alone."""
    dumper = _slow_dump(tmp_path, monkeypatch, 5)
    try:
        pid = dumper._pid
        dumper.want_dump(5)
        assert not dumper.tick(5, 1.0)
        assert dumper._pid == pid  # at the save's index: waited for
        dumper.want_dump(6)
        waits: list[int] = []
        real_waitpid = os.waitpid

        def waitpid(p: int, flags: int) -> tuple[int, int]:
            waits.append(flags)
            return real_waitpid(p, flags)

        monkeypatch.setattr(os, "waitpid", waitpid)
        assert not dumper.tick(6, 2.0)
        assert waits == []  # the tick thread does not wait for the killed child to exit
        assert dumper.check() == SERIALIZER_STATE.FAILED  # pysyncobj is told, once
        deadline = time.monotonic() + 5
        while dumper._dying:  # ... check() reaps it once it is gone
            assert time.monotonic() < deadline
            assert dumper.check() == SERIALIZER_STATE.NOT_SERIALIZING
            time.sleep(0.01)
        assert set(waits) == {os.WNOHANG}
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # killed and reaped
        assert dumper.tick(6, 3.0)  # the save's dump starts
        assert not (tmp_path / "raft.dump.nomadd.tmp").exists()
    finally:
        dumper.close()


def test_the_stores_member_is_the_same_compressed_in_line_or_by_a_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dump a save or a send waits for compresses in a second thread; an entry-paced one (+10,
    beside placements) or a quiet server's (beside the other servers' work: a follower's decode,
    a save's download) in line, one core at most. Both files hold the same store, and the
    member's place, size and sha256 hold for both."""
    snap = _fsm_with_rows(5, 5000).store.snapshot()
    states = []
    for threaded in (True, False):
        path = tmp_path / f"t{threaded}.dump"
        where = write_dump_file(str(path), snap, ("tail", 5), threaded=threaded)
        member = path.read_bytes()[where["offset"] : where["offset"] + where["length"]]
        state = gzip.decompress(member)
        assert (where["size"], where["sha256"]) == (len(state), hashlib.sha256(state).hexdigest())
        target = _fsm()
        assert DumpSerializer(target, str(path)).deserialize(str(path)) == ("tail", 5)
        assert target.store.snapshot().get("test_dump_rows", "k4999") == "value-4999"
        states.append(state)
    assert states[0] == states[1] == dump_snapshot(snap)
    real = dump_module.write_dump_file

    def recording(path: str, snap: Any, raft_data: Any, threaded: bool = True) -> Any:
        Path(path + ".threaded").write_text(str(threaded))
        return real(path, snap, raft_data, threaded)

    monkeypatch.setattr(dump_module, "write_dump_file", recording)
    path = str(tmp_path / "raft.dump")
    journal = _sized(tmp_path / "raft.journal", dump_module.IDLE_DUMP_MIN_BYTES + 1)
    dumper = DumpSerializer(_fsm_with_rows(7, 10), path, journal=journal)
    dumper.serialize(path, ("tail", 7))  # pysyncobj's own trigger: the entry pace
    assert _wait_done(dumper) == SERIALIZER_STATE.SUCCESS
    assert Path(path + ".nomadd.tmp.threaded").read_text() == "False"
    assert dumper.tick(7, 1.0) or dumper.tick(7, 100.0)  # quiet
    dumper.serialize(path, ("tail", 7))
    assert _wait_done(dumper) == SERIALIZER_STATE.SUCCESS
    assert Path(path + ".nomadd.tmp.threaded").read_text() == "False"
    dumper.want_dump(8)
    dumper._fsm = _fsm_with_rows(8, 10)
    assert dumper.tick(8, 1.0)
    dumper.serialize(path, ("tail", 8))  # the save's
    assert _wait_done(dumper) == SERIALIZER_STATE.SUCCESS
    assert Path(path + ".nomadd.tmp.threaded").read_text() == "True"
