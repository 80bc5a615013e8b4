"""Job events for a job whose status changed through its allocations or evaluations.

nomadd derives a job's status on read (``store_summaries.with_status``); Nomad instead rewrites
the job row whenever an allocation or evaluation update changes it, and so emits a ``Job`` event
— of the entry's type, e.g. ``AllocationUpdated`` — carrying the job with its new ``Status``.
Clients that follow a job through the stream (nomad-tools' watch) wait for that event to see the
job finish. :func:`add_status_changes` makes the same events: for each job an entry touched
through its allocations or evaluations, the derived status is compared with the last one
published, and a changed one is added to the entry's tracked changes as a ``jobs`` row.

It runs only while the event stream has subscribers (the FSM tracks changes only then), and
remembers at most :data:`MAX_REMEMBERED` jobs' statuses (the oldest are forgotten: a forgotten
job's next status is published again, never missed).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from nomadd.server.state import store_jobs, store_summaries

__all__ = ["JobStatusTracker"]

MAX_REMEMBERED = 4096
_DERIVED_FROM = ("allocs", "evals")


class JobStatusTracker:
    def __init__(self) -> None:
        self._last: OrderedDict[str, str] = OrderedDict()

    def _remember(self, key: str, status: str) -> bool:
        """Record ``status`` for ``key``; whether it differs from what was published before."""
        changed = self._last.get(key) != status
        self._last[key] = status
        self._last.move_to_end(key)
        while len(self._last) > MAX_REMEMBERED:
            self._last.popitem(last=False)
        return changed

    def add_status_changes(self, txn: Any, changes: dict[tuple[str, str], list[Any]]) -> None:
        """Called inside the entry's transaction, after its writes (``txn`` reads them)."""
        touched: dict[str, tuple[str, str]] = {}
        for (table, key), (before, after) in list(changes.items()):
            if table == store_jobs.TABLE:
                if after is not None:
                    self._remember(key, str(store_summaries.with_status(txn, after).status))
                continue
            if table in _DERIVED_FROM:
                row = after if after is not None else before
                touched[store_jobs.job_key(row.namespace, row.job_id)] = (row.namespace, row.job_id)
        for key, (namespace, job_id) in touched.items():
            if (store_jobs.TABLE, key) in changes:
                continue  # the job row itself was written: its own event carries it
            job = store_jobs.get_job(txn, namespace, job_id)
            if job is None:
                continue
            current = store_summaries.with_status(txn, job)
            if self._remember(key, str(current.status)):
                changes[(store_jobs.TABLE, key)] = [job, current]
