"""``/v1/metrics``: the ``nomad.nomad.plan.placements_committed`` gauge is the replicated count,
so a server that never led (or a new leader) reports every placement the cluster committed."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from nomadd import telemetry
from nomadd.agent.http.metrics_endpoint import _scheduling_gauges
from tests.unit.server.fakes import FakeServer, api_job, wait_until

_GAUGE = "nomad.nomad.plan.placements_committed"


def _gauge(server: FakeServer) -> float:
    _scheduling_gauges(SimpleNamespace(server=server))  # type: ignore[arg-type]
    gauges = telemetry.REGISTRY.to_json()["Gauges"]
    return float(next(g["Value"] for g in gauges if g["Name"] == _GAUGE))


async def _lead(server: FakeServer, job_id: str, count: int) -> None:
    """``server`` as the leader schedules a job of ``count`` until its placements committed."""
    await server.register_job(api_job(job_id, count=count))
    server.scheduling.set_enabled(True)
    try:
        await wait_until(lambda: server.scheduling.applier.committed_placements == count)
    finally:
        server.scheduling.set_enabled(False)


def test_a_server_that_never_led_counts_the_placements_of_the_cluster() -> None:
    async def main() -> None:
        leader = FakeServer()
        await leader.add_node()
        await _lead(leader, "web", 3)
        assert _gauge(leader) == 3
        follower = FakeServer()  # its state from the leader's, as a snapshot install gives it
        follower.store.restore(leader.store.dump())
        assert follower.scheduling.applier.committed_placements == 0  # it committed none itself
        assert _gauge(follower) == 3
        await _lead(follower, "api", 2)  # it is elected: the gauge goes on from the cluster's count
        assert _gauge(follower) == 5

    asyncio.run(main())
