"""The ``periodic_launch`` table (Nomad's periodic_launch): the last launch of each periodic job.

Keyed like ``jobs`` (``namespace\\0id`` of the periodic parent). Written only by the FSM: the
first row when an active periodic job is registered (its insertion time, so a leader elected
before its first launch knows what it missed), then each launch of a child. Deleted with the
job on purge. It is in every Raft snapshot, so a new leader, or a restored cluster, never
launches a time already launched.
"""

from __future__ import annotations

from typing import Any

from nomadd.server.state import store_allocs, store_evals, store_jobs
from nomadd.server.state.store import register_table
from nomadd.server.state.store_jobs import Reader, job_key
from nomadd.structs.codec import from_wire, to_wire
from nomadd.structs.job import Job
from nomadd.structs.periodic import PeriodicLaunch

__all__ = [
    "TABLE",
    "child_active",
    "children",
    "delete_launch_locked",
    "get_launch",
    "list_launches",
    "upsert_launch_locked",
]

TABLE = "periodic_launch"


def _decode(raw: Any) -> PeriodicLaunch:
    return from_wire(PeriodicLaunch, raw)


register_table(TABLE, to_wire, _decode)


def get_launch(reader: Reader, namespace: str, job_id: str) -> PeriodicLaunch | None:
    launch: PeriodicLaunch | None = reader.get(TABLE, job_key(namespace, job_id))
    return launch


def list_launches(reader: Reader) -> list[PeriodicLaunch]:
    return sorted(reader.table(TABLE).values(), key=lambda pl: (pl.namespace, pl.id))


def upsert_launch_locked(txn: Any, namespace: str, job_id: str, launch_ns: int) -> PeriodicLaunch:
    old = get_launch(txn, namespace, job_id)
    row = PeriodicLaunch(
        id=job_id,
        namespace=namespace,
        launch=launch_ns,
        create_index=old.create_index if old is not None else txn.index,
        modify_index=txn.index,
    )
    txn.put(TABLE, job_key(namespace, job_id), row)
    return row


def delete_launch_locked(txn: Any, namespace: str, job_id: str) -> None:
    txn.delete(TABLE, job_key(namespace, job_id))


def children(reader: Reader, parent: Job) -> list[Job]:
    """The jobs launched or dispatched from ``parent`` (IDs ``<parent>/…`` with its ParentID)."""
    prefix = parent.id + "/"
    return [j for j in store_jobs.list_jobs(reader, parent.namespace, prefix) if j.parent_id == parent.id]


def child_active(reader: Reader, child: Job) -> bool:
    """A non-terminal evaluation or allocation (Nomad's RunningChildren test for one child)."""
    evals = store_evals.evals_by_job(reader, child.namespace, child.id)
    if any(not e.terminal() for e in evals):
        return True
    return any(not a.terminal() for a in store_allocs.allocs_by_job(reader, child.namespace, child.id))
