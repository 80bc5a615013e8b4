"""The finite state machine: turns committed Raft entries into state-store writes.

Exactly one entry point, :meth:`FSM.apply` ``(index, msg_type, payload)``, called by the single
``@replicated`` method in ``server/raft.py`` on the Raft thread, in log order, on every server.
Rules (STYLE.md §4, §7):

* deterministic: no clock, no randomness, no environment; IDs and timestamps are in the payload;
* an entry that does not decode, or has an unknown type without :data:`IGNORE_UNKNOWN_FLAG`,
  raises :class:`FSMFatalError`; ``raft.py`` then stops the process, because a server that skips
  an entry the others applied has diverged;
* rule rejections (check-and-set conflicts, unknown IDs) are *returned* as values;
* each entry runs inside one :meth:`StateStore.write`, which bumps the indexes of the tables it
  touched to the entry's Raft index and wakes blocking queries afterwards.

Other teams add message types with :func:`register_handler` from their own module (imported by
``server/server.py``), keeping this file the one switch of Nomad's ``fsm.go``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import msgpack  # type: ignore[import-untyped]

from nomadd.server.state import store_variables
from nomadd.server.state.store import StateStore, Txn
from nomadd.structs.errors import NomaddError
from nomadd.structs.messages import IGNORE_UNKNOWN_FLAG, MessageType

logger = logging.getLogger(__name__)

__all__ = [
    "FSM",
    "FSMFatalError",
    "Handler",
    "decode_payload",
    "encode_payload",
    "register_handler",
]

Handler = Callable[[Txn, dict[str, Any]], object]
AppliedListener = Callable[[int, int, object], None]  # (index, msg_type, result), Raft thread

_HANDLERS: dict[int, Handler] = {}


class FSMFatalError(NomaddError):
    """A committed entry cannot be applied (undecodable, unknown type, handler bug).

    The node must stop: continuing would diverge from the servers that applied it.
    """


def register_handler(msg_type: MessageType, handler: Handler) -> None:
    """Install the apply function of ``msg_type``; registering a type twice is a bug."""
    existing = _HANDLERS.get(int(msg_type))
    if existing is not None and existing is not handler:
        raise ValueError(f"fsm handler for {msg_type!r} already registered")
    _HANDLERS[int(msg_type)] = handler


def encode_payload(req: dict[str, Any]) -> bytes:
    """msgpack bytes of a request map, as every proposer must send."""
    packed: bytes = msgpack.packb(req, use_bin_type=True)
    return packed


def decode_payload(payload: bytes) -> dict[str, Any]:
    req = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    if not isinstance(req, dict):
        raise TypeError(f"payload is {type(req).__name__}, want a map")
    return req


def _apply_noop(txn: Txn, req: dict[str, Any]) -> object:
    return None


def _apply_var_upsert(txn: Txn, req: dict[str, Any]) -> object:
    return store_variables.upsert_locked(
        txn,
        namespace=req["Namespace"],
        path=req["Path"],
        items=req["Items"],
        now_ns=req["Time"],
        cas=req.get("CAS"),
    )


def _apply_var_delete(txn: Txn, req: dict[str, Any]) -> object:
    return store_variables.delete_locked(
        txn, namespace=req["Namespace"], path=req["Path"], cas=req.get("CAS")
    )


register_handler(MessageType.NOOP, _apply_noop)
register_handler(MessageType.VAR_UPSERT, _apply_var_upsert)
register_handler(MessageType.VAR_DELETE, _apply_var_delete)


class FSM:
    """Applies entries to a :class:`StateStore`; also dumps/restores it for Raft snapshots."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self._listeners: list[AppliedListener] = []
        # payload -> [request map it encodes, entries in flight]: the proposer's own copy
        self._proposed: dict[bytes, list[Any]] = {}
        self._proposed_lock = threading.Lock()

    def expect(self, payload: bytes, request: dict[str, Any]) -> None:
        """This server proposed ``payload``, the msgpack encoding of ``request``: when it is
        applied here, use ``request`` instead of decoding the bytes again.

        Only for requests that survive a msgpack round trip unchanged up to what the handlers
        read (what :func:`encode_payload` takes), or that hold, in place of a wire map, the
        struct it decodes to where the handler accepts both (a job register's ``Job``); the
        handler must not mutate them. Call
        :meth:`forget` when the entry will not be applied (proposal failed).
        """
        if not payload:
            return
        with self._proposed_lock:
            slot = self._proposed.get(payload)
            if slot is None:
                self._proposed[payload] = [request, 1]
            else:
                slot[1] += 1

    def forget(self, payload: bytes) -> None:
        self._take_proposed(payload)

    def _take_proposed(self, payload: bytes) -> dict[str, Any] | None:
        with self._proposed_lock:
            slot = self._proposed.get(payload)
            if slot is None:
                return None
            slot[1] -= 1
            if slot[1] <= 0:
                del self._proposed[payload]
            req: dict[str, Any] = slot[0]
            return req

    def add_listener(self, listener: AppliedListener) -> None:
        """Call ``listener(index, msg_type, result)`` after each applied entry, on the Raft thread.

        Listeners must only hand work to a loop (``call_soon_threadsafe``); they must not block.
        """
        self._listeners.append(listener)

    def apply(self, index: int, msg_type: int, payload: bytes) -> object:
        handler = _HANDLERS.get(msg_type)
        if handler is None:
            if msg_type & IGNORE_UNKNOWN_FLAG:
                logger.warning("ignoring unknown raft message type=%d index=%d", msg_type, index)
                with self.store.write(index):
                    pass
                return None
            raise FSMFatalError(f"unknown raft message type {msg_type} at index {index}")
        try:
            req = (self._take_proposed(payload) or decode_payload(payload)) if payload else {}
        except Exception as err:
            raise FSMFatalError(f"cannot decode raft entry type={msg_type} index={index}") from err
        try:
            with self.store.write(index) as txn:
                result = handler(txn, req)
        except Exception as err:
            raise FSMFatalError(f"apply failed type={msg_type} index={index}: {err!r}") from err
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
