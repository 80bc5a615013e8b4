"""The ``deployments`` table (and ``deployments_by_job``), written only by the FSM.

Besides the writes of ``DEPLOYMENT_UPDATE`` and of plans, :func:`track_alloc_locked` keeps each
group's counters in step with its allocations (Nomad's ``updateDeploymentWithAlloc``): called by
``store_allocs.put_locked`` for every allocation that belongs to a deployment, it counts a new
placement (and a canary) and a health that turned healthy or unhealthy, and moves the group's
``RequireProgressBy`` on when an allocation turns healthy.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable
from typing import Any

from nomadd.server.state.store import register_table
from nomadd.server.state.store_jobs import Reader, job_index_add, job_index_drop, job_key
from nomadd.structs.alloc import Allocation
from nomadd.structs.codec import from_wire, to_wire
from nomadd.structs.deployment import Deployment, DeploymentState
from nomadd.structs.timeutil import format_time, parse_time

__all__ = [
    "BY_JOB_TABLE",
    "TABLE",
    "TABLES",
    "delete_locked",
    "deployments_by_job",
    "get_deployment",
    "latest_by_job",
    "list_deployments",
    "put_locked",
    "track_alloc_locked",
]

TABLE = "deployments"
BY_JOB_TABLE = "deployments_by_job"
TABLES = (TABLE,)


register_table(TABLE, to_wire, functools.partial(from_wire, Deployment))
register_table(BY_JOB_TABLE, list, tuple)  # deployment IDs of a job


def put_locked(txn: Any, d: Deployment, time_ns: int = 0) -> Deployment:
    """Insert or replace ``d``; sets its indexes (and ModifyTime when ``time_ns``)."""
    old: Deployment | None = txn.get(TABLE, d.id)
    stored = dataclasses.replace(
        d,
        create_index=old.create_index if old is not None else txn.index,
        modify_index=txn.index,
        create_time=old.create_time if old is not None and old.create_time else (d.create_time or time_ns),
        modify_time=time_ns or d.modify_time,
    )
    txn.put(TABLE, d.id, stored)
    if old is None:
        job_index_add(txn, BY_JOB_TABLE, d.namespace, d.job_id, d.id)
    return stored


def delete_locked(txn: Any, ids: Iterable[str]) -> int:
    n = 0
    for dep_id in ids:
        old: Deployment | None = txn.get(TABLE, dep_id)
        if old is None:
            continue
        txn.delete(TABLE, dep_id)
        job_index_drop(txn, BY_JOB_TABLE, old.namespace, old.job_id, dep_id)
        n += 1
    return n


def track_alloc_locked(txn: Any, old: Allocation | None, new: Allocation) -> None:
    """Count ``new`` (replacing ``old``) into its deployment's group state."""
    d: Deployment | None = txn.get(TABLE, new.deployment_id)
    if d is None:
        return
    state = d.task_groups.get(new.task_group)
    if state is None:
        return
    changed = state
    same_deployment = old is not None and old.deployment_id == new.deployment_id
    if not same_deployment:
        changed = dataclasses.replace(changed, placed_allocs=changed.placed_allocs + 1)
        if new.deployment_status is not None and new.deployment_status.canary:
            changed = dataclasses.replace(changed, placed_canaries=(*changed.placed_canaries, new.id))
    was = old.deployment_status.healthy if same_deployment and old and old.deployment_status else None
    now = new.deployment_status.healthy if new.deployment_status is not None else None
    if now is not None and was != now:
        if now:
            changed = dataclasses.replace(changed, healthy_allocs=changed.healthy_allocs + 1)
            assert new.deployment_status is not None
            stamp = parse_time(new.deployment_status.timestamp)
            if stamp and changed.progress_deadline:
                changed = dataclasses.replace(
                    changed, require_progress_by=format_time(stamp + changed.progress_deadline)
                )
        else:
            changed = dataclasses.replace(changed, unhealthy_allocs=changed.unhealthy_allocs + 1)
        if was is True:
            changed = dataclasses.replace(changed, healthy_allocs=changed.healthy_allocs - 1)
        elif was is False:
            changed = dataclasses.replace(changed, unhealthy_allocs=changed.unhealthy_allocs - 1)
    if changed is not state:
        groups: dict[str, DeploymentState] = dict(d.task_groups)
        groups[new.task_group] = changed
        txn.put(TABLE, d.id, dataclasses.replace(d, task_groups=groups, modify_index=txn.index))


def get_deployment(reader: Reader, dep_id: str) -> Deployment | None:
    d: Deployment | None = reader.get(TABLE, dep_id)
    return d


def deployments_by_job(reader: Reader, namespace: str, job_id: str) -> list[Deployment]:
    """The job's deployments, newest first (Nomad's ``DeploymentsByJobID`` order in the API)."""
    ids: tuple[str, ...] = reader.get(BY_JOB_TABLE, job_key(namespace, job_id)) or ()
    found = [reader.get(TABLE, i) for i in ids]
    return sorted((d for d in found if d is not None), key=lambda d: (d.create_index, d.id), reverse=True)


def latest_by_job(reader: Reader, namespace: str, job_id: str) -> Deployment | None:
    found = deployments_by_job(reader, namespace, job_id)
    return found[0] if found else None


def list_deployments(
    reader: Reader, namespace: str = "*", prefix: str = "", where: Callable[[Deployment], bool] | None = None
) -> list[Deployment]:
    """Deployments of ``namespace`` whose ID starts with ``prefix`` (and for which ``where``
    holds, filtered before the sort), oldest first."""
    rows = reader.table(TABLE).values()
    found = [
        d
        for d in rows
        if (namespace == "*" or d.namespace == namespace)
        and d.id.startswith(prefix)
        and (where is None or where(d))
    ]
    return sorted(found, key=lambda d: (d.create_index, d.id))
