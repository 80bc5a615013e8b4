"""The finite state machine: turns committed Raft entries into state-store writes.

Exactly one entry point, :meth:`FSM.apply` ``(index, msg_type, payload)``, called by the single
``@replicated`` method in ``server/raft`` on the Raft thread, in log order, on every server.
What each message type means is one table, :func:`nomadd.server.fsm.dispatch.entry_kinds`,
built explicitly (Nomad's ``fsm.go`` switch): for each :class:`MessageType` the typed entry it
carries (``structs/requests/<noun>.py``), how it is encoded, and the ``apply_*`` function of
``server/fsm/<noun>.py`` that writes it. Rules (docs/contributing/style.md):

* deterministic: no clock, no randomness, no environment; IDs and timestamps are in the entry;
* an entry that does not decode, or has an unknown type without :data:`IGNORE_UNKNOWN_FLAG`,
  raises :class:`FSMFatalError`; ``server/raft`` then stops the process, because a server that
  skips an entry the others applied has diverged;
* rule rejections (check-and-set conflicts, unknown IDs) are *returned* as values;
* each entry runs inside one :meth:`StateStore.write`, which bumps the indexes of the tables it
  touched to the entry's Raft index and wakes blocking queries afterwards.

**Events.** With an :class:`~nomadd.server.events.EventBroker` that has subscribers, the
transaction records the rows it writes and the FSM publishes their events after the write (the
one call site of the event stream; Nomad's memdb change tracking). Without subscribers nothing
is recorded.

**One apply path.** The server that proposes an entry hands the FSM the entry struct it encoded
(:meth:`FSM.expect`), so the leader does not decode its own entries; every other server decodes
the bytes into the same struct type. Both then run the same ``apply_*`` function, which must
not mutate the entry (structs are frozen; the leader's objects may still be referenced by the
proposer). ``tests/unit/server/test_fsm_differential.py`` replays random workloads through both
paths and compares the stores field by field.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from nomadd.server.events.broker import EventBroker
from nomadd.server.state.store import StateStore, Txn
from nomadd.structs.codec import pack, unpack
from nomadd.structs.errors import NomaddError
from nomadd.structs.messages import IGNORE_UNKNOWN_FLAG

logger = logging.getLogger(__name__)

__all__ = [
    "FSM",
    "EntryKind",
    "FSMFatalError",
    "struct_entry",
]

E = TypeVar("E")
AppliedListener = Callable[[int, int, object], None]  # (index, msg_type, result), Raft thread


class FSMFatalError(NomaddError):
    """A committed entry cannot be applied (undecodable, unknown type, handler bug).

    The node must stop: continuing would diverge from the servers that applied it.
    """


@dataclass(frozen=True, slots=True, kw_only=True)
class EntryKind(Generic[E]):
    """One message type: how its entry is encoded and decoded, and the function that applies it.

    ``apply(txn, entry)`` writes the store and returns what the proposer (and the FSM's
    listeners) learn; it must not mutate ``entry``. ``ignorable`` marks a type this build knows
    but does nothing with (reserved for a feature not built yet); its entries only move the index.
    ``waits(entry)``: whether applying ``entry`` now would wait for work of another thread (a
    restore's last chunk, for the decoder of the chunks before it); ``busy()``, cheap, says
    whether any entry of the type might (:meth:`FSM.holds`).
    """

    apply: Callable[[Txn, E], object]
    encode: Callable[[E], bytes]
    decode: Callable[[bytes], E]
    ignorable: bool = False
    waits: Callable[[E], bool] | None = None
    busy: Callable[[], bool] | None = None


def struct_entry(
    cls: type[E],
    apply: Callable[[Txn, E], object],
    *,
    waits: Callable[[E], bool] | None = None,
    busy: Callable[[], bool] | None = None,
) -> EntryKind[E]:
    """An entry that is one struct of ``cls`` in the codec's wire form (msgpack)."""

    def decode(payload: bytes) -> E:
        return unpack(cls, payload)

    return EntryKind(apply=apply, encode=pack, decode=decode, waits=waits, busy=busy)


class FSM:
    """Applies entries to a :class:`StateStore`; also dumps/restores it for Raft snapshots."""

    def __init__(
        self, store: StateStore, kinds: Mapping[int, EntryKind[Any]], events: EventBroker | None = None
    ) -> None:
        self.store = store
        self.events = events or EventBroker()
        self._kinds = dict(kinds)
        self._listeners: list[AppliedListener] = []
        # payload -> [entry it encodes, entries in flight]: the proposer's own copy
        self._proposed: dict[bytes, list[Any]] = {}
        self._proposed_lock = threading.Lock()
        self._busy = [k.busy for k in self._kinds.values() if k.busy is not None]

    def kind(self, msg_type: int) -> EntryKind[Any]:
        kind = self._kinds.get(msg_type)
        if kind is None:
            raise KeyError(f"no fsm entry kind for message type {msg_type}")
        return kind

    def encode(self, msg_type: int, entry: object) -> bytes:
        """The payload bytes of ``entry`` as followers will decode them."""
        return self.kind(msg_type).encode(entry)

    def expect(self, payload: bytes, entry: object) -> None:
        """This server proposed ``payload``, the encoding of ``entry``: when it is applied
        here, apply ``entry`` itself instead of decoding the bytes again.

        Call :meth:`forget` when the entry will not be applied (the proposal failed).
        """
        if not payload:
            return
        with self._proposed_lock:
            slot = self._proposed.get(payload)
            if slot is None:
                self._proposed[payload] = [entry, 1]
            else:
                slot[1] += 1

    def forget(self, payload: bytes) -> None:
        self._take_proposed(payload)

    def _take_proposed(self, payload: bytes) -> object | None:
        with self._proposed_lock:
            slot = self._proposed.get(payload)
            if slot is None:
                return None
            slot[1] -= 1
            if slot[1] <= 0:
                del self._proposed[payload]
            entry: object = slot[0]
            return entry

    def add_listener(self, listener: AppliedListener) -> None:
        """Call ``listener(index, msg_type, result)`` after each applied entry, on the Raft thread.

        Listeners must only hand work to a loop (``call_soon_threadsafe``); they must not block.
        """
        self._listeners.append(listener)

    def may_hold(self) -> bool:
        """Cheap: whether :meth:`holds` may be True for some entry now (nothing in progress
        that an apply could wait for: the Raft thread does not look at the entries)."""
        return any(busy() for busy in self._busy)

    def holds(self, msg_type: int, payload: bytes) -> bool:
        """Whether applying this entry now would wait for work of another thread (a restore's
        last chunk while this server's decoder has not decoded the chunks before it): the Raft
        thread holds its apply, not its messages, until this is False (server/raft's
        ``RaftNode``). An entry that does not decode is not held: its apply says why."""
        kind = self._kinds.get(msg_type)
        if kind is None or kind.waits is None:
            return False
        try:
            entry = kind.decode(payload)
        except Exception:
            return False
        return kind.waits(entry)

    def apply(self, index: int, msg_type: int, payload: bytes) -> object:
        kind = self._kinds.get(msg_type)
        if kind is None or kind.ignorable:
            if kind is None and not msg_type & IGNORE_UNKNOWN_FLAG:
                raise FSMFatalError(f"unknown raft message type {msg_type} at index {index}")
            logger.warning("ignoring raft message type=%d index=%d", msg_type, index)
            with self.store.write(index):
                pass
            return None
        try:
            # a follower proposes nothing: it skips hashing every payload (tens of kB) to look
            # it up (an entry this server proposed was expected before Raft had it)
            entry = self._take_proposed(payload) if payload and self._proposed else None
            if entry is None:
                entry = kind.decode(payload)
        except Exception as err:
            raise FSMFatalError(f"cannot decode raft entry type={msg_type} index={index}") from err
        try:
            with self.store.write(index) as txn:
                if self.events.active:
                    txn.track(self.events.track_tables)
                result = kind.apply(txn, entry)
                if txn.changes:
                    self.events.job_status.add_status_changes(txn, txn.changes)
        except Exception as err:
            raise FSMFatalError(f"apply failed type={msg_type} index={index}: {err!r}") from err
        if txn.replaced:  # an operator snapshot restore: the subscribers' view no longer holds
            self.events.close_all()
        elif txn.changes:
            self.events.publish_changes(index, msg_type, txn.changes)
        for listener in self._listeners:
            try:
                listener(index, msg_type, result)
            except Exception:
                logger.exception("fsm listener failed index=%d type=%d", index, msg_type)
        return result

    def dump(self) -> bytes:
        return self.store.dump()

    def restore(self, data: bytes) -> None:
        self.store.restore(data)
        self.events.close_all()  # the subscribers' view of the state no longer holds
