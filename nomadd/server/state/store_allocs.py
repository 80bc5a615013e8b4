"""The ``allocs`` table and its ``allocs_by_job`` / ``allocs_by_node`` indexes (FSM writes only).

Two kinds of writers, as in Nomad's state store:

* :func:`upsert_plan_locked` — the plan applier's results (``ALLOC_UPDATE``): new allocations
  (``job`` attached from the plan, indexes set), in-place updates (the client's status and task
  states are kept, except that a plan may mark one ``unknown``: its node is disconnected), stops
  (desired status/description and maybe ``client_status=lost``). A new allocation that replaces
  another sets the previous one's ``next_allocation``. Server-side changes move
  ``AllocModifyIndex`` (what clients watch).
* :func:`update_client_locked` — status reports from clients (``ALLOC_CLIENT_UPDATE``): only
  ``ClientStatus``, ``ClientDescription`` and ``TaskStates`` change; ``AllocModifyIndex`` does not.

An index row (``allocs_by_job``, ``allocs_by_node``) is a tuple of chunks, each a tuple of at
most :data:`CHUNK_LEN` allocations (or their IDs after a restore), replaced on write (the store's
snapshots share rows): a write copies the outer tuple and one chunk, not the whole row.
"""

from __future__ import annotations

import dataclasses
import itertools
import operator
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from nomadd.server.state import store_deployments, store_jobs
from nomadd.server.state.store import SharedField, register_table
from nomadd.server.state.store_alloc_runs import ALLOC_RUNS
from nomadd.server.state.store_codec import RowDiff
from nomadd.server.state.store_jobs import Reader, job_key
from nomadd.server.state.store_services import delete_alloc_locked as delete_alloc_services_locked
from nomadd.structs.alloc import (
    Allocation,
    AllocClientStatus,
    AllocDesiredStatus,
    compact_alloc,
    stored_over,
    stored_placement,
)
from nomadd.structs.codec import from_wire, to_wire
from nomadd.structs.codec_diff import fast_replace, from_wire_over, strict_equal, to_wire_diff
from nomadd.structs.job import Job
from nomadd.structs.requests.node import AllocClientUpdate

__all__ = [
    "BY_JOB_TABLE",
    "BY_NODE_TABLE",
    "COUNTS_TABLE",
    "TABLE",
    "TABLES",
    "USAGE_TABLE",
    "allocs_by_job",
    "allocs_by_node",
    "delete_locked",
    "get_alloc",
    "list_allocs",
    "node_usage",
    "placements_committed",
    "put_locked",
    "update_client_locked",
    "upsert_plan_locked",
]

TABLE = "allocs"
BY_JOB_TABLE = "allocs_by_job"
BY_NODE_TABLE = "allocs_by_node"
USAGE_TABLE = "node_usage"  # node -> summed comparable resources of its non-terminal allocations
# "placed" -> placements (new and in place) of every plan result applied: replicated, so every
# server counts the same across leader changes (a leader's own count missed the plans that
# committed while leadership moved, and started again at 0 on the next leader)
COUNTS_TABLE = "alloc_counts"
_PLACED = "placed"
TABLES = (TABLE,)  # what blocking queries on allocations watch


def _encode(alloc: Allocation) -> Any:
    return to_wire(alloc)


# The string fields a restore interns: repeated across allocations (or, for the ID, in the index
# rows), one object each instead of one per allocation.
_INTERNED = ("id", "namespace", "eval_id", "node_id", "node_name", "job_id", "job_type", "task_group")
_MISSING = object()
# (wire form, allocation) of the row decoded last, per thread (a restore runs on one)
_local = threading.local()


