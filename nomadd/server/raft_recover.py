"""``nomadd operator raft recover``: give a stopped server a new peer set after quorum loss (the
counterpart of Nomad's ``raft/peers.json`` recovery, hashicorp/raft's ``RecoverCluster``).

pysyncobj keeps the peer set inside its Raft state (the dump's ``cluster`` and membership
entries in the journal), so editing ``peers.json`` changes nothing (docs/runbooks/quorum-loss.md).
Instead, with the server stopped, :func:`recover`:

1. copies the Raft directory to ``<raft dir>.pre-recover-<time>`` (nothing is lost if it fails);
2. loads the committed state: the full dump (``raft.dump``, through the raft package's
   ``DumpSerializer.deserialize``) and every journal entry after it, applied through the real
   FSM in log order. As hashicorp/raft's ``RecoverCluster`` does, entries this server holds but
   may not have seen committed are applied too: a surviving minority cannot tell, and dropping
   them could lose writes that a client saw succeed;
3. writes a new full dump (``DumpSerializer.serialize``) holding that state, the last two log
   entries (their real indexes and terms, so the term never goes back) and the new peer set
   as its ``cluster``;
4. removes ``raft.journal`` (its entries are in the dump now; ``raft.journal.meta``, with the
   current term and vote, is kept) and writes ``peers.json`` with the new peers.

On start the server loads the dump, has exactly the given peers, and (with a majority of them
running) elects a leader with all the committed state. What this module takes from
``nomadd.server.raft``: ``DumpSerializer(fsm, path)`` with ``deserialize(path)``,
``serialize(path, raft_data)`` and ``check()``; the journal class (the durable
``raft.journal.DurableJournal`` when present, else pysyncobj's ``FileJournal``) only as a
sequence of ``(command, index, term)``; the file names ``raft.dump``, ``raft.journal``,
``peers.json``. It imports pysyncobj itself (the command encoding and ``TCPNode``), so it
belongs in ``server/raft/`` once that package is settled.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pysyncobj.pickle as sync_pickle
from pysyncobj.config import SERIALIZER_STATE
from pysyncobj.node import TCPNode

from nomadd.server.fsm import FSM
from nomadd.server.fsm.dispatch import entry_kinds
from nomadd.server.raft.dump import DumpSerializer
from nomadd.server.state.store import StateStore
from nomadd.structs.errors import NomaddError

logger = logging.getLogger(__name__)

__all__ = ["RecoverError", "RecoverResult", "recover"]

_REGULAR, _NO_OP = 0, 1  # pysyncobj's _COMMAND_TYPE
_DUMP, _JOURNAL, _PEERS = "raft.dump", "raft.journal", "peers.json"
DUMP_WRITE_TIMEOUT_S = 600.0

Entry = tuple[bytes, int, int]  # pysyncobj's (command, index, term)


class RecoverError(NomaddError):
    """The recovery cannot run (no Raft state, bad peers) or failed; nothing was changed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoverResult:
    index: int  # last Raft index in the recovered state
    term: int
    dump_index: int  # where the old dump stood
    replayed: int  # journal entries applied on top of it
    peers: tuple[str, ...]
    backup: Path


def _journal_entries(path: Path) -> list[Entry]:
    """Every entry of the journal file, whichever journal class the raft package uses."""
    if not path.exists() or path.stat().st_size == 0:
        return []
    try:
        mod = importlib.import_module("nomadd.server.raft.journal")
        journal = mod.DurableJournal(str(path))
    except ModuleNotFoundError:
        from pysyncobj.journal import FileJournal

        journal = FileJournal(str(path))
    try:
        return [(bytes(c), int(i), int(t)) for c, i, t in (journal[k] for k in range(len(journal)))]
    finally:
        journal._destroy()


