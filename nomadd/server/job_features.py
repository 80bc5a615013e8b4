"""The job features a server builds from its context: the Job endpoint (register, read, plan
versions), periodic and parameterized jobs (the leader's dispatcher, force and dispatch), and the
version, revert, scale and stability endpoints. Later job features (deployments, services) are
wired here too, so ``server.py`` stays the assembly of subsystems rather than of endpoints."""

from __future__ import annotations

from collections.abc import Callable

from nomadd.rpc import RPCRegistry
from nomadd.server.context import ServerContext
from nomadd.server.job_endpoint import JobEndpoint
from nomadd.server.job_versions import JobVersionsEndpoint
from nomadd.server.leader import LeaderComponent
from nomadd.server.periodic_dispatch import build_periodic

__all__ = ["build_job_features"]


def build_job_features(
    ctx: ServerContext, registry: RPCRegistry, add_leader_component: Callable[[LeaderComponent], None]
) -> JobEndpoint:
    """Register the job RPCs and leader components; returns the Job endpoint."""
    jobs = JobEndpoint(ctx)
    jobs.register(registry)
    build_periodic(ctx, registry, add_leader_component)  # periodic + dispatch
    JobVersionsEndpoint(ctx, jobs).register(registry)
    return jobs
