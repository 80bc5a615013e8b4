"""``Job.Validate`` (Nomad's job_endpoint.go ``Validate``): the checks of ``Job.Register`` (the
job's fields, its namespace and node pool exist), answered as a list instead of a 400."""

from __future__ import annotations

from nomadd.rpc import RPCRegistry
from nomadd.server.context import ServerContext
from nomadd.server.job_endpoint import KNOWN_DRIVERS, check_placeable
from nomadd.structs.errors import ValidationError
from nomadd.structs.requests import QueryMeta
from nomadd.structs.requests.jobspec import JOB_VALIDATE, JobValidateReply, JobValidateRequest

__all__ = ["JobValidateEndpoint"]


class JobValidateEndpoint:
    def __init__(self, ctx: ServerContext) -> None:
        self._ctx = ctx

    def register(self, registry: RPCRegistry) -> None:
        registry.register(JOB_VALIDATE, self.validate, kind="read")

    async def validate(self, req: JobValidateRequest) -> JobValidateReply:
        job_ns = req.job.namespace or "default"
        if job_ns != (req.namespace or "default"):
            raise ValidationError(f'mismatched request namespace in request: "{req.namespace}", "{job_ns}"')
        errors: list[str] = []
        snap = self._ctx.store.snapshot()
        try:
            job = req.job.canonicalize()
            job.validate(KNOWN_DRIVERS, self._ctx.config.limits)
            check_placeable(self._ctx.store, job)
        except ValidationError as err:
            errors = err.message.split("; ")
        return JobValidateReply(
            meta=QueryMeta(index=snap.index or 1),
            validation_errors=tuple(errors),
            error="; ".join(errors),
        )
