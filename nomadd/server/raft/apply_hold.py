"""Holding pysyncobj's apply before an entry that would wait for another thread.

pysyncobj applies committed entries on its tick thread, the thread that also reads and answers
the other servers. An entry whose apply waits for work of another thread (a restore's last
chunk, for this server's decoder of the chunks before it: ``fsm/snapshot.py``) silenced the
server for as long as that work lagged: a follower whose decoder was 15 s behind the leader's
answered no AppendEntries for 15 s, and a leader that heard from neither follower stepped down
(the C1M bench, a restore whose leader decoded ahead). So the node asks the FSM before it
applies (:meth:`nomadd.server.fsm.FSM.holds`) and applies only the entries before such an entry;
it goes on appending, answering and committing meanwhile, and applies the rest on a later tick,
once the FSM no longer holds it. Only the applied index waits, as on any follower behind.

A hold is bounded (:data:`HOLD_MAX_S`): past it the entry is applied, and waits inside the apply
as before (a decoder that neither progresses nor fails would be a bug; the apply then reports
what the decoder raised or waits for its result).
"""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Sequence
from typing import Any

from nomadd.server.fsm import FSM

__all__ = ["HOLD_MAX_S", "HOLD_PEEK_ENTRIES", "ApplyHold"]

logger = logging.getLogger(__name__)

HOLD_MAX_S = 600.0
HOLD_PEEK_ENTRIES = 64  # entries looked at (unpickled) per tick while the FSM may hold one
_REGULAR = b"\x00"  # pysyncobj's _COMMAND_TYPE.REGULAR: a @replicated call, pickled after it


class ApplyHold:
    """Where the tick thread stops applying (:meth:`limit`), and since when it holds."""

    def __init__(self, fsm: FSM) -> None:
        self._fsm = fsm
        self._held: tuple[int, float] | None = None  # (index held at, since: monotonic)

    @property
    def active(self) -> bool:
        """Whether the last :meth:`limit` held an entry (the next one says when it no longer does)."""
        return self._held is not None

    def limit(self, entries: Sequence[tuple[bytes, int, int]], commit: int) -> int:
        """The last index of ``entries`` (committed ones not applied, in order, up to ``commit``)
        to apply now: ``commit``, or the one before the first entry the FSM holds."""
        for command, index, _term in entries:
            if index > commit:
                break
            if self._holds(command) and not self._expired(index):
                return index - 1
        if self._held is not None:
            logger.info("raft apply held no more index=%d held_s=%.2f", *self._since())
            self._held = None
        return commit

    def _holds(self, command: bytes) -> bool:
        if command[:1] != _REGULAR:
            return False
        try:
            call: Any = pickle.loads(command[1:])  # (method id, (msg_type, payload)): glue.RaftNode.apply
            msg_type, payload = call[1]
        except Exception:
            return False  # not our one replicated method's: the apply deals with it
        return isinstance(msg_type, int) and isinstance(payload, bytes) and self._fsm.holds(msg_type, payload)

    def _expired(self, index: int) -> bool:
        now = time.monotonic()
        if self._held is None or self._held[0] != index:
            self._held = (index, now)
            logger.info("raft apply held index=%d: its apply would wait for another thread", index)
            return False
        if now - self._held[1] <= HOLD_MAX_S:
            return False
        logger.warning("raft apply held too long, applying index=%d held_s=%.0f", index, now - self._held[1])
        return True

    def _since(self) -> tuple[int, float]:
        assert self._held is not None
        return self._held[0], time.monotonic() - self._held[1]
