"""The ``jobs`` and ``job_versions`` tables (Nomad's state_store jobs + job_version tables).

``jobs`` maps ``namespace\\0id`` to the current :class:`Job`; ``job_versions`` maps the same key
to a tuple of versions, newest first, at most :data:`JOB_TRACKED_VERSIONS`. Writes come only from
the FSM. An identical re-register (same spec, :meth:`Job.spec_equal`) changes nothing: same
version, same ``JobModifyIndex``. A changed spec (stop included) makes version + 1.

The job's ``Status`` is not stored: readers derive it (``store_summaries.job_status``), so it
never goes stale when allocations or evaluations change.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from nomadd.server.state import store_reuse
from nomadd.server.state.store_codec import Refs, RowDiff, register_shared, register_table
from nomadd.structs.codec import from_wire, to_wire
from nomadd.structs.codec_diff import fast_replace, from_wire_over, to_wire_diff
from nomadd.structs.job import Job

__all__ = [
    "JOB_TRACKED_VERSIONS",
    "SHARED_JOB",
    "TABLE",
    "VERSIONS_TABLE",
    "Reader",
    "delete_job_locked",
    "get_job",
    "job_index_add",
    "job_index_drop",
    "job_key",
    "job_key_parts",
    "job_of_modify_index",
    "job_versions",
    "list_jobs",
    "upsert_job_locked",
]

TABLE = "jobs"
VERSIONS_TABLE = "job_versions"
JOB_TRACKED_VERSIONS = 6  # Nomad's structs.JobTrackedVersions


class Reader(Protocol):
    """What both a :class:`Txn` and a :class:`StateSnapshot` offer for reading."""

    def get(self, table: str, key: str) -> Any | None: ...

    def table(self, name: str) -> Any: ...


def job_key(namespace: str, job_id: str) -> str:
    return f"{namespace}\x00{job_id}"


def job_key_parts(key: str) -> tuple[str, str]:
    """``(namespace, job ID)`` of a :func:`job_key`."""
    namespace, _, job_id = key.partition("\x00")
    return namespace, job_id


def job_index_add(txn: Any, table: str, namespace: str, job_id: str, row_id: str) -> None:
    """Append ``row_id`` to the job's row of a by-job ID index (evals, deployments)."""
    key = job_key(namespace, job_id)
    ids: tuple[str, ...] = txn.get(table, key) or ()
    txn.put(table, key, (*ids, row_id))


def job_index_drop(txn: Any, table: str, namespace: str, job_id: str, row_id: str) -> None:
    """Remove ``row_id`` from the job's row of a by-job ID index; an empty row goes."""
    key = job_key(namespace, job_id)
    rest = tuple(i for i in (txn.get(table, key) or ()) if i != row_id)
    if rest:
        txn.put(table, key, rest)
    else:
        txn.delete(table, key)


SHARED_JOB = "job"  # a job version, one object for the jobs table, its versions, its allocations


def _encode_job(job: Job, refs: Refs) -> Any:
    return refs.out(SHARED_JOB, job)


def _decode_job(raw: Any, refs: Refs) -> Job:
    job: Job = refs.get(SHARED_JOB, raw)
    return job


def _encode_versions(versions: tuple[Job, ...], refs: Refs) -> Any:
    return [refs.out(SHARED_JOB, j) for j in versions]


def _decode_versions(raw: Any, refs: Refs) -> tuple[Job, ...]:
    return tuple(refs.get(SHARED_JOB, j) for j in raw)


def _decode_job_over(diff: dict[str, Any], prev: Job) -> Job:
    return from_wire_over(Job, diff, prev)


# job versions as differences from the one before in a version 3 dump: what they have in common
# (a C1M run's jobs differ in their IDs) is decoded once and one object again after a restore
register_shared(
    SHARED_JOB,
    to_wire,
    functools.partial(from_wire, Job),
    diff=RowDiff(encode=to_wire_diff, decode=_decode_job_over),
)
register_table(TABLE, _encode_job, _decode_job, refs=True)