def _decode(raw: Any) -> Allocation:
    """One row of a dump (its job is attached by the store). It shares every field whose wire
    form equals the row before's (the allocations of a plan are dumped one after the other and
    share their resources, eval, metric maps...) and is stored compact (:func:`compact_alloc`)."""
    intern = sys.intern
    for name in _INTERNED:
        value = raw.get(name)
        if type(value) is str:
            raw[name] = intern(value)
    prev: tuple[dict[str, Any], Allocation] | None = getattr(_local, "decoded", None)
    if prev is not None and prev[0].keys() == raw.keys():
        prev_raw = prev[0]
        # strictly: a map equal but in another key order, or a -0.0, is not the row before's
        diff = {k: v for k, v in raw.items() if not strict_equal(prev_raw.get(k, _MISSING), v)}
        alloc = from_wire_over(Allocation, diff, prev[1])
    else:
        alloc = from_wire(Allocation, raw)
    alloc = compact_alloc(alloc)
    _local.decoded = (raw, alloc)
    return alloc


def _decode_over(diff: dict[str, Any], prev: Allocation) -> Allocation:
    """A row of a version 3 dump, written as its difference from the row before (``prev``):
    what did not change is ``prev``'s, one object for both; what did is interned and compacted
    as :func:`_decode` does, in the same copy (:func:`stored_over`)."""
    return stored_over(diff, prev)


# A node holds ~200 allocations at C1M: copying its whole row on each placement made the cost
# of an apply grow with the allocations stored. In chunks, an append copies the last chunk and
# the outer tuple, O(CHUNK_LEN + row / CHUNK_LEN); 32 makes the two copies the same length at
# 1,024 allocations a row.
CHUNK_LEN = 32

Chunks = tuple[tuple[Any, ...], ...]  # an index row: chunks of allocations (or IDs), in order


def _chunks_append(chunks: Chunks, items: Sequence[Any]) -> Chunks:
    """``chunks`` with ``items`` added at the end: the last chunk is filled, then new ones."""
    if chunks and (room := CHUNK_LEN - len(chunks[-1])) > 0:
        chunks = (*chunks[:-1], (*chunks[-1], *items[:room]))
        items = items[room:]
    if not items:
        return chunks
    return (*chunks, *(tuple(items[i : i + CHUNK_LEN]) for i in range(0, len(items), CHUNK_LEN)))


def _chunks_find(chunks: Chunks, old: Allocation | None, alloc_id: str) -> tuple[int, int]:
    """(chunk, position) of ``old`` (found by identity, in C: a scan comparing IDs in Python
    was two thirds of a client update with 200 allocations a node) or, failing that, of the ID
    ``alloc_id`` (a row of IDs after a restore); (-1, -1) when the row holds neither."""
    if old is not None:
        for c, chunk in enumerate(chunks):
            if True in map(operator.is_, chunk, itertools.repeat(old)):
                return c, list(map(operator.is_, chunk, itertools.repeat(old))).index(True)
    for c, chunk in enumerate(chunks):
        for i, r in enumerate(chunk):
            if (r if isinstance(r, str) else r.id) == alloc_id:
                return c, i
    return -1, -1


def _chunks_set(chunks: Chunks, c: int, i: int, value: Any) -> Chunks:
    chunk = chunks[c]
    return (*chunks[:c], (*chunk[:i], value, *chunk[i + 1 :]), *chunks[c + 1 :])


def _chunks_drop(chunks: Chunks, c: int, i: int) -> Chunks:
    """``chunks`` without item ``i`` of chunk ``c``. The chunk is merged with its neighbours
    while they fit in one, so any two adjacent chunks hold more than ``CHUNK_LEN`` together
    (appends keep that too): a row of n keeps at most 2n / CHUNK_LEN + 1 chunks, however many
    allocations came and went."""
    chunk = chunks[c]
    rest = (*chunk[:i], *chunk[i + 1 :])
    start, end = c, c + 1
    if start > 0 and len(chunks[start - 1]) + len(rest) <= CHUNK_LEN:
        start -= 1
        rest = (*chunks[start], *rest)
    if end < len(chunks) and len(chunks[end]) + len(rest) <= CHUNK_LEN:
        rest = (*rest, *chunks[end])
        end += 1
    return (*chunks[:start], *((rest,) if rest else ()), *chunks[end:])


