"""Blocked evaluations (leader only): evals that could not place everything, retried when
capacity may have appeared (Nomad's BlockedEvals, without per-class bookkeeping).

``block(ev)`` keeps one blocked eval per job (a newer one replaces the older, which is handed to
``on_cancel``). ``unblock(index)`` — a node became ready or eligible, or an allocation stopped
or finished at Raft ``index`` — sends every blocked eval to the broker. To not miss capacity
that appeared while an eval was being planned, an eval whose ``SnapshotIndex`` is older than the
last unblock goes to the broker at once instead of waiting.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from nomadd.structs.eval import Evaluation

logger = logging.getLogger(__name__)

__all__ = ["BlockedEvals"]


class BlockedEvals:
    def __init__(
        self,
        enqueue: Callable[[Evaluation], None],
        on_cancel: Callable[[list[Evaluation]], None] | None = None,
    ) -> None:
        self._enqueue = enqueue
        self._on_cancel = on_cancel
        self.enabled = False
        self._by_job: dict[tuple[str, str], Evaluation] = {}
        self._unblock_index = 0
        self.stats = {"blocked": 0, "unblocked": 0}

    def set_enabled(self, enabled: bool) -> None:
        self.enabled = enabled
        if not enabled:
            self._by_job.clear()
            self._unblock_index = 0

    def block(self, ev: Evaluation) -> None:
        if not self.enabled or not ev.should_block():
            return
        if ev.snapshot_index and ev.snapshot_index < self._unblock_index:
            self.stats["unblocked"] += 1
            self._enqueue(ev)
            return
        key = (ev.namespace, ev.job_id)
        old = self._by_job.get(key)
        if old is not None and old.id != ev.id:
            if old.create_index > ev.create_index:
                if self._on_cancel is not None:
                    self._on_cancel([ev])
                return
            if self._on_cancel is not None:
                self._on_cancel([old])
        self._by_job[key] = ev
        self.stats["blocked"] += 1

    def unblock(self, index: int) -> int:
        """Release every blocked eval to the broker; returns how many."""
        if not self.enabled:
            return 0
        self._unblock_index = max(self._unblock_index, index)
        evals = list(self._by_job.values())
        self._by_job.clear()
        for ev in evals:
            self._enqueue(ev)
        self.stats["unblocked"] += len(evals)
        if evals:
            logger.debug("blocked evals released count=%d index=%d", len(evals), index)
        return len(evals)

    def count(self) -> int:
        return len(self._by_job)
