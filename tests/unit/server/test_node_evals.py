"""NodeEvals: the evals a node transition makes, on a fake-Raft server's real store and FSM."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from nomadd.server.node_evals import NodeEvals
from nomadd.structs.eval import Evaluation
from nomadd.structs.job import JobType
from nomadd.structs.node import NodeStatus
from tests.unit.server.fakes import FakeServer, api_job, wait_until


def test_a_transition_evaluates_the_system_jobs_of_now_as_a_full_scan_would() -> None:
    """NodeEvals keeps the live system jobs from the jobs written since the last node change
    (not a scan of every job): registered, stopped, purged, re-registered and retyped system
    jobs get a node-update eval exactly when a scan of the whole table would give them one."""

    async def body() -> None:
        fs = FakeServer()
        written: list[list[Evaluation]] = []

        async def write(evals: Sequence[Evaluation]) -> int:
            written.append(list(evals))
            return 0

        ne = NodeEvals(fs.store, write)
        await fs.register_job(api_job("sys1", job_type="system", count=1))
        node = await fs.add_node()
        ne.set_enabled(True)

        def live_system() -> list[str]:
            jobs = fs.store.snapshot().table("jobs").values()
            return sorted(j.id for j in jobs if j.type in (JobType.SYSTEM, JobType.SYSBATCH) and not j.stop)

        async def transition(status: NodeStatus, expect: list[str]) -> None:
            await fs.set_node_status(node.id, status)
            assert ne.on_nodes_changed(fs.store.latest_index(), [node.id]) == (status == NodeStatus.READY)
            await wait_until(lambda: bool(written), 5, f"evals for {status}")
            assert sorted(e.job_id for e in written.pop()) == expect == live_system()

        await transition(NodeStatus.DOWN, ["sys1"])
        await fs.register_job(api_job("sys2", job_type="sysbatch", count=1))
        await fs.register_job(api_job("web"))
        await transition(NodeStatus.READY, ["sys1", "sys2"])
        await fs.deregister_job("sys1")  # stopped, still stored
        await transition(NodeStatus.DOWN, ["sys2"])
        await fs.deregister_job("sys2", purge=True)
        await fs.register_job(api_job("sys1", job_type="system", count=1))
        await fs.register_job(api_job("sys3", job_type="system", count=1))
        await transition(NodeStatus.READY, ["sys1", "sys3"])
        await fs.register_job(api_job("sys3", job_type="batch"))
        await transition(NodeStatus.DOWN, ["sys1"])
        ne.set_enabled(False)
        await asyncio.sleep(0)

    asyncio.run(body())