def _encode_ids(chunks: Chunks) -> Any:
    # the dump holds a row flat (its format does not depend on the chunk length)
    return [r if isinstance(r, str) else r.id for chunk in chunks for r in chunk]


def _decode_ids(raw: Any) -> Chunks:
    # IDs after a restore (the allocations' own ID strings: interned); rows are put back as
    # they are rewritten
    return _chunks_append((), tuple(map(sys.intern, raw)))


# an allocation's job is the job version it was placed with, one object for all its allocations
# (and in a dump, written once)
register_table(
    TABLE,
    _encode,
    _decode,
    shared=SharedField(name="job", kind=store_jobs.SHARED_JOB),
    diff=RowDiff(encode=to_wire_diff, decode=_decode_over),
    runs=ALLOC_RUNS,
)
register_table(BY_JOB_TABLE, _encode_ids, _decode_ids, keys_of=TABLE)
register_table(BY_NODE_TABLE, _encode_ids, _decode_ids, keys_of=TABLE)
register_table(USAGE_TABLE, list, tuple)
register_table(COUNTS_TABLE)


def _add_usage(txn: Any, node_id: str, res: tuple[int, int, int], sign: int) -> None:
    cur: tuple[int, int, int] = txn.get(USAGE_TABLE, node_id) or (0, 0, 0)
    new = (cur[0] + sign * res[0], cur[1] + sign * res[1], cur[2] + sign * res[2])
    if new == (0, 0, 0):
        txn.delete(USAGE_TABLE, node_id)
    else:
        txn.put(USAGE_TABLE, node_id, new)


def _index_put(txn: Any, table: str, key: str, alloc: Allocation, old: Allocation | None) -> None:
    """Put ``alloc`` in an index row (chunks of allocations, or of IDs after a restore),
    replacing ``old``, the stored allocation with the same ID. Rows hold the objects so reads
    need no lookups.

    ``old`` None: the allocation is in no row: it is appended without looking (a node's row
    holds every allocation bin-packed onto it). Otherwise the row holds ``old`` itself (or,
    after a restore, its ID)."""
    chunks: Chunks = txn.get(table, key) or ()
    c, i = (-1, -1) if old is None else _chunks_find(chunks, old, alloc.id)
    if c < 0:
        txn.put(table, key, _chunks_append(chunks, (alloc,)))
    else:
        txn.put(table, key, _chunks_set(chunks, c, i, alloc))


def put_locked(txn: Any, alloc: Allocation) -> None:
    """Store ``alloc`` and keep its index rows in step (the only way to write the table)."""
    _put(txn, alloc, txn.get(TABLE, alloc.id))


def _put(
    txn: Any, alloc: Allocation, old: Allocation | None, new_by_job: dict[str, list[Allocation]] | None = None
) -> None:
    """:func:`put_locked` when the caller holds the stored row ``old`` (None: none) already.
    With ``new_by_job`` a new allocation (``old`` None) is collected there for its job's index
    row instead of being appended to it: :func:`_append_by_job` writes the row once per job."""
    if old is not None and not old.terminal():
        _add_usage(txn, old.node_id, old.allocated_resources.comparable(), -1)
    if not alloc.terminal():
        _add_usage(txn, alloc.node_id, alloc.allocated_resources.comparable(), 1)
    txn.put(TABLE, alloc.id, alloc)
    if alloc.deployment_id:
        store_deployments.track_alloc_locked(txn, old, alloc)
    key = job_key(alloc.namespace, alloc.job_id)
    if old is None and new_by_job is not None:
        new_by_job.setdefault(key, []).append(alloc)
    else:
        _index_put(txn, BY_JOB_TABLE, key, alloc, old)
    _index_put(txn, BY_NODE_TABLE, alloc.node_id, alloc, old)
    if alloc.client_terminal():  # Nomad: a stopped allocation's services leave the catalog
        delete_alloc_services_locked(txn, alloc.id)


