"""``Job.Dispatch``: a child of a parameterized job (Nomad's Job.Dispatch in job_endpoint.go).

The request is checked as Nomad's validateDispatchRequest does (payload required or forbidden,
at most :data:`DISPATCH_PAYLOAD_SIZE_LIMIT` bytes, meta keys within ``meta_required`` and
``meta_optional``, all required ones present). The child ``<id>/dispatch-<unix>-<8 hex>`` (or
``<id>/dispatch-<prefix>-<unix>-<8 hex>``) copies the parent with the dispatch's meta merged
in, ``Dispatched`` set, the payload stored (base64, as the API shows it) and its evaluation,
in one ``JOB_REGISTER`` entry. With an ``IdempotencyToken``, a child of the same parent
dispatched with the same token (whatever its status, until it is garbage collected: Nomad's
CheckIdempotencyToken) is returned instead of a new one; the FSM checks again, so two
dispatches racing with one token make one child.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import time
import uuid

from nomadd.rpc import RPCRegistry
from nomadd.server.alloc_endpoint import new_eval
from nomadd.server.context import ServerContext
from nomadd.server.fsm.periodic import find_idempotent_child
from nomadd.server.state import store_jobs
from nomadd.server.state.store_evals import ApplyResult
from nomadd.structs.errors import UnknownJobError, ValidationError
from nomadd.structs.eval import EvalTrigger
from nomadd.structs.job import MAX_JOB_PRIORITY, Job, JobStatus
from nomadd.structs.messages import MessageType
from nomadd.structs.periodic import (
    DISPATCH_LAUNCH_SUFFIX,
    DISPATCH_PAYLOAD_SIZE_LIMIT,
    PAYLOAD_FORBIDDEN,
    PAYLOAD_REQUIRED,
    meta_problem,
)
from nomadd.structs.requests import WriteMeta
from nomadd.structs.requests.job import JobRegisterEntry
from nomadd.structs.requests.periodic import JOB_DISPATCH, JobDispatchReply, JobDispatchRequest

__all__ = ["DispatchEndpoint", "decode_payload", "dispatched_id"]


def dispatched_id(parent_id: str, prefix_template: str, now_ns: int) -> str:
    """Nomad's DispatchedID."""
    suffix = uuid.uuid4().hex[:8]
    unix = now_ns // 1_000_000_000
    if prefix_template:
        return f"{parent_id}{DISPATCH_LAUNCH_SUFFIX}{prefix_template}-{unix}-{suffix}"
    return f"{parent_id}{DISPATCH_LAUNCH_SUFFIX}{unix}-{suffix}"


def decode_payload(text: str) -> bytes:
    """The payload bytes of the API's base64 text (400 if it is not base64)."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError("Payload: not valid base64") from None


def _check(req: JobDispatchRequest, parent: Job, payload: bytes) -> None:
    params = parent.parameterized_job
    assert params is not None
    if params.payload == PAYLOAD_REQUIRED and not payload:
        raise ValidationError("Payload is not provided but required by parameterized job")
    if params.payload == PAYLOAD_FORBIDDEN and payload:
        raise ValidationError("Payload provided but forbidden by parameterized job")
    if len(payload) > DISPATCH_PAYLOAD_SIZE_LIMIT:
        raise ValidationError(f"Payload exceeds maximum size; {len(payload)} > {DISPATCH_PAYLOAD_SIZE_LIMIT}")
    problem = meta_problem(params.meta_required, params.meta_optional, dict(req.meta))
    if problem:
        raise ValidationError(problem)
    if req.priority and not 1 <= req.priority <= MAX_JOB_PRIORITY:
        raise ValidationError(f"dispatch job priority must be between [1, {MAX_JOB_PRIORITY}]")
    if "/" in req.id_prefix_template or any(c.isspace() or c == "\x00" for c in req.id_prefix_template):
        raise ValidationError("IdPrefixTemplate: must not contain '/', spaces or null characters")


def _reply(found: Job) -> JobDispatchReply:
    return JobDispatchReply(
        meta=WriteMeta(index=found.modify_index),
        dispatched_job_id=found.id,
        job_create_index=found.create_index,
    )


class DispatchEndpoint:
    def __init__(self, ctx: ServerContext) -> None:
        self._ctx = ctx

    def register(self, registry: RPCRegistry) -> None:
        registry.register(JOB_DISPATCH, self.dispatch, kind="write")

    async def dispatch(self, req: JobDispatchRequest) -> JobDispatchReply:
        if not req.job_id:
            raise ValidationError("missing parameterized job ID")
        snap = self._ctx.store.snapshot()
        parent = store_jobs.get_job(snap, req.namespace, req.job_id)
        if parent is None:
            raise UnknownJobError("parameterized job not found")
        if not parent.is_parameterized():
            raise ValidationError(f"Specified job {req.job_id!r} is not a parameterized job")
        if parent.stop:
            raise ValidationError(f"Specified job {req.job_id!r} is stopped")
        payload = decode_payload(req.payload) if req.payload else b""
        _check(req, parent, payload)
        now = time.time_ns()
        child_id = dispatched_id(parent.id, req.id_prefix_template, now)
        child = dataclasses.replace(
            parent,
            id=child_id,
            name=child_id,
            parent_id=parent.id,
            dispatched=True,
            dispatch_idempotency_token=req.idempotency_token,
            priority=req.priority or parent.priority,
            meta={**parent.meta, **req.meta},
            payload=base64.b64encode(payload).decode() if payload else None,
            status=JobStatus.PENDING,
            status_description="",
            stable=False,
            version=0,
        )
        earlier = find_idempotent_child(snap, child)
        if earlier is not None:
            return _reply(earlier)
        ev = None
        if not child.is_periodic():
            ev = new_eval(
                job_id=child.id,
                namespace=child.namespace,
                job_type=str(child.type),
                priority=child.priority,
                trigger=EvalTrigger.JOB_REGISTER,
                now_ns=now,
            )
        entry = JobRegisterEntry(job=child, eval=ev, submit_time=now)
        result, index = await self._ctx.propose(MessageType.JOB_REGISTER, entry)
        assert isinstance(result, ApplyResult)
        if not result.found:  # a twin with the same token got in first
            earlier = find_idempotent_child(self._ctx.store.snapshot(), child)
            if earlier is not None:
                return _reply(earlier)
            raise ValidationError("dispatch refused")
        return JobDispatchReply(
            meta=WriteMeta(index=index),
            dispatched_job_id=child.id,
            eval_id=ev.id if ev is not None else "",
            eval_create_index=index if ev is not None else 0,
            job_create_index=index,
        )
