"""The ``evals`` table (and its ``evals_by_job`` index), written only by the FSM.

Evaluations are created by endpoints (job register/deregister, node updates, alloc stop...), by
workers (blocked and follow-up evals) and updated by workers (complete, failed, blocked).
``CreateIndex``/``ModifyIndex`` are set here from the entry's Raft index.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

from nomadd.server.state.store import register_table
from nomadd.server.state.store_codec import RowDiff
from nomadd.server.state.store_jobs import Reader, job_index_add, job_index_drop, job_key
from nomadd.structs.codec import from_wire, to_wire
from nomadd.structs.codec_diff import fast_replace, from_wire_over, to_wire_diff
from nomadd.structs.eval import Evaluation

__all__ = [
    "BY_JOB_TABLE",
    "TABLE",
    "ApplyResult",
    "delete_evals_locked",
    "evals_by_job",
    "get_eval",
    "list_evals",
    "upsert_evals_locked",
]

TABLE = "evals"
BY_JOB_TABLE = "evals_by_job"


def _encode(ev: Evaluation) -> Any:
    return to_wire(ev)


def _decode(raw: Any) -> Evaluation:
    return from_wire(Evaluation, raw)


def _encode_ids(ids: tuple[str, ...]) -> Any:
    return list(ids)


def _decode_ids(raw: Any) -> tuple[str, ...]:
    return tuple(raw)


def _decode_over(diff: dict[str, Any], prev: Evaluation) -> Evaluation:
    return from_wire_over(Evaluation, diff, prev)


# in a version 3 dump each evaluation but the first is its difference from the one before (those
# of a busy cluster differ in their IDs, job and indexes): what they share is decoded once
register_table(TABLE, _encode, _decode, diff=RowDiff(encode=to_wire_diff, decode=_decode_over))
register_table(BY_JOB_TABLE, _encode_ids, _decode_ids)


def upsert_evals_locked(txn: Any, evals: Iterable[Evaluation]) -> list[Evaluation]:
    """Insert or replace evaluations; returns them as stored (indexes set)."""
    out = []
    for ev in evals:
        old: Evaluation | None = txn.get(TABLE, ev.id)
        stored = fast_replace(
            ev,
            create_index=old.create_index if old is not None else txn.index,
            modify_index=txn.index,
        )
        txn.put(TABLE, ev.id, stored)
        if old is None and ev.job_id:
            job_index_add(txn, BY_JOB_TABLE, ev.namespace, ev.job_id, ev.id)
        out.append(stored)
    return out


def delete_evals_locked(txn: Any, eval_ids: Iterable[str]) -> int:
    n = 0
    for eval_id in eval_ids:
        old: Evaluation | None = txn.get(TABLE, eval_id)
        if old is None:
            continue
        txn.delete(TABLE, eval_id)
        job_index_drop(txn, BY_JOB_TABLE, old.namespace, old.job_id, eval_id)
        n += 1
    return n


def get_eval(reader: Reader, eval_id: str) -> Evaluation | None:
    ev: Evaluation | None = reader.get(TABLE, eval_id)
    return ev


def evals_by_job(reader: Reader, namespace: str, job_id: str) -> list[Evaluation]:
    ids: tuple[str, ...] = reader.get(BY_JOB_TABLE, job_key(namespace, job_id)) or ()
    out = [reader.get(TABLE, i) for i in ids]
    return sorted((e for e in out if e is not None), key=lambda e: e.create_index)


def list_evals(
    reader: Reader, namespace: str = "*", prefix: str = "", where: Callable[[Evaluation], bool] | None = None
) -> list[Evaluation]:
    """Evals of ``namespace`` whose ID starts with ``prefix`` (and for which ``where`` holds,
    filtered before the sort), oldest first."""
    rows = reader.table(TABLE).values()
    found = [
        e
        for e in rows
        if (namespace == "*" or e.namespace == namespace)
        and e.id.startswith(prefix)
        and (where is None or where(e))
    ]
    return sorted(found, key=lambda e: (e.create_index, e.id))


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ApplyResult:
    """What a job, eval or alloc entry did, for the proposer and the leader's applied listener.

    ``evals`` are the evaluations written (pending ones go to the eval broker, blocked ones to
    the blocked-evals tracker); ``freed`` says some allocation stopped or finished (capacity may
    have appeared, so blocked evals are retried). ``batch`` holds one result per request of an
    entry that carries several (``JOB_REGISTER_BATCH``); ``evals`` then holds all of theirs.
    """

    evals: tuple[Evaluation, ...] = ()
    job_modify_index: int = 0
    found: bool = True
    changed: bool = True
    placed: int = 0
    stopped: int = 0
    freed: bool = False
    batch: tuple[ApplyResult, ...] = ()
    refused: str = ""  # why the entry changed nothing (a register's EnforceIndex no longer held)