def _append_by_job(txn: Any, new_by_job: dict[str, list[Allocation]]) -> None:
    """Append the allocations :func:`_put` collected to their jobs' index rows; empties it."""
    for key, allocs in new_by_job.items():
        txn.put(BY_JOB_TABLE, key, _chunks_append(txn.get(BY_JOB_TABLE, key) or (), allocs))
    new_by_job.clear()


def upsert_plan_locked(
    txn: Any,
    job: Job | None,
    placements: Iterable[Allocation],
    stops: Iterable[Allocation],
) -> tuple[int, int]:
    """Apply one plan result. Returns ``(placed, stopped)`` counts (in-place updates count as placed)."""
    index = txn.index
    stopped = 0
    for stop in stops:
        old: Allocation | None = txn.get(TABLE, stop.id)
        if old is None:
            continue
        client_status = old.client_status
        if stop.client_status == AllocClientStatus.LOST and not old.client_terminal():
            client_status = AllocClientStatus.LOST
        _put(
            txn,
            fast_replace(
                old,
                desired_status=stop.desired_status,
                desired_description=stop.desired_description,
                desired_transition=stop.desired_transition,
                client_status=client_status,
                follow_up_eval_id=stop.follow_up_eval_id or old.follow_up_eval_id,
                modify_index=index,
                alloc_modify_index=index,
                modify_time=stop.modify_time or old.modify_time,
            ),
            old,
        )
        stopped += 1
    placed = 0
    # the job's index row is written once for the plan's new placements (a plan's are of one
    # job), not rebuilt for each; any other write of the table flushes it first (it may replace
    # a placement collected here)
    new_by_job: dict[str, list[Allocation]] = {}
    for alloc in placements:
        old = txn.get(TABLE, alloc.id)
        attach = job if job is not None else (old.job if old is not None else alloc.job)
        if old is None:
            if (
                alloc.job is attach
                and alloc.create_index == index
                and alloc.modify_index == index
                and alloc.alloc_modify_index == index
            ):
                stored = alloc  # built for this entry already (plan_apply's FSM case)
            else:
                stored = stored_placement(alloc, attach, index, index, index)
            _put(txn, stored, None, new_by_job)
            if stored.previous_allocation:
                prev: Allocation | None = txn.get(TABLE, stored.previous_allocation)
                if prev is not None and prev.next_allocation != stored.id:
                    _append_by_job(txn, new_by_job)
                    _put(txn, fast_replace(prev, next_allocation=stored.id, modify_index=index), prev)
        else:
            _append_by_job(txn, new_by_job)
            # the servers set client status only to mark ``unknown`` (disconnected node)
            marked = alloc.client_status == AllocClientStatus.UNKNOWN and not old.client_terminal()
            stored = fast_replace(
                alloc,
                job=attach,
                client_status=AllocClientStatus.UNKNOWN if marked else old.client_status,
                next_allocation=old.next_allocation,
                client_description=old.client_description,
                task_states=old.task_states,
                create_index=old.create_index,
                create_time=old.create_time,
                modify_index=index,
                alloc_modify_index=index,
            )
            _put(txn, stored, old)
        placed += 1
    _append_by_job(txn, new_by_job)
    if placed:
        txn.put(COUNTS_TABLE, _PLACED, (txn.get(COUNTS_TABLE, _PLACED) or 0) + placed)
    return placed, stopped


def _index_drop(txn: Any, table: str, key: str, old: Allocation) -> None:
    chunks: Chunks = txn.get(table, key) or ()
    c, i = _chunks_find(chunks, old, old.id)
    if c < 0:
        return
    rest = _chunks_drop(chunks, c, i)
    if rest:
        txn.put(table, key, rest)
    else:
        txn.delete(table, key)


