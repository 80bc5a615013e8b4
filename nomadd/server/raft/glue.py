"""pysyncobj adaptations for :mod:`nomadd.server.raft` (this package is the only pysyncobj importer).

* :class:`RaftNode`: the ``SyncObj`` with our one ``@replicated apply(msg_type, payload)``;
* :class:`LoggingTransport`: warns (rate-limited) about connections dropped before the
  handshake, which pysyncobj drops silently, and keeps a success reply from moving the
  leader's ``nextIndex`` for a follower backwards (which made it send entries twice);
* :func:`building_node`: what a ``SyncObj`` is built with: at most one pending tick-thread
  wake-up per batch of proposals, our durable journal (:mod:`.journal`), a poller that
  syncs the journal once per poll round before the acknowledgements it held back go out
  (:class:`AckGate`), and an encryptor that checks each received message once
  (:class:`VerifyOnceEncryptor`);
* :class:`RaftView`: what the event loop knows about the node, taken on the tick thread;
* :meth:`RaftNode._onTick`: a follower whose election timer ran out (a leader that heard from
  no majority for ``leaderFallbackTimeout``) first reads what waits on its Raft sockets, and
  elects (steps down) only if what it missed is not among it; and then only once a majority
  granted it a pre-vote (:mod:`.prevote`), so a server that merely lost sight of a working
  leader (restarted, wiped, busy loading a snapshot) does not depose it;
* :func:`building_node` also puts :class:`~.transmit.SnapshotSerializer` in place of
  pysyncobj's serializer (the snapshot sender and receiver);
* a log filter that demotes pysyncobj 0.3.17's false-alarm truncation CRITICAL
  (docs/contributing/dependencies.md);
* the fix for pysyncobj replacing ``socket.inet_ntop`` process-wide.
"""

from __future__ import annotations

import _socket
import base64
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pysyncobj import SyncObj, SyncObjConf, replicated
from pysyncobj import pickle as _pickle_module
from pysyncobj import serializer as _serializer_module
from pysyncobj import syncobj as _pysyncobj_module
from pysyncobj.pipe_notifier import PipeNotifier
from pysyncobj.transport import TCPTransport

from nomadd.helper.cpu_clock import CpuSample, Stall, ThreadClock
from nomadd.server.fsm import FSM, FSMFatalError
from nomadd.server.raft import (
    compat,  # noqa: F401  (checks pysyncobj's insides at import)
    prevote,
    wire_buffers,
    wire_compress,
)
from nomadd.server.raft.apply_hold import HOLD_PEEK_ENTRIES, ApplyHold
from nomadd.server.raft.journal import DurableJournal, durable_replace
from nomadd.server.raft.transmit import SnapshotHooks, SnapshotSerializer

# pysyncobj's win_inet_pton module replaces socket.inet_ntop on every OS (an indentation slip in
# 0.3.17) with a Windows-only function, which breaks pyroute2, zeroconf and anything else in this
# process that formats an address. Put the C implementation back.
socket.inet_ntop = _socket.inet_ntop
# Large incompressible messages (snapshot and restore chunks: gzip) are sent stored, not
# compressed again at level 3 on the leader's tick thread for every follower (wire_compress).
wire_compress.install()
# pysyncobj copies a connection's whole read buffer at every recv and the rest of it at every
# message parsed (quadratic while a snapshot streams in): bytearrays cut and grown in place.
wire_buffers.install()
# A snapshot received from the leader is renamed into place by pysyncobj's serializer: make
# that rename durable (data and directory fsync'ed) before the follower acknowledges it.
_serializer_module.atomicReplace = durable_replace
# pysyncobj pickles every command and every message with protocol 2 (for Python 2 peers), which
# has no bytes opcode: each entry's payload (msgpack bytes) was pickled as
# ``codecs.encode(str(payload, "latin1"), "latin1")``, each byte >= 0x80 written as two (UTF-8),
# when proposed and again in every AppendEntries to every follower, and undone the same way on
# every unpickling. Protocol 4 writes bytes as they are. On 300 jobs' real entries (2.8 MB) the
# leader's pickling per follower went from 5-8 ms to 0.5 ms and zlib's from 21 ms to 16 ms (25 %
# fewer bytes), a follower's unpickling from 12 to 6 ms. ``pickle.loads`` reads every protocol,
# so nodes on either side of an upgrade and journals written before it still read each other.
# (A module global, not name-mangled: ``dumps``/``dump`` read it on every call.)
RAFT_PICKLE_PROTOCOL = 4
_pickle_module.__protocol = RAFT_PICKLE_PROTOCOL

