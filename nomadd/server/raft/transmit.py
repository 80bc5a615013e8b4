"""pysyncobj's snapshot sender and receiver, with our dump hooks in the loop (this package is
the only pysyncobj importer).

pysyncobj's ``Serializer`` sends a lagging follower the leader's dump file in
``logCompactionBatchSize`` chunks, and a follower writes the chunks it receives to
``<dump>.1.tmp``, renames it into place after the last one and loads it.
:class:`SnapshotSerializer` (put in its place by :func:`.glue.building_node`) also tells the
:class:`SnapshotHooks` (:class:`~.dump.DumpSerializer`) of every chunk received, so the dump is
decoded as it arrives, and asks them before a send to a follower starts, so a leader whose
journal outgrew its dump sends a fresh one (see :mod:`.dump`).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

from pysyncobj import serializer as _serializer_module

logger = logging.getLogger("nomadd.server.raft")

__all__ = ["SEND_STALE_S", "SnapshotHooks", "SnapshotSerializer"]

SEND_STALE_S = 10.0  # a send with no chunk for this long no longer counts (see SnapshotHooks)


class SnapshotHooks(Protocol):
    """What :class:`SnapshotSerializer` tells and asks (:class:`~.dump.DumpSerializer`)."""

    # until when (time.monotonic()) a send of the dump counts as in progress: set by the
    # serializer at every chunk sent, 0 once none is; a send left behind (pysyncobj keeps one
    # when the leader steps down mid-send) stops counting SEND_STALE_S after its last chunk
    sending_until: float

    def hold_send(self) -> bool:
        """A send to a follower is about to start: True to wait (asked again next time)."""

    def on_chunk(self, first: bool, last: bool, complete: bool) -> None:
        """A chunk of a snapshot from the leader was written (``complete``: the last one, and
        the file renamed into place)."""


class SnapshotSerializer(_serializer_module.Serializer):  # type: ignore[misc]
    """pysyncobj's serializer (which sends our dump file in chunks and writes the chunks it
    receives to ``<dump>.1.tmp``), with :class:`SnapshotHooks` told of every chunk received
    and asked before a send to a follower starts. Tick thread only."""

    def __init__(self, *args: Any, hooks: SnapshotHooks) -> None:
        super().__init__(*args)
        self._nomadd_hooks = hooks
        self._nomadd_sending: set[Any] = set()  # followers a send is in progress to

    def _nomadd_sent(self, transmission_id: Any, going: bool) -> None:
        if going:
            self._nomadd_sending.add(transmission_id)
        else:
            self._nomadd_sending.discard(transmission_id)
        self._nomadd_hooks.sending_until = time.monotonic() + SEND_STALE_S if self._nomadd_sending else 0.0

    def getTransmissionData(self, transmissionID: Any) -> Any:
        if transmissionID not in self._nomadd_sending and self._nomadd_hooks.hold_send():
            return None  # the follower is sent an empty message and asked again next time
        data = super().getTransmissionData(transmissionID)
        if data is False:
            self._nomadd_sent(transmissionID, False)
        elif data is not None:
            self._nomadd_sent(transmissionID, not data[2])
        return data

    def cancelTransmisstion(self, id: Any) -> None:
        self._nomadd_sent(id, False)
        super().cancelTransmisstion(id)

    def setTransmissionData(self, data: Any) -> bool:
        complete = bool(super().setTransmissionData(data))
        if data is not None:
            try:
                self._nomadd_hooks.on_chunk(bool(data[1]), bool(data[2]), complete)
            except Exception:  # the file pysyncobj wrote is still loaded the usual way
                logger.exception("raft snapshot receiver failed")
        return complete