def delete_locked(txn: Any, alloc_ids: Iterable[str]) -> int:
    """Remove allocations (GC) and their index entries; returns how many existed."""
    n = 0
    for alloc_id in alloc_ids:
        old: Allocation | None = txn.get(TABLE, alloc_id)
        if old is None:
            continue
        if not old.terminal():
            _add_usage(txn, old.node_id, old.allocated_resources.comparable(), -1)
        txn.delete(TABLE, alloc_id)
        _index_drop(txn, BY_JOB_TABLE, job_key(old.namespace, old.job_id), old)
        _index_drop(txn, BY_NODE_TABLE, old.node_id, old)
        n += 1
    return n


def update_client_locked(txn: Any, updates: Iterable[AllocClientUpdate], now_ns: int) -> list[Allocation]:
    """Apply client reports (``ALLOC_CLIENT_UPDATE``). Unknown IDs are skipped; ``task_states``
    None keeps the stored ones. Returns the updated rows."""
    out = []
    for upd in updates:
        old: Allocation | None = txn.get(TABLE, upd.id)
        if old is None:
            continue
        states = old.task_states if upd.task_states is None else dict(upd.task_states)
        status = upd.client_status
        if old.client_status == AllocClientStatus.LOST and status != AllocClientStatus.LOST:
            # the servers already declared it lost (node down): a late report does not revive it
            status = AllocClientStatus.LOST if old.desired_status != AllocDesiredStatus.RUN else status
        health = old.deployment_status
        if upd.deployment_status is not None and old.deployment_id:
            base = old.deployment_status or upd.deployment_status
            health = dataclasses.replace(
                base,
                healthy=upd.deployment_status.healthy,
                timestamp=upd.deployment_status.timestamp,
                modify_index=txn.index,
            )
        new = dataclasses.replace(
            old,
            client_status=status,
            client_description=upd.client_description,
            task_states=states,
            deployment_status=health,
            modify_index=txn.index,
            modify_time=now_ns,
        )
        _put(txn, new, old)
        out.append(new)
    return out


def get_alloc(reader: Reader, alloc_id: str) -> Allocation | None:
    alloc: Allocation | None = reader.get(TABLE, alloc_id)
    return alloc


def _rows(reader: Reader, chunks: Chunks) -> list[Allocation]:
    rows: list[Any] = list(itertools.chain.from_iterable(chunks))
    if str not in map(type, rows):  # (checked in C) no IDs left from a restore
        return rows
    out = []
    for r in rows:
        a = reader.get(TABLE, r) if isinstance(r, str) else r
        if a is not None:
            out.append(a)
    return out


def allocs_by_job(reader: Reader, namespace: str, job_id: str) -> list[Allocation]:
    return _rows(reader, reader.get(BY_JOB_TABLE, job_key(namespace, job_id)) or ())


def allocs_by_node(reader: Reader, node_id: str) -> list[Allocation]:
    return _rows(reader, reader.get(BY_NODE_TABLE, node_id) or ())


def node_usage(reader: Reader, node_id: str) -> tuple[int, int, int]:
    """Summed (cpu, memory, disk) of the node's non-terminal allocations, kept on every write."""
    usage: tuple[int, int, int] = reader.get(USAGE_TABLE, node_id) or (0, 0, 0)
    return usage


def placements_committed(reader: Reader) -> int:
    """Placements (new and in place) of every plan result applied since the cluster began (the
    ``nomad.nomad.plan.placements_committed`` gauge): the same on every server at one index."""
    placed: int = reader.get(COUNTS_TABLE, _PLACED) or 0
    return placed


def usage_rows(reader: Reader) -> Mapping[str, tuple[int, int, int]]:
    """Every node's :func:`node_usage` (nodes without a row use nothing), read-only."""
    rows: Mapping[str, tuple[int, int, int]] = reader.table(USAGE_TABLE)
    return rows


def list_allocs(reader: Reader, namespace: str = "*", prefix: str = "") -> list[Allocation]:
    rows = reader.table(TABLE).values()
    found = [a for a in rows if (namespace == "*" or a.namespace == namespace) and a.id.startswith(prefix)]
    return sorted(found, key=lambda a: (a.create_index, a.id))