logger = logging.getLogger("nomadd.server.raft")

__all__ = [
    "RAFT_PICKLE_PROTOCOL",
    "SLOW_TICK_S",
    "AckGate",
    "LoggingTransport",
    "RaftNode",
    "RaftView",
    "VerifyOnceEncryptor",
    "building_node",
    "trim_overlap",
]

_TRUNCATE_LOG_EVERY_S = 60.0  # rate limit for pysyncobj's false-alarm truncation CRITICAL
_DROP_LOG_EVERY_S = 10.0  # rate limit for "dropped raft connection" warnings
FULL_SAMPLE_S = 0.05  # the tick thread's CPU clocks are read at most this often (and at a stall)
SLOW_TICK_S = 0.5  # a tick-thread stall longer than this is logged (heartbeats every 0.1 s)
_NO_STALL = Stall()


class _TruncationFilter(logging.Filter):
    """pysyncobj 0.3.17 logs a CRITICAL on every benign re-append (docs/contributing/dependencies.md).

    Demote it to WARNING and let one through per minute with a count of the suppressed ones.
    """

    def __init__(self) -> None:
        super().__init__()
        self._last = 0.0
        self._suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if "truncating already-applied" not in str(record.msg):
            return True
        now = time.monotonic()
        if now - self._last < _TRUNCATE_LOG_EVERY_S:
            self._suppressed += 1
            return False
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        if self._suppressed:
            record.msg = f"{record.msg} (+{self._suppressed} similar suppressed)"
        self._last, self._suppressed = now, 0
        return True


_truncation_filter = _TruncationFilter()
logging.getLogger("pysyncobj.syncobj").addFilter(_truncation_filter)


