"""Raft full dumps (pysyncobj's custom serializer hooks), written by a forked child, paced.

The file (format 2) is one gzip stream (three gzip members, which gzip readers read as one stream)
of: :data:`MAGIC` and the pickle of pysyncobj's tail data (the last two applied entries and the
cluster), after its length (8 bytes, big-endian); the store's dump
(:func:`~nomadd.server.state.store_codec.write_dump`, msgpack), a member of its own; an end mark
(``["end", index]``). The store's member is exactly what an ``operator snapshot save`` archive holds
as its state (compressed the same way), so a save copies it from the leader's dump as it is
(:class:`DumpState`, :meth:`DumpSerializer.want_dump`) instead of encoding the store a second time
beside the dump (at a million allocations two encoders of the same state took the save to 36 s). The
store is encoded straight into the file and read back from it row by row, so neither the writing
child nor a restoring server holds the dump whole (the format 1 writer's child peaked at 6 GB at a
million allocations). The file checks itself: a truncated or corrupt file fails gzip's CRC and
length, the msgpack framing or the end mark, and is refused with a ValueError before the store
changes (it is decoded whole first, then installed). Format 1 files (a server upgraded in place) are
still read. pysyncobj sends the file as it is to a lagging follower, which reads it here too.

pysyncobj calls :meth:`DumpSerializer.serialize` on its tick thread and, for a custom serializer,
expects the file written before it returns. Encoding the store costs O(state) of Python work
(seconds at a million allocations): on the tick thread it would stall heartbeats, and on a thread of
this process it would hold the GIL against Raft, the scheduler and the HTTP API for as long. So
:meth:`~DumpSerializer.serialize` takes the store's snapshot (O(1), consistent with the tail data:
both at the last applied index) and forks: the child holds a copy-on-write image of this process,
encodes the snapshot on its own interpreter (another core when there is one), writes
``<dump>.nomadd.tmp``, fsyncs it and exits. :meth:`~DumpSerializer.check` (pysyncobj's
``serializeChecker``, polled on the tick thread) reaps the child and renames the file over the dump,
so pysyncobj deletes journal entries only once the new dump is durable. We never create pysyncobj's
own ``<dump>.tmp``: its rename then fails (caught inside pysyncobj) and cannot put a partial file in
place.

The child follows :mod:`nomadd.server.forked`'s rules (no lock, no logging, no GC, dies with
the server); a failure's traceback goes to ``<dump>.nomadd.tmp.err``, which the server logs.

Dumps are paced. pysyncobj starts one whenever the log holds more than
``logCompactionMinEntries``; with a fixed floor a large store is dumped back to back, and each
dump costs O(state) of CPU. After each dump the period becomes ``DUMP_PACE`` times the entries
applied while it was written, within ``pace_bounds`` (floor, ceiling): dumps then take about
1/DUMP_PACE of the time whatever the state size, and the ceiling bounds the log kept in memory.

Dumps are staggered across the servers. Every server applies the same entries at about the same
time, so with the same period they would all dump at once, each with a child encoding the whole
store: on a small machine the cores they share go to three dumps together, and the cluster's
rate dips three times as deep. So each server dumps at its own phase of the period: the server
at place ``p`` of ``n`` (the voters' addresses, sorted) dumps at the Raft indexes ``≡ p * period
/ n (mod period)`` (:func:`staggered`). After each dump, and after loading a dump (a restart, a
snapshot from the leader), the log size that starts the next one is set so that it falls on the
server's next such index, at least half a period on (in steady state exactly one period; a dump
that took longer than the entries to that index waits for the next one of its phase, rather than
starting at once off its phase). pysyncobj's own ``logCompactionSplit`` does not fit: it
staggers by the clock, in windows of ``logCompactionMinTime`` (each server may start a dump only
in 30 % of its third of every 300 s), which a log that fills in seconds would outgrow.

Dumps are also written when they are cheap and when they are needed, whatever the pace, because what
a server replays at a restart, and what a follower catching up gets after the dump, is the journal
since the dump (at a million allocations it reached 350-560 MB, 70 s to replay). So
(:meth:`DumpSerializer.tick`) a server that applied nothing for ``IDLE_DUMP_S`` and whose journal
holds more than ``IDLE_DUMP_MIN_BYTES`` writes one (no throughput lost; not while an operator
restore stages its chunks, nor for ``RESTORE_SETTLE_S`` after one was applied here; a leader's at
the server's priority, a follower's at ``CHILD_NICE``, as nothing waits for it), and a leader about
to send its dump to a follower first writes a new one when the journal since its dump is larger than
``SEND_FRESH_RATIO`` times the dump file (:meth:`DumpSerializer.hold_send`). A server that stops
while a dump is written waits for it when it would be done soon (``raft/stop_dump.py``). An
``operator snapshot save`` asks for a dump at its index (:meth:`DumpSerializer.want_dump`) and
copies the store's member of it. A dump started nicer (an entry-paced dump, a follower's quiet one)
runs ``SCHED_IDLE`` (``forked``); one a save or a send waits for is given the server's priority,
and one still running after ``IDLE_CLASS_MAX_S`` the ordinary class at ``CHILD_NICE`` (on a
machine kept busy by other work it would otherwise never end, and the journal grow), where the
server may raise it (``CAP_SYS_NICE``, or the unit's ``LimitNICE=+0``).

A snapshot arriving from the leader is decoded while it arrives (:class:`Incoming`): pysyncobj
writes its chunks to ``<dump>.1.tmp`` on the tick thread and loads the file after the last one;
a thread here reads that file as it grows, through the same checks as :meth:`~DumpSerializer.
deserialize`, so the load after the last chunk takes the decoded state instead of decoding the
whole file then (about 20 s of CPU at a million allocations, on the tick thread).
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import os
import pickle
import signal
import time
from typing import Any

from pysyncobj.config import SERIALIZER_STATE

from nomadd.server.forked import CHILD_NICE, fork_worker, set_priority
from nomadd.server.fsm import FSM
from nomadd.server.fsm.snapshot import restore_staged, restored_at
from nomadd.server.raft.dump_read import MAGIC, Incoming, Inflater, read_format_2
from nomadd.server.raft.dump_state import DumpState, file_id
from nomadd.server.raft.dump_write import write_dump_file
from nomadd.server.raft.journal import durable_replace
from nomadd.server.state.store_codec import Decoded

logger = logging.getLogger("nomadd.server.raft")

__all__ = [
    "DUMP_FORMAT",
    "DUMP_PACE",
    "IDLE_CLASS_MAX_S",
    "IDLE_DUMP_MIN_BYTES",
    "IDLE_DUMP_S",
    "MAGIC",
    "RESTORE_SETTLE_S",
    "SEND_FRESH_RATIO",
    "DumpSerializer",
    "DumpState",
    "staggered",
    "write_dump_file",
]

DUMP_FORMAT = 2  # our full-dump file layout (1: one pickle, read by _load_format_1)
DUMP_PACE = 10  # a dump waits for 10x the entries applied while the previous one was written
IDLE_DUMP_S = 3.0  # nothing applied for this long: the cluster is quiet, a dump costs no throughput
IDLE_DUMP_MIN_BYTES = 16 << 20  # a journal smaller than this replays in about a second
# no quiet dump this soon after a restore was applied here: the followers' decoders, nicer than
# the leader's (fsm/snapshot.py), are still at work, and a leader's quiet dump (the restore's
# chunks in its journal) took a core from them: at a million allocations they applied the
# restore 61 s after it began instead of ~35 s
RESTORE_SETTLE_S = 30.0
# dump before a send once the journal is larger than this x the dump file: at C1M a follower
# replays the journal at ~8 MB/s, a leader encodes a dump at ~13 MB/s of file (262 MB in ~20 s)
# and a follower decodes it at ~11 MB/s, so a fresh dump pays once the journal is about as large
SEND_FRESH_RATIO = 1.0
SEND_FRESH_RETRY_S = 60.0  # after a failed dump, send the old one for this long
IDLE_CLASS_MAX_S = 120.0  # a SCHED_IDLE dump still running after this runs at CHILD_NICE (doc)
_NO_DUMP_WANTED, _WANTED, _FORCED = 0, 1, 2  # DumpSerializer._want: a dump wanted before a send
# DumpSerializer._urgent: a quiet leader's dump; one a send or a save waits for; a quiet follower's
_QUIET, _WAITED, _QUIET_NICE = 1, 2, 3


def staggered(index: int, period: int, place: int, count: int) -> int:
    """The entries after ``index`` (a dump) until this server's next dump: the next index of
    its phase ``place * period // count`` (mod ``period``), at least half a period on."""
    offset = period * place // max(count, 1)
    earliest = index + period // 2
    return earliest + (offset - earliest) % period - index


