"""Real pysyncobj members (our RaftNode, transport and FSM with its snapshot restorer) ticked by
hand: a follower whose restore decoder lags holds the apply of the restore's last chunk, not
its Raft thread, so the leader commits that chunk and later entries while the follower decodes;
the follower applies them once its decoder is done and ends in the leader's state. Followers'
decoders run nicer than the leader's (raft/apply_hold.py, fsm/snapshot.py)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from nomadd.server.fsm import FSM
from nomadd.server.fsm import snapshot as fsm_snapshot
from nomadd.server.fsm.dispatch import entry_kinds
from nomadd.server.fsm.snapshot import STAGING_TABLE, SnapshotRestorer
from nomadd.server.raft.glue import RaftNode
from nomadd.server.snapshot_endpoint import SnapshotEndpoint
from nomadd.server.state.store import StateStore
from nomadd.structs.codec import pack
from nomadd.structs.messages import MessageType
from nomadd.structs.requests.snapshot import (
    OPERATOR_SNAPSHOT_SAVE,
    RestoreResult,
    SnapshotChunkEntry,
    SnapshotSaveRequest,
)
from nomadd.structs.requests.variables import VarUpsertEntry
from tests.unit.server.fakes import FakeServer, api_job
from tests.unit.server.server_helpers import hand_ticked_members

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::ResourceWarning"),  # pysyncobj's in-memory journal
]

GATE_S = 5.0  # how long a follower's decoder waits for the test before it goes on anyway


def _fsm() -> FSM:
    restorer = SnapshotRestorer()
    fsm = FSM(StateStore(), entry_kinds(restorer))
    fsm.nomadd_test_restorer = restorer  # type: ignore[attr-defined]
    return fsm


def _restorer(node: RaftNode) -> SnapshotRestorer:
    restorer: SnapshotRestorer = node._nomadd_fsm.nomadd_test_restorer  # type: ignore[attr-defined]
    return restorer


@pytest.fixture
def trio() -> Iterator[list[RaftNode]]:
    for nodes in hand_ticked_members(3, 30.0, _fsm):
        for node in nodes:
            _restorer(node).leading = node._isLeader
        yield nodes


def _tick_until(nodes: list[RaftNode], done: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for node in nodes:
            node.doTick(0.002)
        if done():
            return
    raise AssertionError(f"not within {seconds} s: {what}: {[n.view for n in nodes]}")


def _settled(nodes: list[RaftNode]) -> RaftNode:
    def one() -> bool:
        leaders = [n for n in nodes if n.view.state == 2]
        return len(leaders) == 1 and len({(n.view.leader, n.view.term) for n in nodes}) == 1

    _tick_until(nodes, one, 10.0, "one leader")
    return next(n for n in nodes if n.view.state == 2)


def _propose(nodes: list[RaftNode], leader: RaftNode, msg_type: int, payload: bytes) -> Any:
    """Propose on ``leader`` and tick until it applied the entry; the FSM's result."""
    out: list[Any] = []
    leader.apply(msg_type, payload, callback=lambda res, err: out.append((res, err)))
    _tick_until(nodes, lambda: bool(out), 10.0, f"type {msg_type} applied on the leader")
    ((res, err),) = out
    assert err == 0, f"proposal failed: {err}"
    return res[0]


def _archive() -> bytes:
    async def save() -> bytes:
        src = FakeServer()
        SnapshotEndpoint(src.ctx).register(src.registry)
        await src.add_node()
        for i in range(3):
            await src.register_job(api_job(f"job-{i}", count=2))
        return bytes((await src.rpc(OPERATOR_SNAPSHOT_SAVE, SnapshotSaveRequest())).archive)

    return asyncio.run(save())


def _tables(fsm: FSM) -> dict[str, dict[str, Any]]:
    snap = fsm.store.snapshot()
    skip = {STAGING_TABLE, "variables"}
    return {n: dict(snap.table(n)) for n in snap._tables if n not in skip and snap.table(n)}


def test_a_lagging_followers_decoder_holds_its_apply_not_its_raft_thread(
    trio: list[RaftNode], monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = threading.Event()
    waited: list[tuple[int, bool]] = []  # (nice increment, released by the test, not timed out)

    def renice(increment: int) -> None:  # a follower's decoder, as it starts: held by the test
        waited.append((increment, gate.wait(GATE_S)))

    monkeypatch.setattr(fsm_snapshot, "_renice_thread", renice)
    leader = _settled(trio)
    followers = [n for n in trio if n is not leader]
    archive = _archive()
    sha = hashlib.sha256(archive).hexdigest()
    size = -(-len(archive) // 3)
    parts = [archive[i * size : (i + 1) * size] for i in range(3)] + [b""]
    for seq, data in enumerate(parts[:-1]):
        entry = SnapshotChunkEntry(restore_id="r", seq=seq, total=len(parts), sha256=sha, data=data)
        assert _propose(trio, leader, MessageType.SNAPSHOT_RESTORE_CHUNK, pack(entry)) == RestoreResult()
    assert _restorer(leader).wait_decoded("r", sha, timeout=30)  # as the endpoint waits before the last one

    # The followers' decoders are held; the leader's last chunk still commits, and applies.
    last = SnapshotChunkEntry(restore_id="r", seq=len(parts) - 1, total=len(parts), sha256=sha, data=b"")
    done = _propose(trio, leader, MessageType.SNAPSHOT_RESTORE_CHUNK, pack(last))
    assert isinstance(done, RestoreResult) and done.done, done
    last_index = leader.view.applied_index
    # ... and so do the entries after it: the followers go on appending and answering.
    var = VarUpsertEntry(namespace="default", path="after/restore", key_id="k", data=b"v", time=1)
    _propose(trio, leader, MessageType.VAR_UPSERT, pack(var))
    _tick_until(trio, lambda: all(f.view.commit_index > last_index for f in followers), 5.0, "commit known")
    assert leader.view.state == 2
    assert all(f.view.applied_index == last_index - 1 for f in followers), "a follower applied the last chunk"
    assert not gate.is_set() and len(waited) == 0, "a follower's decoder went on before the test let it"

    gate.set()
    _tick_until(
        trio,
        lambda: all(f.view.applied_index == leader.view.applied_index for f in followers),
        30.0,
        "the followers apply the restore once decoded",
    )
    assert sorted(waited) == [(fsm_snapshot.FOLLOWER_DECODE_NICE, True)] * 2, waited  # not the leader's
    fsms = [n._nomadd_fsm for n in trio]
    assert _tables(fsms[0]) == _tables(fsms[1]) == _tables(fsms[2])
    assert "jobs" in _tables(fsms[0])  # the archive's
    variables = [dict(f.store.snapshot().table("variables")) for f in fsms]
    assert variables[0] and variables[0] == variables[1] == variables[2]  # written after the restore


def test_a_followers_decoder_thread_runs_nicer() -> None:
    seen: list[tuple[int, int]] = []

    def decoder() -> None:
        tid = threading.get_native_id()
        before = os.getpriority(os.PRIO_PROCESS, tid)
        fsm_snapshot._renice_thread(fsm_snapshot.FOLLOWER_DECODE_NICE)
        seen.append((before, os.getpriority(os.PRIO_PROCESS, tid)))

    thread = threading.Thread(target=decoder)
    thread.start()
    thread.join()
    ((before, after),) = seen
    assert after == min(19, before + fsm_snapshot.FOLLOWER_DECODE_NICE)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before  # this thread's kept