class _DropLog:
    """One warning per ``_DROP_LOG_EVERY_S`` for raft connections we refuse, with a count."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0.0
        self._suppressed = 0

    def dropped(self, peer: str) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._last < _DROP_LOG_EVERY_S:
                self._suppressed += 1
                return
            suppressed, self._suppressed, self._last = self._suppressed, 0, now
        logger.warning(
            "raft dropped a connection before the handshake (garbage, wrong raft secret or "
            "unknown peer) src=%s suppressed=%d",
            peer,
            suppressed,
        )


_drop_log = _DropLog()


def trim_overlap(message: dict[str, Any], log: Sequence[tuple[Any, int, int]]) -> dict[str, Any]:
    """An AppendEntries for a follower whose ``log`` (pysyncobj's ``(command, index, term)``
    entries) already holds some of it, rewritten so pysyncobj does not delete what it holds.

    pysyncobj 0.3.17 deletes every entry after ``prevLogIdx`` when the message starts inside
    the follower's log, conflict or not, and appends the message's entries again; for that
    moment the follower lacks entries it acknowledged, which Raft does not allow (it deletes
    only from the first conflicting entry). When every entry of the message the follower holds
    matches its term, the message is cut to the entries beyond the follower's log, with the
    follower's last entry as ``prevLogIdx``. If the message holds nothing new and ends before
    the follower's last entry, that is only done when that entry is of the leader's term (so
    the leader's log holds it and, by Raft's log matching, every entry before it). Anything
    else (a conflict, a term that does not match ``prevLogTerm``, a ``prevLogIdx`` outside the
    log) goes through unchanged.
    """
    if not log:
        return message
    first, last = log[0][1], log[-1][1]
    prev = message["prevLogIdx"]
    if prev >= last or prev < first:
        return message
    if log[prev - first][2] != message.get("prevLogTerm"):
        return message
    entries = list(message.get("entries") or ())
    held = 0
    for entry in entries:
        index = entry[1]
        if index > last:
            break
        if index != prev + 1 + held or log[index - first][2] != entry[2]:
            return message  # a conflict (or a gap): pysyncobj's truncation is Raft's here
        held += 1
    rest = entries[held:]
    if rest and rest[0][1] != last + 1:
        return message  # not contiguous with the log: leave it to pysyncobj
    covered = held > 0 and entries[held - 1][1] == last  # the leader sent our last entry itself
    if not rest and not covered and log[-1][2] != message.get("term"):
        return message
    return {**message, "prevLogIdx": last, "prevLogTerm": log[-1][2], "entries": rest}


class LoggingTransport(TCPTransport):  # type: ignore[misc]
    """pysyncobj's TCP transport, plus a (rate-limited) warning for every incoming connection
    that closes before it identified itself as a peer; pysyncobj drops those silently.

    It also keeps a leader's ``nextIndex`` for a follower from moving backwards on a success
    reply. pysyncobj 0.3.17 sends AppendEntries optimistically (``nextIndex`` jumps past what it
    sent) but then sets ``nextIndex`` from every success reply, and a reply to an earlier message
    is stale by then: the leader sent the same entries again, and the follower deleted and
    re-appended them (the "truncating already-applied log entries" CRITICAL,
    docs/contributing/dependencies.md).
    Measured with 32 writes in flight, followers received each entry about twice. A success
    reply only says how far the follower's log matches; a follower that lacks entries answers
    with ``reset``, which still moves ``nextIndex`` back. As a follower, it keeps pysyncobj from
    deleting entries it holds when an AppendEntries overlaps them (:func:`trim_overlap`).
    """

    def _onMessageReceived(self, node: Any, message: Any) -> None:
        kind = message.get("type") if isinstance(message, dict) else None
        owner = self._syncObj
        if isinstance(owner, RaftNode):
            if kind == prevote.PRE_VOTE:
                prevote.on_request(owner, node, message)
                return
            if kind == prevote.PRE_VOTE_REPLY:
                prevote.on_reply(owner, node, message)
                return
            if kind == "append_entries":
                prevote.on_append_entries(owner, node, message)
        if kind == "append_entries" and "prevLogIdx" in message and "transmission" not in message:
            log = getattr(self._syncObj, "_SyncObj__raftLog", None)
            if log is not None:
                message = trim_overlap(message, log)
        if kind == "next_node_idx" and message.get("success") and not message.get("reset"):
            self._take_success_reply(node, message)
            return
        super()._onMessageReceived(node, message)
        if kind == "append_entries" and message.get("serialized") is not None:
            # a chunk of the leader's dump: pysyncobj answers only the last one, and the
            # leader drops a connection it read nothing from for connectionTimeout (30 s), so a
            # send that long (a large dump, a follower busy decoding it) started over forever;
            # this answer (neither success nor reset) only tells the leader we are here
            super().send(
                node, {"type": "next_node_idx", "next_node_idx": 0, "reset": False, "success": False}
            )

    def _take_success_reply(self, node: Any, message: dict[str, Any]) -> None:
        """pysyncobj's handling of a success reply, without moving ``nextIndex`` back."""
        next_index: dict[Any, int] | None = getattr(self._syncObj, "_SyncObj__raftNextIndex", None)
        before = next_index.get(node) if next_index is not None else None
        super()._onMessageReceived(node, message)
        if next_index is not None and before is not None and next_index.get(node, before) < before:
            next_index[node] = before

    def send(self, node: Any, message: Any) -> bool:
        """An AppendEntries reply waits (in order) until the entries it covers are durable; an
        AppendEntries says this server speaks pre-vote (:data:`prevote.SPEAKS`)."""
        if isinstance(message, dict) and message.get("type") == "append_entries":
            message = {**message, prevote.SPEAKS: 1}
        elif isinstance(message, dict) and message.get("type") == "next_node_idx":
            gate: AckGate | None = getattr(self._syncObj, "_nomadd_gate", None)
            if gate is not None and gate.hold(self, node, message):
                return True
        return bool(super().send(node, message))

    def _onNewIncomingConnection(self, conn: Any) -> None:
        super()._onNewIncomingConnection(conn)
        try:
            host, port = conn._TcpConnection__socket.getpeername()[:2]
            peer = f"{host}:{port}"
        except (AttributeError, OSError):
            peer = "unknown"
        transport = self

        def on_disconnected() -> None:
            if conn in transport._unknownConnections:
                _drop_log.dropped(peer)
            transport._onDisconnected(conn)

        conn.setOnDisconnectedCallback(on_disconnected)


class CoalescingNotifier(PipeNotifier):  # type: ignore[misc]
    """pysyncobj wakes its tick thread with one pipe write per proposed command
    (``appendEntriesUseBatch=False``). From the event loop each write is a GIL hand-off to the
    tick thread, so under load it costs more than the command. Write only when no wake-up is
    pending; the tick thread clears the flag when it drains the pipe, right before the
    ``_checkCommandsToApply`` that takes every command queued until then.
    """

    def __init__(self, poller: Any, callback: Any = None) -> None:
        self._pending = False
        super().__init__(poller, callback=self._drained)

    def notify(self) -> None:
        if self._pending:
            return
        self._pending = True
        super().notify()

    def _drained(self) -> None:
        self._pending = False


