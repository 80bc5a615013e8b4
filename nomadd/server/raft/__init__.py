"""Raft consensus for the servers: this package (with its glue module) is the only pysyncobj importer.

:class:`Raft` wraps one pysyncobj ``SyncObj`` with the settings docs/contributing/raft.md lists
for (password always, explicit bind address, no append-entries batching, short re-dial, long
connection timeout, 4 s leader fallback, dynamic membership, journal + full dump on disk, custom
serializer instead of fork). pysyncobj runs its own tick thread; everything that crosses into the
event loop goes through ``loop.call_soon_threadsafe``:

* ``await raft.apply(msg_type, payload) -> (result, index)`` proposes with pysyncobj's
  ``callback=`` and resolves a Future on the loop (never ``sync=True``);
* ``onStateChanged`` is posted to the loop and fans out to ``add_leadership_listener`` callbacks;
* after every tick the tick thread takes a :class:`~.glue.RaftView` (leader, peers, term,
  indexes); a change of leader, peers or state is posted to the loop at once, and a small
  watcher task takes the latest view every ``WATCH_INTERVAL_S`` (indexes, last contact). Every
  query (``is_leader()``, ``leader()``, ``peers()``, ``stats()``, ...) answers from that state on
  the loop, never from pysyncobj's across threads. The peer set is persisted to ``peers.json``
  so a restart dials the current members, not the bootstrap ones;
* the log is our durable journal (:mod:`.journal`): entries are acknowledged, and counted by a
  leader, only once fsync'ed; every file replaced by rename is fsync'ed with its directory.

pysyncobj is pinned exactly; :mod:`.compat` checks at import that everything the glue touches
is there.

The single ``@replicated`` method, ``RaftNode.apply``, hands each committed entry to
:class:`nomadd.server.fsm.FSM` with its Raft index. An entry the FSM cannot apply stops the
process (``os._exit``): a server that skipped it would silently diverge.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pysyncobj import FAIL_REASON, SyncObjConf

from nomadd import telemetry
from nomadd.server.fsm import FSM
from nomadd.server.handoff import LoopHandoff
from nomadd.server.raft.dump import DumpSerializer
from nomadd.server.raft.dump_state import DumpState
from nomadd.server.raft.glue import AckGate, RaftNode, RaftView
from nomadd.server.raft.journal import fsync_dir, write_durably
from nomadd.server.raft.stop_dump import finish_dump
from nomadd.structs.errors import NoLeaderError, NomaddError, RaftApplyError, RequestTooLargeError
from nomadd.structs.messages import MessageType

logger = logging.getLogger(__name__)

__all__ = ["DumpState", "Raft", "RaftConfig", "has_existing_state"]

APPLY_TIMEOUT_S = 10.0  # Nomad's RaftTimeout: a write not committed by then fails
# Test only: a shorter apply timeout (seconds), so a test can see a write time out on a leader
# that lost its quorum before the leader steps down (leader_fallback_s).
APPLY_TIMEOUT_ENV = "NOMADD_TEST_RAFT_APPLY_TIMEOUT"
MEMBERSHIP_TIMEOUT_S = 5.0  # add/remove/transfer answer within a few election rounds
WATCH_INTERVAL_S = 0.05  # how often the loop takes the tick thread's latest RaftView
READ_READY_TIMEOUT_S = 5.0  # a new leader's no-op commits within one round trip normally
DUMP_POLL_S = 0.1  # how often a save waiting for a full dump looks whether it is written
SHUTDOWN_TIMEOUT_S = 5.0  # bound on waiting for the tick thread to exit
EXIT_FSM_FATAL = 70  # EX_SOFTWARE: a committed entry could not be applied
# pysyncobj splits an entry larger than appendEntriesBatchSizeBytes into "transmission" chunks,
# and 0.3.17 gets that path wrong (followers fail to unpickle the reassembled entry and the
# leader re-sends until it happens to work: 100+ ms per entry). So the batch size is far above
# any entry we propose, and Raft.apply refuses an entry that would reach it. The entry limit is
# lower still: pysyncobj compresses and encrypts each message on its tick thread (~80 ms per MB
# of incompressible data and follower), and heartbeats wait behind it, so a much larger entry
# could outlast the election timeout.
APPEND_ENTRIES_BATCH_BYTES = 16 * 1024 * 1024
MAX_ENTRY_BYTES = 4 * 1024 * 1024
# a snapshot goes to a follower in chunks of this size (pysyncobj: 64 KiB, each chunk pickled,
# compressed and encrypted as its own message: thousands of messages for a large store)
SNAPSHOT_CHUNK_BYTES = 1024 * 1024
# SO_SNDBUF/SO_RCVBUF and pysyncobj's recv() size (default 64 KiB): a large entry then crosses
# in a few tick iterations instead of one per 64 KiB (the kernel caps it at [wr]mem_max).
SOCKET_BUFFER_BYTES = 1024 * 1024

_STATE_NAMES = {0: "follower", 1: "candidate", 2: "leader"}


@dataclass(frozen=True, slots=True, kw_only=True)
class RaftConfig:
    """Everything :class:`Raft` needs. Addresses are ``"host:port"``; durations are seconds."""

    self_addr: str  # advertised raft address: what peers dial and what /v1/status/leader shows
    bind_addr: str  # where to listen; never 0.0.0.0 by accident (pysyncobj's default)
    password: str  # cluster secret: pysyncobj's transport carries pickles
    peers: tuple[str, ...] = ()  # other members at bootstrap; ignored once peers.json exists
    data_dir: Path | None = None  # <data_dir>/server/raft; None = in memory (tests, -dev)
    election_min_s: float = 0.4
    election_max_s: float = 1.0
    append_entries_period_s: float = 0.1
    connection_timeout_s: float = 30.0  # contributing/dependencies.md: short values slow idle failover
    connection_retry_s: float = 0.5  # contributing/dependencies.md: the default 5 s delays first election
    leader_fallback_s: float = 4.0  # a leader cut off from the majority steps down after this
    compaction_min_entries: int = 5000  # a full dump once the log holds more (the floor)
    compaction_max_entries: int = 25_000  # ... the ceiling of the pacing (replay on restart)
    compaction_min_time_s: float = 300.0

    def scaled(self, multiplier: int) -> RaftConfig:
        """Nomad's ``raft_multiplier``: the election and leader step-down timeouts times
        ``multiplier`` (heartbeats keep their period), for servers that may pause or be starved
        of CPU for longer than the election timeout without having failed."""
        return dataclasses.replace(
            self,
            election_min_s=self.election_min_s * multiplier,
            election_max_s=self.election_max_s * multiplier,
            leader_fallback_s=self.leader_fallback_s * multiplier,
        )


def has_existing_state(data_dir: Path | None) -> bool:
    """True when this server already belongs to a cluster (journal, dump or peers.json on disk)."""
    if data_dir is None:
        return False
    journal = data_dir / "raft.journal"
    return (
        (data_dir / "peers.json").exists()
        or (data_dir / "raft.dump").exists()
        or (journal.exists() and journal.stat().st_size > 0)
    )


def _fatal_exit(err: BaseException) -> None:
    # the cause and its traceback: "cannot decode raft entry" alone does not say what failed
    # (an entry that decoded fine offline stopped a restarting server once in a C1M run)
    logger.critical(
        "fsm cannot apply a committed entry, stopping the server err=%s cause=%r",
        err,
        err.__cause__,
        exc_info=(type(err), err, err.__traceback__),
    )
    logging.shutdown()
    os._exit(EXIT_FSM_FATAL)


LeadershipListener = Callable[[bool], None]


class Raft:
    """One server's Raft member. Create, ``await start()``, use, ``await shutdown()``."""

    def __init__(
        self,
        config: RaftConfig,
        fsm: FSM,
        *,
        on_fatal: Callable[[BaseException], None] = _fatal_exit,
    ) -> None:
        self.config = config
        self.fsm = fsm
        self._on_fatal = on_fatal
        self._node: RaftNode | None = None
        self._dumper: DumpSerializer | None = None  # the full-dump writer (a data_dir only)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._listeners: list[LeadershipListener] = []
        self._is_leader = False
        self._view = RaftView()
        self._leader: str | None = None
        self._last_contact = time.monotonic()
        self._peers: tuple[str, ...] = ()
        self._closed = False
        self.apply_timeout = float(os.environ.get(APPLY_TIMEOUT_ENV) or APPLY_TIMEOUT_S)
        # completions, one loop wake-up per burst (the loop and the tick thread would otherwise
        # trade the GIL once per write)
        self._completions: LoopHandoff[tuple[asyncio.Future[tuple[Any, int]], Any, int]] = LoopHandoff(
            _complete
        )

    # ---- lifecycle -----------------------------------------------------------------------
    @property
    def started(self) -> bool:
        return self._node is not None

    def _peers_file(self) -> Path | None:
        return self.config.data_dir / "peers.json" if self.config.data_dir else None

    def _initial_partners(self, peers: Sequence[str] | None) -> list[str]:
        pf = self._peers_file()
        if pf is not None and pf.exists():
            try:
                stored = json.loads(pf.read_text())
                return [p for p in stored if p != self.config.self_addr]
            except (OSError, ValueError) as err:
                logger.warning("cannot read raft peers file path=%s err=%s", pf, err)
        chosen = self.config.peers if peers is None else peers
        return [p for p in chosen if p != self.config.self_addr]

    def _make_conf(self) -> SyncObjConf:
        c = self.config
        kw: dict[str, Any] = {
            "password": c.password,
            "bindAddress": c.bind_addr,
            "appendEntriesUseBatch": False,
            "appendEntriesBatchSizeBytes": APPEND_ENTRIES_BATCH_BYTES,
            "sendBufferSize": SOCKET_BUFFER_BYTES,
            "recvBufferSize": SOCKET_BUFFER_BYTES,
            "connectionRetryTime": c.connection_retry_s,
            "connectionTimeout": c.connection_timeout_s,
            "leaderFallbackTimeout": c.leader_fallback_s,
            "raftMinTimeout": c.election_min_s,
            "raftMaxTimeout": c.election_max_s,
            "appendEntriesPeriod": c.append_entries_period_s,
            "dynamicMembershipChange": True,
            "logCompactionMinEntries": c.compaction_min_entries,
            "logCompactionMinTime": c.compaction_min_time_s,
            "logCompactionBatchSize": SNAPSHOT_CHUNK_BYTES,
            "useFork": False,
            "maxBindRetries": 10,
            "bindRetryTime": 0.5,
            "onStateChanged": self._on_state_changed_thread,
        }
        if c.data_dir is not None:
            dumper = DumpSerializer(
                self.fsm,
                str(c.data_dir / "raft.dump"),
                pace_bounds=(c.compaction_min_entries, c.compaction_max_entries),
                self_id=c.self_addr,
                journal=str(c.data_dir / "raft.journal"),
            )
            kw["journalFile"] = str(c.data_dir / "raft.journal")
            kw["fullDumpFile"] = str(c.data_dir / "raft.dump")
            kw["serializer"] = dumper.serialize
            kw["deserializer"] = dumper.deserialize
            kw["serializeChecker"] = dumper.check
            self._dumper = dumper
        conf = SyncObjConf(**kw)
        if self._dumper is not None:
            self._dumper.conf = conf  # paces the dumps: see DumpSerializer
        return conf

    async def start(self, peers: Sequence[str] | None = None) -> None:
        """Create the pysyncobj member (on the loop's thread: its tick thread lives as long as
        the creating thread) and wait until its port is bound.

        ``peers`` (the voters to start with, ourselves optional) overrides ``config.peers``;
        both are ignored when ``peers.json`` exists (a restart dials the current members).
        """
        if self._node is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._completions.loop = self._loop
        if self.config.data_dir is not None:
            self.config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            # the names of the raft dir and its parents: the journal's fsyncs cover only inside
            for d in (self.config.data_dir, *self.config.data_dir.parents[:2]):
                fsync_dir(d)
        partners = self._initial_partners(peers)
        conf = self._make_conf()
        node = RaftNode(
            self.fsm,
            self.config.self_addr,
            partners,
            conf,
            self._on_fatal,
            gate=AckGate(self._on_fatal),
            on_view=self._on_view_thread,
            snapshot_hooks=self._dumper,
        )
        self._node = node
        dumper = self._dumper
        if dumper is not None:

            def dump_tick() -> None:  # tick thread: a dump when quiet, or before a send
                if dumper.tick(int(node.raftLastApplied), time.monotonic(), node._isLeader()):
                    node.forceLogCompaction()

            node.addOnTickCallback(dump_tick)
        try:
            await asyncio.to_thread(node.waitBinded)
        except Exception as err:
            self._node = None
            node.destroy()
            raise NomaddError(f"cannot bind raft address {self.config.bind_addr}") from err
        self._peers = tuple(sorted([self.config.self_addr, *partners]))
        self._persist_peers()
        self._watcher = asyncio.create_task(self._watch(), name="raft-watch")
        logger.info(
            "raft started self=%s bind=%s peers=%s",
            self.config.self_addr,
            self.config.bind_addr,
            ",".join(partners) or "-",
        )

    async def shutdown(self) -> None:
        """Stop the tick thread (bounded). Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        if self._node is not None and self._dumper is not None and not self._is_leader:
            await finish_dump(self._dumper)
        node, self._node = self._node, None
        if node is None:
            return
        node.destroy()
        deadline = time.monotonic() + SHUTDOWN_TIMEOUT_S
        while node.tick_thread_alive() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if self._dumper is not None:
            self._dumper.close()  # after the tick thread: it no longer reaps the child
        if node.tick_thread_alive():
            logger.warning("raft tick thread did not stop in time timeout_s=%s", SHUTDOWN_TIMEOUT_S)
        self._set_leader_state(False)
        self._view = RaftView(peers=self._view.peers)
        self._leader = None
        logger.info("raft stopped self=%s", self.config.self_addr)

    # ---- loop <- raft thread ---------------------------------------------------------------
    def _on_state_changed_thread(self, old: int, new: int) -> None:
        loop = self._loop
        logger.debug("raft state changed old=%s new=%s", _STATE_NAMES.get(old), _STATE_NAMES.get(new))
        if loop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._set_leader_state, new == 2)

    def _on_view_thread(self, view: RaftView) -> None:
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._take_view, view)

    def _take_view(self, view: RaftView) -> None:
        """On the loop: the tick thread's latest view becomes what the queries answer."""
        if self._node is None:
            return
        if view.max_tick_gap_s > self._view.max_tick_gap_s:
            telemetry.set_gauge("nomad.raft.max_tick_gap_ms", view.max_tick_gap_s * 1000.0)
        if view.slow_ticks > self._view.slow_ticks:
            logger.warning(
                "raft tick thread stalled %s stalls=%d",
                view.last_stall.fields(),
                view.slow_ticks - self._view.slow_ticks,
            )
        if view.late_reads > self._view.late_reads:
            logger.warning(
                "raft %s kept: the messages it had missed were waiting unread after a "
                "tick-thread stall count=%d",
                "leadership" if view.state == 2 else "leader",
                view.late_reads - self._view.late_reads,
            )
        self._view = view
        self._leader = view.leader
        if view.leader_connected:
            self._last_contact = time.monotonic()
        if view.peers != self._peers:
            logger.info("raft peer set changed peers=%s", ",".join(view.peers))
            self._peers = view.peers
            self._persist_peers()

    def _set_leader_state(self, leader: bool) -> None:
        if leader == self._is_leader:
            return
        self._is_leader = leader
        # the view catches up after the tick; until then leader() agrees with is_leader()
        if leader:
            self._leader = self.config.self_addr
            self._view = dataclasses.replace(self._view, read_ready=False)
        elif self._leader == self.config.self_addr:
            self._leader = None
        for listener in list(self._listeners):
            try:
                listener(leader)
            except Exception:
                logger.exception("raft leadership listener failed")

    def add_leadership_listener(self, listener: LeadershipListener) -> None:
        """Call ``listener(is_leader)`` on the loop whenever this node gains or loses leadership."""
        self._listeners.append(listener)

    async def _watch(self) -> None:
        while True:
            node = self._node
            if node is None:
                return
            if node.view is not self._view:
                self._take_view(node.view)
            await asyncio.sleep(WATCH_INTERVAL_S)

    def _persist_peers(self) -> None:
        pf = self._peers_file()
        if pf is None:
            return
        write_durably(pf, json.dumps(list(self._peers)).encode())

    # ---- queries (loop state only) -----------------------------------------------------------
    def is_leader(self) -> bool:
        return self._is_leader

    def leader(self) -> str | None:
        """Last known leader's raft address, or None (may be stale: pysyncobj's caveat)."""
        return self._leader

    def known_leader(self) -> bool:
        return self._leader is not None

    def last_contact_ms(self) -> int:
        if self.is_leader():
            return 0
        return int((time.monotonic() - self._last_contact) * 1000)

    def peers(self) -> list[str]:
        """Every voter's raft address, this node included, sorted."""
        return list(self._peers) if self._node is not None else []

    def ready_for_reads(self) -> bool:
        """Leader, and its no-op of this term applied: its state holds every committed entry."""
        return self._is_leader and self._view.read_ready

    async def wait_ready_for_reads(self, timeout: float = READ_READY_TIMEOUT_S) -> None:
        """Wait until :meth:`ready_for_reads`; :class:`NoLeaderError` when leadership goes, or
        when it takes longer than ``timeout`` (the no-op did not commit)."""
        if self.ready_for_reads():
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.ready_for_reads():
            if not self._is_leader or loop.time() > deadline:
                raise NoLeaderError("No cluster leader (new leader not caught up yet)")
            await asyncio.sleep(0.005)

    async def dump_for_save(self, index: int, timeout: float) -> DumpState | None:
        """This server's full dump of the store at ``index`` or later (one is started now if the
        last is older, or the one in progress will do), for an operator snapshot save to copy
        instead of encoding the store a second time; None when there is none within ``timeout``
        (no data dir, a dump failed or is being sent to a follower, nothing new to dump)."""
        dumper = self._dumper
        if dumper is None or self._node is None:
            return None
        dumper.want_dump(index)
        deadline = time.monotonic() + timeout
        while True:
            dumped = dumper.dump_at(index)
            if dumped is not None:
                return dumped
            if not dumper.dump_wanted(index) or time.monotonic() > deadline or self._node is None:
                logger.info("raft full dump for a snapshot save not had index=%d", index)
                return None
            await asyncio.sleep(DUMP_POLL_S)

    def applied_index(self) -> int:
        return self._view.applied_index if self._node is not None else 0

    def stats(self) -> dict[str, Any]:
        """The node's raft status as strings (the shape of Nomad's ``stats.raft``)."""
        if self._node is None:
            return {"state": "stopped"}
        v = self._view
        return {
            "state": "leader" if self._is_leader else _STATE_NAMES.get(v.state, "unknown"),
            "leader": self._leader or "",
            "term": str(v.term),
            "commit_index": str(v.commit_index),
            "applied_index": str(v.applied_index),
            "log_len": str(v.log_len),
            "num_peers": str(max(len(self._peers) - 1, 0)),
            "has_quorum": str(v.has_quorum).lower(),
            "last_contact": f"{self.last_contact_ms()}ms",
        }

    # ---- writes ----------------------------------------------------------------------------
    def _require_node(self) -> RaftNode:
        if self._node is None:
            raise NoLeaderError("raft is not running on this server")
        return self._node

    async def _call(
        self, start: Callable[[Callable[[Any, int], None]], None], timeout: float, what: str
    ) -> Any:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[tuple[Any, int]] = loop.create_future()
        timer = loop.call_later(timeout, _expire, fut)
        start(lambda result, err: self._completions.post((fut, result, err)))
        try:
            result, err = await fut
        except TimeoutError as exc:
            if not self.known_leader():
                raise NoLeaderError() from exc
            raise RaftApplyError(f"{what} timed out after {timeout}s") from exc
        finally:
            timer.cancel()
        if err != FAIL_REASON.SUCCESS:
            if err in (FAIL_REASON.MISSING_LEADER, FAIL_REASON.NOT_LEADER):
                raise NoLeaderError()
            raise RaftApplyError(f"{what} failed reason={_fail_name(err)}")
        return result

    async def apply(
        self,
        msg_type: int,
        payload: bytes,
        timeout: float | None = None,
        *,
        request: object | None = None,
    ) -> tuple[object, int]:
        """Commit one entry; returns ``(fsm result, raft index)`` once applied locally.

        ``request``: the entry ``payload`` encodes (:meth:`nomadd.server.fsm.FSM.encode`);
        when this server applies the entry, the FSM uses it instead of decoding the bytes.

        ``timeout`` defaults to ``apply_timeout`` (``APPLY_TIMEOUT_S``).

        Raises :class:`NoLeaderError` without a leader, :class:`RaftApplyError` on timeout or
        when the entry was discarded (leadership changed before it committed), and
        :class:`RequestTooLargeError` (413) when the payload is larger than ``MAX_ENTRY_BYTES``.
        """
        node = self._require_node()
        if len(payload) > MAX_ENTRY_BYTES:
            raise RequestTooLargeError(
                f"raft entry of {len(payload)} bytes is larger than the limit of {MAX_ENTRY_BYTES} bytes"
            )
        if request is not None:
            self.fsm.expect(payload, request)
        try:
            result = await self._call(
                lambda cb: node.apply(int(msg_type), payload, callback=cb),
                self.apply_timeout if timeout is None else timeout,
                "raft apply",
            )
        except BaseException:
            if request is not None:
                self.fsm.forget(payload)  # applied later after all: it is decoded then
            raise
        value, index = result
        return value, int(index)

    async def barrier(self, timeout: float | None = None) -> int:
        """Commit a no-op; once it returns every earlier entry is applied here."""

        _, index = await self.apply(MessageType.NOOP, b"", timeout)
        return index

    async def add_peer(self, addr: str, timeout: float = MEMBERSHIP_TIMEOUT_S) -> None:
        """Add a voter (single-server change). REQUEST_DENIED while another change is pending."""
        node = self._require_node()
        await self._call(lambda cb: node.addNodeToCluster(addr, callback=cb), timeout, "add peer")
        logger.info("raft peer added addr=%s", addr)

    async def remove_peer(self, addr: str, timeout: float = MEMBERSHIP_TIMEOUT_S) -> None:
        node = self._require_node()
        await self._call(lambda cb: node.removeNodeFromCluster(addr, callback=cb), timeout, "remove peer")
        logger.info("raft peer removed addr=%s", addr)

    async def transfer_leadership(
        self, addr: str | None = None, timeout: float = MEMBERSHIP_TIMEOUT_S
    ) -> bool:
        """Ask the most caught-up follower (or ``addr``) to take over; waits until we are not
        leader any more. Returns False when no transfer happened in ``timeout``."""
        node = self._require_node()
        await self._call(
            lambda cb: node.transferLeadership(addr, callback=cb), timeout, "transfer leadership"
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._is_leader:
                return True
            await asyncio.sleep(0.02)
        return False


def _complete(done: list[tuple[asyncio.Future[tuple[Any, int]], Any, int]]) -> None:
    for fut, result, err in done:
        if not fut.done():
            fut.set_result((result, err))


def _expire(fut: asyncio.Future[tuple[Any, int]]) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError())


def _fail_name(err: int) -> str:
    for name in dir(FAIL_REASON):
        if not name.startswith("_") and getattr(FAIL_REASON, name) == err:
            return name.lower()
    return str(err)