def _apply(fsm: FSM, entry: Entry) -> None:
    command, index, _ = entry
    if not command or command[0] != _REGULAR:
        with fsm.store.write(index):  # no-op, membership, version: only the index moves
            pass
        return
    cmd = sync_pickle.loads(command[1:])
    args: Sequence[Any] = cmd[1] if isinstance(cmd, tuple) and len(cmd) >= 2 else ()
    if len(args) != 2:
        raise RecoverError(f"journal entry {index} is not a nomadd entry: {cmd!r:.80}")
    fsm.apply(index, int(args[0]), bytes(args[1]))


def _write_dump(fsm: FSM, path: Path, raft_data: Any) -> None:
    dumper = DumpSerializer(fsm, str(path))
    dumper.serialize(str(path), raft_data)
    deadline = time.monotonic() + DUMP_WRITE_TIMEOUT_S
    while time.monotonic() < deadline:
        state = dumper.check()
        if state == SERIALIZER_STATE.SUCCESS:
            return
        if state == SERIALIZER_STATE.FAILED:
            raise RecoverError(f"cannot write the new raft dump {path} (see the log)")
        time.sleep(0.02)
    raise RecoverError(f"writing the new raft dump {path} timed out")


def _write_durably(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".recover.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_peers(peers: Sequence[str]) -> tuple[str, ...]:
    out = []
    for p in peers:
        host, sep, port = p.strip().rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise RecoverError(f"peer {p!r} is not an IP:port raft address")
        out.append(p.strip())
    if not out:
        raise RecoverError("no peers given")
    if len(set(out)) != len(out):
        raise RecoverError("a peer is listed twice")
    return tuple(sorted(out))


def recover(raft_dir: Path, peers: Sequence[str], *, now: float | None = None) -> RecoverResult:
    """Rewrite the stopped server's Raft state in ``raft_dir`` for the peer set ``peers``."""
    new_peers = _check_peers(peers)
    dump, journal = raft_dir / _DUMP, raft_dir / _JOURNAL
    if not dump.exists() and not (journal.exists() and journal.stat().st_size > 0):
        raise RecoverError(
            f"{raft_dir} holds no raft state ({_DUMP} or {_JOURNAL}); is it the server's raft dir?"
        )
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    backup = raft_dir.with_name(f"{raft_dir.name}.pre-recover-{stamp}")
    shutil.copytree(raft_dir, backup, symlinks=True)
    logger.info("raft recover: backup written path=%s", backup)

    fsm = FSM(StateStore(), entry_kinds())
    tail: list[Entry] = []
    dump_index = 0
    if dump.exists():
        try:
            raft_data = DumpSerializer(fsm, str(dump)).deserialize(str(dump))
        except Exception as err:
            raise RecoverError(f"cannot read {dump}: {err!r}") from err
        # the custom deserializer's tail data: (last applied entry, the one before, cluster)
        tail = [tuple(raft_data[1]), tuple(raft_data[0])]
        dump_index = int(raft_data[0][1])
    replayed = 0
    try:
        for entry in _journal_entries(journal):
            if entry[1] <= (tail[-1][1] if tail else 0):
                continue
            _apply(fsm, entry)
            tail = [*tail[-1:], entry]
            replayed += 1
    except RecoverError:
        raise
    except Exception as err:
        raise RecoverError(f"cannot replay {journal}: {err!r} (the state on disk is unchanged)") from err
    if not tail:
        raise RecoverError(f"{raft_dir} holds no raft entries")
    if len(tail) == 1:
        tail = [(bytes([_NO_OP]), tail[0][1] - 1, tail[0][2]), tail[0]]
    cluster = {TCPNode(p) for p in new_peers}
    _write_dump(fsm, dump, (tail[1], tail[0], cluster))
    if journal.exists():
        journal.unlink()
    _write_durably(raft_dir / _PEERS, json.dumps(list(new_peers)).encode())
    _fsync_dir(raft_dir)
    last = tail[1]
    logger.info(
        "raft recover: done index=%d term=%d replayed=%d peers=%s",
        last[1],
        last[2],
        replayed,
        ",".join(new_peers),
    )
    return RecoverResult(
        index=last[1], term=last[2], dump_index=dump_index, replayed=replayed, peers=new_peers, backup=backup
    )
