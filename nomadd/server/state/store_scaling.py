"""The ``scaling_events`` table: each job's ``job scale`` events per group (Nomad's
scaling_event table), newest first, at most :data:`TRACKED_SCALING_EVENTS` per group."""

from __future__ import annotations

from typing import Any

from nomadd.server.state.store import register_table
from nomadd.server.state.store_jobs import job_key
from nomadd.structs.codec import from_wire, to_wire
from nomadd.structs.scaling import TRACKED_SCALING_EVENTS, JobScalingEvent, JobScalingEvents

__all__ = ["TABLE", "add_event_locked", "events_of"]

TABLE = "scaling_events"


def _decode(raw: Any) -> JobScalingEvents:
    return from_wire(JobScalingEvents, raw)


register_table(TABLE, to_wire, _decode)


def add_event_locked(
    txn: Any, namespace: str, job_id: str, job_create_index: int, group: str, event: JobScalingEvent
) -> None:
    key = job_key(namespace, job_id)
    row: JobScalingEvents | None = txn.get(TABLE, key)
    groups = dict(row.groups) if row is not None and row.job_create_index == job_create_index else {}
    groups[group] = (event, *groups.get(group, ()))[:TRACKED_SCALING_EVENTS]
    txn.put(TABLE, key, JobScalingEvents(job_create_index=job_create_index, groups=groups))


def events_of(
    reader: Any, namespace: str, job_id: str, job_create_index: int
) -> dict[str, tuple[JobScalingEvent, ...]]:
    """The events of this incarnation of the job (a purged and re-created ID starts afresh)."""
    row: JobScalingEvents | None = reader.get(TABLE, job_key(namespace, job_id))
    if row is None or row.job_create_index != job_create_index:
        return {}
    return dict(row.groups)
