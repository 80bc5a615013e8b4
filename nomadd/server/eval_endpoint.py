"""``Eval.*`` RPCs (Nomad's eval_endpoint.go) and the FSM cases for evaluation writes.

``EVAL_UPDATE`` ``{"Evals": [wire Evaluation]}`` inserts or replaces evaluations (workers'
outcomes, blocked and follow-up evals, node-triggered evals); ``EVAL_DELETE`` ``{"Evals": [id]}``
removes them (GC, with the allocations and purged jobs the GC names).
Reads answer Nomad's API JSON: ``Eval.GetEval`` (``EvalID``, a unique prefix
works as in the CLI), ``Eval.List`` (``Prefix``), ``Eval.Allocations`` (``EvalID``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nomadd.server.state import store_allocs, store_evals, store_jobs
from nomadd.server.state.store import StateSnapshot, Txn
from nomadd.server.state.store_evals import ApplyResult
from nomadd.structs.codec import from_wire, to_api
from nomadd.structs.eval import Evaluation

if TYPE_CHECKING:
    from nomadd.rpc import RPCRegistry
    from nomadd.server.server import Server

__all__ = ["find_eval", "register"]


def _apply_eval_update(txn: Txn, req: dict[str, Any]) -> object:
    evals = store_evals.upsert_evals_locked(txn, (from_wire(Evaluation, e) for e in req.get("Evals") or ()))
    return ApplyResult(evals=tuple(evals))


def _apply_eval_delete(txn: Txn, req: dict[str, Any]) -> object:
    """GC: ``{"Evals": [id], "Allocs": [id], "Jobs": [[namespace, id]]}`` (all optional)."""
    for namespace, job_id in req.get("Jobs") or ():
        store_jobs.delete_job_locked(txn, str(namespace), str(job_id))
    allocs = store_allocs.delete_locked(txn, (str(i) for i in req.get("Allocs") or ()))
    evals = store_evals.delete_evals_locked(txn, (str(i) for i in req.get("Evals") or ()))
    return {"Evals": evals, "Allocs": allocs}


def find_eval(snap: StateSnapshot, eval_id: str) -> Evaluation | None:
    """By full ID, or by a prefix that matches exactly one evaluation."""
    ev = store_evals.get_eval(snap, eval_id)
    if ev is not None or not eval_id:
        return ev
    matches = store_evals.list_evals(snap, "*", eval_id)
    return matches[0] if len(matches) == 1 else None


def register(server: Server, registry: RPCRegistry) -> None:
    async def get_eval(args: dict[str, Any]) -> dict[str, Any]:
        eval_id = str(args.get("EvalID") or "")

        def fn(snap: StateSnapshot) -> Any:
            ev = find_eval(snap, eval_id)
            return to_api(ev) if ev is not None else None

        return await server.blocking_query(args, (store_evals.TABLE,), fn)

    async def list_(args: dict[str, Any]) -> dict[str, Any]:
        namespace = str(args.get("Namespace") or "default")
        prefix = str(args.get("Prefix") or "")

        def fn(snap: StateSnapshot) -> Any:
            return [to_api(e) for e in store_evals.list_evals(snap, namespace, prefix)]

        return await server.blocking_query(args, (store_evals.TABLE,), fn)

    async def allocations(args: dict[str, Any]) -> dict[str, Any]:
        eval_id = str(args.get("EvalID") or "")

        def fn(snap: StateSnapshot) -> Any:
            ev = find_eval(snap, eval_id)
            if ev is None:
                return []
            allocs = store_allocs.allocs_by_job(snap, ev.namespace, ev.job_id)
            return [to_api(a.stub()) for a in allocs if a.eval_id == ev.id]

        return await server.blocking_query(args, (store_allocs.TABLE, store_evals.TABLE), fn)

    registry.register_legacy("Eval.GetEval", get_eval, kind="read")
    registry.register_legacy("Eval.List", list_, kind="read")
    registry.register_legacy("Eval.Allocations", allocations, kind="read")