def _kept_version(job: Job) -> Job:
    """The running state's version of ``job``'s number if it equals ``job``, else ``job`` (a
    restore keeps it, store_reuse). By ``==``, which compares the Raft indexes that stored it
    too, not strict_equal's walk of its maps and task groups (23 µs a job against 4: 2.3 s of
    CPU per server for a C1M restore's 100,000 versions): a stored version's content is the one
    the register entry at its ``job_modify_index`` gave it. What ``==`` leaves out, a map's key
    order or an int against an equal float in a task's free-form config, is then the running
    state's."""
    versions = store_reuse.live_table(VERSIONS_TABLE)
    for version in (versions.get(job_key(job.namespace, job.id)) if versions is not None else None) or ():
        if version.version == job.version:
            return version if type(version) is Job and version == job else job
    return job


store_reuse.register_live(SHARED_JOB, _kept_version)
register_table(VERSIONS_TABLE, _encode_versions, _decode_versions, refs=True)


def upsert_job_locked(txn: Any, job: Job, submit_time: int) -> tuple[Job, bool]:
    """Store ``job`` (canonicalized, validated by the endpoint). Returns ``(stored, changed)``.

    ``changed`` is False for an identical re-register: the stored job is returned untouched.
    """
    key = job_key(job.namespace, job.id)
    old: Job | None = txn.get(TABLE, key)
    if old is not None and old.spec_equal(job):
        return old, False
    stored = fast_replace(
        job,
        version=old.version + 1 if old is not None else 0,
        submit_time=submit_time,
        create_index=old.create_index if old is not None else txn.index,
        modify_index=txn.index,
        job_modify_index=txn.index,
        status=job.status,
        stable=False,
    )
    txn.put(TABLE, key, stored)
    versions: tuple[Job, ...] = txn.get(VERSIONS_TABLE, key) or ()
    txn.put(VERSIONS_TABLE, key, (stored, *versions)[:JOB_TRACKED_VERSIONS])
    return stored, True


def delete_job_locked(txn: Any, namespace: str, job_id: str) -> bool:
    """Purge the job and its versions; False when it did not exist."""
    key = job_key(namespace, job_id)
    txn.delete(VERSIONS_TABLE, key)
    return bool(txn.delete(TABLE, key))


def get_job(reader: Reader, namespace: str, job_id: str) -> Job | None:
    job: Job | None = reader.get(TABLE, job_key(namespace, job_id))
    return job


def job_versions(reader: Reader, namespace: str, job_id: str) -> tuple[Job, ...]:
    versions: tuple[Job, ...] = reader.get(VERSIONS_TABLE, job_key(namespace, job_id)) or ()
    return versions


def job_of_modify_index(reader: Reader, namespace: str, job_id: str, job_modify_index: int) -> Job | None:
    """The stored job whose JobModifyIndex is ``job_modify_index``: the current one or one of
    the tracked older versions; None when it is gone (purged, or no longer tracked)."""
    current = get_job(reader, namespace, job_id)
    if current is not None and current.job_modify_index == job_modify_index:
        return current
    for version in job_versions(reader, namespace, job_id):
        if version.job_modify_index == job_modify_index:
            return version
    return None


def list_jobs(
    reader: Reader, namespace: str = "*", prefix: str = "", where: Callable[[Job], bool] | None = None
) -> Iterator[Job]:
    """Jobs of ``namespace`` (``*`` = all) whose ID starts with ``prefix`` (and for which
    ``where`` holds: filtered before the sort, which costs most at 100,000 jobs), sorted by ID."""
    rows = reader.table(TABLE).values()
    found = [
        j
        for j in rows
        if (namespace == "*" or j.namespace == namespace)
        and j.id.startswith(prefix)
        and (where is None or where(j))
    ]
    yield from sorted(found, key=lambda j: (j.namespace, j.id))