class AckGate:
    """Holds back a follower's AppendEntries replies until the entries they acknowledge are
    durable, and syncs the journal once per poll round (one fsync for a burst of messages).

    Tick thread only. :meth:`release` runs after every poll round and at the end of every
    tick: it syncs the journal, then sends the held replies in order. A failed fsync stops
    the process (``on_fatal``): after it the kernel may have dropped the data, and going on
    would acknowledge entries that are not on disk.
    """

    def __init__(self, on_fatal: Callable[[BaseException], None]) -> None:
        self.journal: DurableJournal | None = None
        self._held: list[tuple[TCPTransport, Any, dict[str, Any]]] = []
        self._on_fatal = on_fatal

    def hold(self, transport: TCPTransport, node: Any, message: dict[str, Any]) -> bool:
        """True when ``message`` is kept until the next :meth:`release`."""
        if self.journal is None or not (self._held or self.journal.dirty):
            return False
        self._held.append((transport, node, message))
        return True

    def release(self) -> None:
        if self.journal is not None and self.journal.dirty:
            try:
                self.journal.sync()
            except OSError as err:
                logger.critical("raft journal cannot be written or synced, stopping err=%s", err)
                self._on_fatal(err)
                raise
        held, self._held = self._held, []
        for transport, node, message in held:
            TCPTransport.send(transport, node, message)


class _SyncingPoller:
    """pysyncobj's poller, with :meth:`AckGate.release` after every poll round."""

    def __init__(self, inner: Any, gate: AckGate) -> None:
        self._inner = inner
        self._gate = gate

    def subscribe(self, descr: Any, callback: Any, event_mask: int) -> None:
        self._inner.subscribe(descr, callback, event_mask)

    def unsubscribe(self, descr: Any) -> None:
        self._inner.unsubscribe(descr)

    def poll(self, timeout: float) -> None:
        self._inner.poll(timeout)
        self._gate.release()