class DumpSerializer:
    """pysyncobj's custom full-dump hooks (see the module doc)."""

    def __init__(
        self,
        fsm: FSM,
        filename: str,
        pace_bounds: tuple[int, int] = (5000, 25_000),
        self_id: str = "",
        journal: str | None = None,
    ) -> None:
        self._fsm = fsm
        self._filename = filename
        self._journal = journal  # the Raft journal's file: its size is the log since the dump
        self._incoming: Incoming | None = None  # a snapshot arriving from the leader
        self._applied = -1  # the applied index last seen by tick(), and since when
        self._applied_at = time.monotonic()
        self._idle_done = -1  # the applied index of the last quiet spell looked at
        self._restored = -1  # the Raft index of the last restore seen applied (-1: not looked yet)
        self._restored_at = -RESTORE_SETTLE_S  # when it was seen applied
        self._want = _NO_DUMP_WANTED  # a dump wanted before a send (hold_send): _WANTED, _FORCED
        self._urgent = 0  # the next dump: 0 (entry-paced), _QUIET, _WAITED, _QUIET_NICE
        self._running = 0  # the dump in progress: its _urgent (_WAITED once something waits)
        self._send_asked: int | None = None  # the applied index hold_send last wanted a dump at
        self._failed_at = -SEND_FRESH_RETRY_S  # when the last dump failed
        self.sending_until = 0.0  # a send of our dump in progress until then (transmit.SnapshotHooks)
        self._pace_bounds = pace_bounds
        self._self_id = self_id  # this server's Raft address: its place among the voters
        self._place = (0, 1)  # (place, count) of this server among the voters, sorted
        self._period = pace_bounds[0]
        self.conf: Any = None  # the SyncObjConf whose logCompactionMinEntries is paced
        self._state = SERIALIZER_STATE.NOT_SERIALIZING
        self._pid = 0  # the writing child
        self._index = 0  # the snapshot's applied index
        self._started = 0.0
        self._base: tuple[int, int] | None = None  # the dump file our snapshot replaces
        self._tables: frozenset[str] = frozenset()  # the snapshot's tables with rows
        self._nice = 0  # the writing child's niceness over the server's
        self._idle = False  # the writing child runs SCHED_IDLE (forked)
        self._rows = 0  # the rows of the store the dump in progress encodes
        self.bytes_per_row = 0.0  # of the last dump file written or loaded (0: none yet)
        self._save_index = 0  # a save wants a dump at this store index or later (want_dump)
        self.dumped: DumpState | None = None  # the last dump this server wrote
        self._dying: list[int] = []  # children killed, not reaped yet (check() reaps them)

    def journal_bytes(self) -> int:
        try:
            return os.path.getsize(self._journal) if self._journal else 0
        except OSError:
            return 0

    def tick(self, applied: int, now: float, leader: bool = True) -> bool:
        """Tick thread, after every tick: True when a dump should start now (pysyncobj's
        ``forceLogCompaction``): one is wanted before a send, or the server has been quiet long
        enough with a journal worth a dump (see the module doc; a follower's runs nicer)."""
        if applied != self._applied:
            self._applied, self._applied_at = applied, now
            restored = restored_at(self._fsm.store)
            if restored > self._restored >= 0:  # not one the server started with
                self._restored_at = now
            self._restored = max(self._restored, restored)
        if self._pid or self._state != SERIALIZER_STATE.NOT_SERIALIZING:
            if self._save_index and self._pid and self._index < self._save_index:
                self._abandon("a snapshot save")  # a dump of an older state: the save's starts now
            elif self._save_index:
                self.promote()  # a save waits for this dump
            elif self._pid and self._running in (_QUIET, _QUIET_NICE) and restore_staged(self._fsm.store):
                self._abandon("an operator restore stages its chunks")  # the decoders need the cores
            elif self._pid and self._idle and now - self._started > IDLE_CLASS_MAX_S:
                self._prioritize(CHILD_NICE, "ran too long to stay idle")
            return False
        if self._want == _FORCED:  # forced last tick, and pysyncobj did not start it (nothing new)
            self._want = _NO_DUMP_WANTED
            self._save_index = 0  # the save encodes the store itself
        if self._want == _WANTED:
            self._want = _FORCED
            self._urgent = _WAITED
            return True
        if now < self.sending_until:
            return False  # a new dump now would make the follower start over after this one
        if self._save_index:
            dumped = self.dumped
            if dumped is not None and dumped.index >= self._save_index:
                self._save_index = 0
            else:
                logger.info("raft full dump for a snapshot save index=%d", self._save_index)
                self._want = _FORCED
                self._urgent = _WAITED
                return True
        quiet = now - self._applied_at >= IDLE_DUMP_S and applied != self._idle_done
        if not quiet or restore_staged(self._fsm.store) or now - self._restored_at < RESTORE_SETTLE_S:
            return False
        self._idle_done = applied  # once per quiet spell
        size = self.journal_bytes()
        if size <= IDLE_DUMP_MIN_BYTES:
            return False
        logger.info("raft full dump of a quiet server journal_bytes=%d applied=%d", size, applied)
        self._urgent = _QUIET if leader else _QUIET_NICE  # a follower's at CHILD_NICE (module doc)
        return True

    def hold_send(self) -> bool:
        """A leader is about to send its dump to a follower: True to wait (a dump is being
        written, or one is wanted first because the journal since the dump is large)."""
        if self._pid or self._state == SERIALIZER_STATE.SERIALIZING or self._want != _NO_DUMP_WANTED:
            self.promote()
            return True
        if time.monotonic() < self.sending_until or self._send_asked == self._applied:
            return False  # another send in progress, or a dump at this index was had already
        if time.monotonic() - self._failed_at < SEND_FRESH_RETRY_S:
            return False
        try:
            dump = os.path.getsize(self._filename)
        except OSError:
            return False  # no dump of ours: pysyncobj has none to send either
        size = self.journal_bytes()
        if size <= max(IDLE_DUMP_MIN_BYTES, dump * SEND_FRESH_RATIO):
            return False
        logger.info("raft full dump before a snapshot send journal_bytes=%d dump_bytes=%d", size, dump)
        self._want = _WANTED
        self._send_asked = self._applied
        return True

    def want_dump(self, index: int) -> None:
        """Any thread: an operator snapshot save wants a dump at store index ``index`` or later
        (the next :meth:`tick` starts one unless a dump in progress or the last one will do)."""
        self._save_index = max(self._save_index, index)

    def dump_at(self, index: int) -> DumpState | None:
        """Any thread: our dump file, if it holds the store at ``index`` or later."""
        dumped = self.dumped
        if dumped is None or dumped.index < index or not dumped.current():
            return None
        return dumped

    def dump_wanted(self, index: int) -> bool:
        """Any thread: a dump at ``index`` is still to come (False: it failed, or pysyncobj had
        nothing new to dump)."""
        return self._save_index >= index

    def promote(self) -> None:
        """The dump in progress runs at the server's priority from now on (something waits for
        it), if it was started nicer and the server may raise it."""
        self._running = _WAITED if self._pid else self._running
        if self._pid and (self._idle or self._nice > 0):
            self._prioritize(0, "given the server's priority")

    def _prioritize(self, nice: int, why: str) -> None:
        """The child out of SCHED_IDLE, ``nice`` over the server (tried once: where the server
        may not raise it, it stays as it is)."""
        try:
            set_priority(self._pid, nice)
        except OSError as err:  # needs CAP_SYS_NICE or RLIMIT_NICE
            logger.info("raft full dump keeps its priority err=%s", err)
        else:
            logger.info("raft full dump %s index=%d nice=%d", why, self._index, nice)
        self._nice, self._idle = nice, False

    def _abandon(self, why: str) -> None:
        """Stop the dump in progress (reported to pysyncobj as failed): a save wants a newer one,
        which would otherwise wait behind it (an entry-paced dump at +10 after a busy spell took
        30 s; the new one compacts the log further and serves a follower's catch-up as well), or
        an operator restore started staging during a quiet dump (the restored state replaces
        what it encodes, on the cores the three servers' decoders need). Nothing is lost but
        the CPU spent."""
        logger.info("raft full dump stopped for %s index=%d", why, self._index)
        self._kill(wait=False)  # reaped by check(): a C1M child took 0.4-0.7 s to exit, a leader
        self._state = SERIALIZER_STATE.FAILED  # whose tick thread waited for it lost its lead

    def on_chunk(self, first: bool, last: bool, complete: bool) -> None:
        """Tick thread: pysyncobj wrote a chunk of a snapshot from the leader to ``<dump>.1.tmp``
        (``complete``: the last one, renamed into place)."""
        incoming = self._incoming
        if first:
            if incoming is not None:
                incoming.stop()
            try:
                incoming = self._incoming = Incoming(self._filename + ".1.tmp")
            except OSError as err:
                logger.warning("raft snapshot from the leader not decoded as it arrives err=%s", err)
                self._incoming = None
                return
        if incoming is None:
            return
        if last and not complete:
            incoming.stop()
            self._incoming = None
            return
        incoming.chunk(last)

    @property
    def _tmp(self) -> str:
        return self._filename + ".nomadd.tmp"

    def serialize(self, filename: str, raft_data: Any) -> None:
        if self._state == SERIALIZER_STATE.SERIALIZING:
            return
        self._learn_place(raft_data)
        self._want = _NO_DUMP_WANTED
        snap = self._fsm.store.snapshot()
        self._base = file_id(self._filename)
        self._index = snap.index
        self._started = time.monotonic()
        self._tables = frozenset(name for name, rows in snap._tables.items() if rows)
        self._rows = sum(map(len, snap._tables.values()))
        tmp = self._tmp

        # not entry-paced: at the server's priority (at +10 a C1M leader's quiet dump took 125 s
        # beside a save and a follower's decode); a second thread only for one waited for
        urgent, self._urgent = self._urgent, 0
        nice = 0 if urgent in (_QUIET, _WAITED) else CHILD_NICE

        def work() -> None:
            where = {**write_dump_file(tmp, snap, raft_data, threaded=urgent == _WAITED), "index": snap.index}
            with open(tmp + ".state", "w") as f:
                json.dump(where, f)

        def on_error(why: str) -> None:
            with open(tmp + ".err", "w") as f:
                f.write(why)

        try:
            pid = fork_worker(work, on_error, nice=nice)
        except OSError as err:
            logger.error("raft full dump cannot fork file=%s err=%s", self._filename, err)
            self._state = SERIALIZER_STATE.FAILED
            self._failed_at = time.monotonic()
            return
        self._pid, self._nice, self._idle, self._running = pid, nice, nice > 0, urgent
        self._state = SERIALIZER_STATE.SERIALIZING

    def _reap(self) -> None:
        """Collect the child once it has exited; then the dump is in place (or it failed)."""
        pid, status = os.waitpid(self._pid, os.WNOHANG)
        if pid == 0:
            return
        self._pid = 0
        took = time.monotonic() - self._started
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            why = ""
            with contextlib.suppress(OSError):
                with open(self._tmp + ".err") as f:
                    why = f.read()[-2000:]
                os.unlink(self._tmp + ".err")
            logger.error(
                "raft full dump failed file=%s exit=%d took=%.3fs err=%s", self._filename, code, took, why
            )
            for leftover in (self._tmp, self._tmp + ".state"):
                with contextlib.suppress(OSError):
                    os.unlink(leftover)
            self._state = SERIALIZER_STATE.FAILED
            self._failed_at = time.monotonic()
            self._save_index = 0
            return
        where = self._where()
        if file_id(self._filename) != self._base:
            # a snapshot from the leader was installed meanwhile: it is newer than ours
            os.unlink(self._tmp)
            logger.info("raft full dump superseded by a leader snapshot, discarded")
            self._state = SERIALIZER_STATE.FAILED
            self._save_index = 0
            return
        durable_replace(self._tmp, self._filename)  # before pysyncobj trims the journal
        self.bytes_per_row = os.path.getsize(self._filename) / max(self._rows, 1)
        if where is not None:
            self.dumped = DumpState(
                path=self._filename,
                file_id=file_id(self._filename),
                index=self._index,
                offset=int(where["offset"]),
                length=int(where["length"]),
                size=int(where["size"]),
                sha256=str(where["sha256"]),
                tables=self._tables,
            )
        next_at = self._pace(self._fsm.store.latest_index() - self._index, self._index)
        logger.info(
            "raft full dump written file=%s index=%d bytes=%d took=%.3fs next_after_entries=%d",
            self._filename,
            self._index,
            os.path.getsize(self._filename),
            took,
            next_at,
        )
        self._state = SERIALIZER_STATE.SUCCESS

    def _where(self) -> dict[str, Any] | None:
        """What the child said of the store's member (write_dump_file's answer)."""
        try:
            with open(self._tmp + ".state") as f:
                where: dict[str, Any] = json.load(f)
            os.unlink(self._tmp + ".state")
        except (OSError, ValueError) as err:
            logger.warning("raft full dump without its member's place err=%s", err)
            return None
        if where.get("index") != self._index:  # left by a child killed as it ended
            logger.warning("raft full dump member's place of another dump index=%s", where.get("index"))
            return None
        return where

    def _pace(self, applied_meanwhile: int | None, index: int) -> int:
        """Set the log size that starts the next dump, after one at ``index`` (see the module
        doc); returns it. ``applied_meanwhile`` None: keep the period (a dump was loaded)."""
        if applied_meanwhile is not None:
            floor, ceiling = self._pace_bounds
            self._period = max(floor, min(ceiling, applied_meanwhile * DUMP_PACE))
        next_at = staggered(index, self._period, *self._place)
        if applied_meanwhile is not None and applied_meanwhile >= next_at:
            # the dump took longer than the entries to this server's next phase point (at the
            # ceiling, on a loaded machine): pysyncobj would start the next at once, off its
            # phase and onto another server's, so it waits for the phase point after
            next_at += self._period * ((applied_meanwhile - next_at) // self._period + 1)
        if self.conf is not None:
            self.conf.logCompactionMinEntries = next_at  # read by pysyncobj at every check
        return next_at

    def _learn_place(self, raft_data: Any) -> None:
        """This server's place among the voters, from pysyncobj's tail data (its cluster)."""
        try:
            ids = sorted(str(getattr(node, "id", node)) for node in raft_data[2])
        except (TypeError, IndexError, KeyError):
            return
        if self._self_id in ids:
            self._place = (ids.index(self._self_id), len(ids))

    def check(self) -> int:
        """pysyncobj's ``serializeChecker``: SUCCESS/FAILED are reported once."""
        for pid in list(self._dying):
            with contextlib.suppress(OSError):
                if os.waitpid(pid, os.WNOHANG)[0] == 0:
                    continue
            self._dying.remove(pid)
        if self._pid:
            try:
                self._reap()
            except Exception:
                logger.exception("raft full dump failed file=%s", self._filename)
                self._pid = 0
                self._state = SERIALIZER_STATE.FAILED
        state = self._state
        if state in (SERIALIZER_STATE.SUCCESS, SERIALIZER_STATE.FAILED):
            self._state = SERIALIZER_STATE.NOT_SERIALIZING
        return int(state)

    def in_progress(self) -> tuple[int, float, int, int] | None:
        """The dump being written, for a server that stops (``raft/stop_dump.py``): its child's
        pid, seconds since it started, bytes of it written, rows it encodes; None if none."""
        if not self._pid:
            return None
        with contextlib.suppress(OSError):
            return self._pid, time.monotonic() - self._started, os.path.getsize(self._tmp), self._rows
        return self._pid, time.monotonic() - self._started, 0, self._rows

    def writing(self) -> bool:
        """Whether a dump is written or not yet reported to pysyncobj (its journal not trimmed)."""
        return bool(self._pid) or self._state != SERIALIZER_STATE.NOT_SERIALIZING

    def close(self) -> None:
        """Stop a dump still being written (the server is stopping): kill and reap the child;
        stop decoding a snapshot still arriving."""
        incoming, self._incoming = self._incoming, None
        if incoming is not None:
            incoming.stop()
        if self._pid:
            self._kill()
            self._state = SERIALIZER_STATE.NOT_SERIALIZING
        for pid in self._dying:
            with contextlib.suppress(OSError):
                os.waitpid(pid, 0)
        self._dying.clear()

    def _kill(self, wait: bool = True) -> None:
        """Kill the writing child and reap it (``wait``; else check() does); remove what it wrote."""
        pid, self._pid = self._pid, 0
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
            if wait:
                os.waitpid(pid, 0)
            else:
                self._dying.append(pid)
        for leftover in (self._tmp, self._tmp + ".state", self._tmp + ".err"):
            with contextlib.suppress(OSError):
                os.unlink(leftover)

    def deserialize(self, filename: str) -> Any:
        """Restore the store from ``filename`` (our own dump or the leader's); returns the tail
        data. ValueError, and the store unchanged, if the file is not a whole dump."""
        incoming, self._incoming = self._incoming, None
        taken = incoming.take(filename) if incoming is not None else None
        if taken is not None:
            decoded, raft_data = taken
            self._install(decoded, raft_data, filename)
            logger.info("raft snapshot from the leader installed, decoded as it arrived file=%s", filename)
            return raft_data
        return self._decode_file(filename)

    def _decode_file(self, filename: str) -> Any:
        """:meth:`deserialize` from the whole file (a restart, a snapshot not decoded as it came)."""
        try:
            with open(filename, "rb") as f:
                inflated = Inflater(f)
                try:
                    if inflated.read(len(MAGIC)) != MAGIC:
                        inflated.close()
                        f.seek(0)
                        with gzip.GzipFile(fileobj=f) as g:
                            return self._load_format_1(g)
                    decoded, raft_data = read_format_2(inflated)
                finally:
                    inflated.close()
        except ValueError as err:
            raise ValueError(f"raft dump {filename} refused: {err}") from None
        except Exception as err:  # gzip, zlib, pickle: a truncated or corrupt file
            raise ValueError(f"raft dump {filename} refused (truncated or corrupt): {err!r}") from None
        self._install(decoded, raft_data, filename)
        return raft_data

    def _install(self, decoded: Decoded, raft_data: Any, filename: str) -> None:
        self._fsm.store.install(decoded)
        self._fsm.events.close_all()  # as FSM.restore: the subscribers' view no longer holds
        self._loaded(raft_data)
        rows = sum(map(len, self._fsm.store.snapshot()._tables.values()))  # for stop_dump's estimate
        with contextlib.suppress(OSError):  # our own dump, or the leader's as it arrived
            self.bytes_per_row = os.path.getsize(filename) / max(rows, 1)

    def _loaded(self, raft_data: Any) -> None:
        """A dump was loaded: pysyncobj's log now starts at its index; the next dump falls on
        this server's phase."""
        self._learn_place(raft_data)
        with contextlib.suppress(TypeError, IndexError, ValueError):
            self._pace(None, int(raft_data[0][1]))

    def _load_format_1(self, g: gzip.GzipFile) -> Any:
        """A dump written before format 2 (a server upgraded in place restarts from it)."""
        fmt, state, raft_data = pickle.load(g)
        if fmt != 1:
            raise ValueError(f"unknown raft dump format {fmt!r}")
        self._fsm.restore(state)
        self._loaded(raft_data)
        return raft_data