class VerifyOnceEncryptor:
    """pysyncobj's Fernet, checking each received message once.

    pysyncobj reads a message with ``extract_timestamp(token)`` (base64-decodes the whole token
    and checks its HMAC) and then ``decrypt(token)`` (decodes and checks it all again, then
    decrypts). Here ``extract_timestamp`` decrypts (which checks the HMAC over the whole token,
    timestamp included) and keeps the plaintext for the ``decrypt`` of that same token object
    that follows: on real entries a follower's decryption went from 12.4 to 7.2 ms per 740 KB.
    Same checks, same failures (``InvalidToken``), same wire format. Tick thread only; any
    other token is decrypted in full.
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._last: tuple[bytes, bytes] | None = None

    def encrypt_at_time(self, data: bytes, current_time: int) -> bytes:
        return bytes(self._inner.encrypt_at_time(data, current_time))

    def extract_timestamp(self, token: bytes) -> int:
        self._last = None
        plain = bytes(self._inner.decrypt(token))  # raises InvalidToken unless the HMAC matches
        self._last = (token, plain)
        # a verified token starts with 0x80 and the 8-byte timestamp: 12 base64 characters
        return int.from_bytes(base64.urlsafe_b64decode(token[:12])[1:9], "big")

    def decrypt(self, token: bytes) -> bytes:
        last, self._last = self._last, None
        if last is not None and last[0] is token:
            return last[1]
        return bytes(self._inner.decrypt(token))

    def __getattr__(self, name: str) -> Any:  # anything else pysyncobj might ask of a Fernet
        return getattr(self._inner, name)


@contextlib.contextmanager
def building_node(gate: AckGate, snapshot_hooks: SnapshotHooks | None = None) -> Iterator[None]:
    """Build the SyncObj inside this block: pysyncobj creates its notifier, journal, poller,
    encryptor and serializer in the constructor from module globals, which are ours here and
    restored right after."""
    m = _pysyncobj_module
    originals = (m.PipeNotifier, m.createJournal, m.createPoller, m.getEncryptor, m.Serializer)
    create_journal, create_poller, create_encryptor = originals[1], originals[2], originals[3]

    def journal(path: str | None) -> Any:
        if path is None:
            return create_journal(None)
        gate.journal = DurableJournal(path)
        return gate.journal

    m.PipeNotifier = CoalescingNotifier
    m.createJournal = journal
    m.createPoller = lambda kind: _SyncingPoller(create_poller(kind), gate)
    m.getEncryptor = lambda password: VerifyOnceEncryptor(create_encryptor(password))
    if snapshot_hooks is not None:
        m.Serializer = lambda *args: SnapshotSerializer(*args, hooks=snapshot_hooks)
    try:
        yield
    finally:
        m.PipeNotifier, m.createJournal, m.createPoller, m.getEncryptor, m.Serializer = originals


@dataclass(frozen=True, slots=True)
class RaftView:
    """What the event loop may know about the node, taken on the tick thread after each tick
    (the loop never reads pysyncobj's state across threads)."""

    state: int = 0  # 0 follower, 1 candidate, 2 leader
    leader: str | None = None  # raft address of the last known leader
    leader_connected: bool = False  # the leader is us or we hold a connection to it
    peers: tuple[str, ...] = ()  # every voter, us included, sorted
    term: int = 0
    commit_index: int = 0
    applied_index: int = 0
    log_len: int = 0
    has_quorum: bool = False
    # leader whose no-op of this term is applied: every entry committed before it is applied
    # here, so its state may serve consistent reads (a new leader's state may still miss
    # entries the previous leader committed and acknowledged until then)
    read_ready: bool = False
    # the longest time between the ends of two ticks since start (a tick waits at most
    # pysyncobj's autoTickPeriod, 50 ms, in poll): how long heartbeats could not go out
    max_tick_gap_s: float = 0.0
    slow_ticks: int = 0  # gaps longer than SLOW_TICK_S since start
    # the latest of them, split into the tick thread's CPU, the rest of the process's, the
    # time it waited for a CPU and the time it was blocked (in poll, or for the GIL)
    last_stall: Stall = _NO_STALL
    # elections not called and leader step-downs not made since start: the deadline had
    # passed, but the messages that meet it (the leader's, a follower's reply) were waiting
    # unread on the socket (the tick thread had not run for that long)
    late_reads: int = 0


class RaftNode(SyncObj):  # type: ignore[misc]
    """The pysyncobj object. Exactly one replicated method (docs/contributing/style.md §Concurrency)."""

    def __init__(
        self,
        fsm: FSM,
        self_addr: str,
        partners: list[str],
        conf: SyncObjConf,
        on_fatal: Callable[[BaseException], None],
        *,
        gate: AckGate | None = None,
        on_view: Callable[[RaftView], None] | None = None,
        snapshot_hooks: SnapshotHooks | None = None,
    ) -> None:
        self._nomadd_fsm = fsm
        self._nomadd_on_fatal = on_fatal
        self._nomadd_self = self_addr
        self._nomadd_gate = gate or AckGate(on_fatal)
        self._nomadd_on_view = on_view
        self.view = RaftView(peers=tuple(sorted([self_addr, *partners])))
        self._nomadd_clock = ThreadClock()
        self._nomadd_last_tick: CpuSample | None = None  # the last full sample
        self._nomadd_last_wall: float | None = None
        self._nomadd_late_reads = 0
        self._nomadd_prevote = prevote.PreVote()
        self._nomadd_hold = ApplyHold(fsm)
        on_state_changed = conf.onStateChanged

        def state_changed(old: int, new: int) -> None:
            self.set_leader(new == 2)
            if on_state_changed is not None:
                on_state_changed(old, new)

        conf.onStateChanged = state_changed
        with building_node(self._nomadd_gate, snapshot_hooks):
            super().__init__(self_addr, partners, conf=conf, transportClass=LoggingTransport)
        self.addOnTickCallback(self._nomadd_tick)

    @replicated  # type: ignore[untyped-decorator]
    def apply(self, msg_type: int, payload: bytes) -> tuple[object, int]:
        index = int(self.raftLastApplied) + 1  # pysyncobj increments after we return
        try:
            result = self._nomadd_fsm.apply(index, msg_type, payload)
        except FSMFatalError as err:
            self._nomadd_on_fatal(err)
            raise
        return result, index

    def _SyncObj__applyLogEntries(self) -> bool:  # pysyncobj's, overridden
        """pysyncobj's apply of the committed entries, stopped before one the FSM holds
        (raft/apply_hold.py): the commit index it reads is lowered for the call."""
        commit, applied = int(self.raftCommitIndex), int(self.raftLastApplied)
        if commit <= applied or not (self._nomadd_hold.active or self._nomadd_fsm.may_hold()):
            return bool(SyncObj._SyncObj__applyLogEntries(self))
        upto = min(commit, applied + HOLD_PEEK_ENTRIES)  # the rest on later ticks
        pending = self._SyncObj__getEntries(applied + 1, upto - applied)
        self._SyncObj__raftCommitIndex = max(applied, self._nomadd_hold.limit(pending, upto))
        try:
            return bool(SyncObj._SyncObj__applyLogEntries(self))
        finally:
            self._SyncObj__raftCommitIndex = commit

    def _onTick(self, timeToWait: float = 0.0) -> None:
        """pysyncobj's tick, which starts an election (a follower whose timer ran out) or steps
        a leader down (no answer from a majority for ``leaderFallbackTimeout``) before it reads
        its sockets, at the tick's end. After a stall of the tick thread (the GIL held
        elsewhere, no CPU for the process) the messages of that time wait unread, and a
        follower deposed a working leader. So when either is due, what is pending is read
        first (one poll round without waiting: a leader's AppendEntries resets a follower's
        timer, a follower's reply the leader's count, as they would have on time); only a
        deadline still missed then counts."""
        if self._step_due():
            state = self._SyncObj__raftState
            self._poller.poll(0)
            if state in (0, 2) and self._SyncObj__raftState == state and not self._step_due():
                self._nomadd_late_reads += 1
            if self._SyncObj__raftState != 2 and self._step_due() and self._SyncObj__connectedToAnyone():
                prevote.gate(self)
        super()._onTick(timeToWait)

    def _step_due(self) -> bool:
        """pysyncobj's conditions for an election or a leader's step-down at the top of its
        tick (and no dump pending that it loads first: no message is read before that)."""
        if (
            self._SyncObj__selfNode is None
            or self._SyncObj__needLoadDumpFile
            or not self._SyncObj__transport.ready
        ):
            return False
        now = _pysyncobj_module.monotonicTime()  # CLOCK_MONOTONIC_RAW, not time.monotonic()
        if self._SyncObj__raftState != 2:
            return bool(self._SyncObj__raftElectionDeadline < now)
        heard = now - self._SyncObj__conf.leaderFallbackTimeout
        others = self._SyncObj__otherNodes
        last = self._SyncObj__lastResponseTime
        answered = 1 + sum(1 for node in others if last.get(node, 0.0) > heard)
        return answered <= (len(others) + 1) / 2

    def set_leader(self, leader: bool) -> None:
        """Tick thread (onStateChanged): a leader syncs its journal before it commits."""
        journal = self._nomadd_gate.journal
        if journal is not None:
            journal.leader = leader

    def _nomadd_tick(self) -> None:
        self._nomadd_gate.release()
        # Every tick reads the wall clock only; the CPU clocks (the process's, summed over its
        # threads, and the scheduler's run-queue file: syscalls that were 4 % of a busy
        # follower's tick thread) are sampled every FULL_SAMPLE_S and at a stall's end, and a
        # stall is split between the full sample before it (at most FULL_SAMPLE_S older than
        # its start) and the one at its end.
        now = time.monotonic()
        last_wall, self._nomadd_last_wall = self._nomadd_last_wall, now
        gap = now - last_wall if last_wall is not None else 0.0
        slow = gap > SLOW_TICK_S
        full = self._nomadd_last_tick
        stall = None
        if slow or full is None or now - full.wall >= FULL_SAMPLE_S:
            sample = self._nomadd_clock.sample()
            if slow and full is not None:
                stall = Stall.between(full, sample)
            self._nomadd_last_tick = sample
        leader = self._getLeader()
        state = int(self._SyncObj__raftState)
        applied = int(self.raftLastApplied)
        noop = self._SyncObj__noopIDx
        old = self.view
        view = RaftView(
            state=state,
            leader=str(leader.address) if leader is not None else None,
            leader_connected=leader is not None and (state == 2 or self.isNodeConnected(leader)),
            peers=tuple(sorted([self._nomadd_self, *(str(n.address) for n in self.otherNodes)])),
            term=int(self.raftCurrentTerm),
            commit_index=int(self.raftCommitIndex),
            applied_index=applied,
            log_len=int(self._getRaftLogSize()),
            has_quorum=bool(self.hasQuorum),
            read_ready=state == 2 and noop is not None and applied >= noop,
            max_tick_gap_s=max(old.max_tick_gap_s, gap),
            slow_ticks=old.slow_ticks + 1 if slow else old.slow_ticks,
            last_stall=stall if stall is not None else old.last_stall,
            late_reads=self._nomadd_late_reads,
        )
        self.view = view
        if self._nomadd_on_view is not None and (
            old.leader != view.leader
            or old.peers != view.peers
            or old.state != view.state
            or old.read_ready != view.read_ready
        ):
            self._nomadd_on_view(view)
