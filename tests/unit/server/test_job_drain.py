"""Node drain: Node.UpdateDrain (node endpoint) → node-drain evals → allocations migrated → drain complete."""

from __future__ import annotations

import asyncio
from typing import Any

from nomadd.server.drainer import Drainer
from nomadd.server.state import store_allocs, store_evals, store_nodes
from nomadd.structs.alloc import AllocClientStatus, TaskState, TaskStatus
from nomadd.structs.eval import EvalTrigger
from nomadd.structs.node import DrainStatus, DrainStrategy, NodeEligibility
from nomadd.structs.requests.node import NODE_UPDATE_DRAIN, NodeUpdateDrainRequest, NodeWriteReply
from tests.unit.server.fakes import FakeServer, api_job, wait_until


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _drain(
    server: FakeServer, node_id: str, strategy: DrainStrategy | None, *, mark_eligible: bool = False
) -> NodeWriteReply:
    req = NodeUpdateDrainRequest(node_id=node_id, drain_strategy=strategy, mark_eligible=mark_eligible)
    return await server.rpc(NODE_UPDATE_DRAIN, req)


def _live_on(server: FakeServer, node_id: str) -> list[Any]:
    return [a for a in store_allocs.allocs_by_node(server.store.snapshot(), node_id) if not a.terminal()]


_RUNNING = {"t": TaskState(state=TaskStatus.RUNNING, started_at="2026-01-01T00:00:00Z")}


async def _report(server: FakeServer) -> None:
    """Play the clients: wanted allocations run (healthy: started long ago), stopped ones complete."""
    allocs = store_allocs.list_allocs(server.store.snapshot())
    run = [a for a in allocs if not a.server_terminal() and a.client_status == AllocClientStatus.PENDING]
    done = [a for a in allocs if a.server_terminal() and not a.client_terminal()]
    if run:
        await server.update_allocs(run, AllocClientStatus.RUNNING, task_states=_RUNNING)
    if done:
        await server.update_allocs(done, AllocClientStatus.COMPLETE)


def test_drain_migrates_max_parallel_at_a_time_then_completes_and_disable_restores_eligibility() -> None:
    async def main() -> None:
        server = FakeServer()
        n1 = await server.add_node()
        server.scheduling.set_enabled(True)
        drainer = next(c for c in server.components if isinstance(c, Drainer))
        try:
            group_migrate = {"MaxParallel": 2, "HealthCheck": "task_states", "MinHealthyTime": 0}
            job = api_job(count=5)
            job["TaskGroups"][0]["Migrate"] = group_migrate
            await server.register_job(job)
            await wait_until(lambda: len(_live_on(server, n1.id)) == 5)
            await _report(server)
            n2 = await server.add_node()
            reply = await _drain(server, n1.id, DrainStrategy(deadline=10**12))
            node = store_nodes.get(server.store.snapshot(), n1.id)
            assert node is not None and node.drain_strategy is not None and reply.meta.index > 0
            assert node.drain_strategy.started_at and node.drain_strategy.force_deadline
            assert node.scheduling_eligibility == NodeEligibility.INELIGIBLE
            assert await drainer.check() == []
            marked = [a for a in store_allocs.allocs_by_node(server.store.snapshot(), n1.id)]
            assert sum(a.desired_transition.migrate for a in marked) == 2  # max_parallel, no more
            assert await drainer.check() == []  # replacements not healthy yet: nothing more
            assert sum(a.desired_transition.migrate for a in _all(server)) == 2
            for _ in range(10):
                await wait_until(lambda: _scheduled(server), what="the scheduler acted on the marks")
                await _report(server)
                if await drainer.check():
                    break
            else:
                raise AssertionError("drain never completed")
            assert len(_live_on(server, n2.id)) == 5 and _live_on(server, n1.id) == []
            evals = store_evals.list_evals(server.store.snapshot())
            assert any(e.triggered_by == EvalTrigger.NODE_DRAIN and e.node_id == n1.id for e in evals)
            node = store_nodes.get(server.store.snapshot(), n1.id)
            assert node is not None and node.drain_strategy is None
            assert node.last_drain is not None and node.last_drain.status == DrainStatus.COMPLETE
            assert node.scheduling_eligibility == NodeEligibility.INELIGIBLE
            assert node.events[-1].message == "Node drain complete"
            await _drain(server, n1.id, None, mark_eligible=True)
            node = store_nodes.get(server.store.snapshot(), n1.id)
            assert node is not None and node.scheduling_eligibility == NodeEligibility.ELIGIBLE
        finally:
            server.scheduling.set_enabled(False)

    _run(main())


def _all(server: FakeServer) -> list[Any]:
    return store_allocs.list_allocs(server.store.snapshot())


def _scheduled(server: FakeServer) -> bool:
    """Every allocation marked to migrate was stopped by the scheduler."""
    return all(a.server_terminal() for a in _all(server) if a.desired_transition.migrate)


def test_drain_waits_while_allocs_run_unless_deadline_passed() -> None:
    async def main() -> None:
        server = FakeServer()
        n1 = await server.add_node()
        drainer = next(c for c in server.components if isinstance(c, Drainer))
        server.scheduling.set_enabled(True)
        try:
            await server.register_job(api_job(count=1))
            await wait_until(lambda: len(_live_on(server, n1.id)) == 1)
            server.scheduling.set_enabled(False)  # nobody migrates: the drain cannot finish
            await _drain(server, n1.id, DrainStrategy(deadline=10**12))
            assert await drainer.check() == []
            await _drain(server, n1.id, DrainStrategy(deadline=-1))
            assert await drainer.check() == [n1.id]  # forced: deadline already passed
        finally:
            server.scheduling.set_enabled(False)

    _run(main())


def test_system_allocations_are_drained_last_and_kept_when_ignored() -> None:
    async def main() -> None:
        server = FakeServer()
        n1 = await server.add_node()
        server.scheduling.set_enabled(True)
        drainer = next(c for c in server.components if isinstance(c, Drainer))
        try:
            job = api_job(count=1)
            job["TaskGroups"][0]["Migrate"] = {
                "MaxParallel": 1,
                "HealthCheck": "task_states",
                "MinHealthyTime": 0,
            }
            await server.register_job(job)
            await server.register_job(api_job("sys", count=1, job_type="system"))
            await wait_until(lambda: len(_live_on(server, n1.id)) == 2)
            await _report(server)
            await server.add_node()
            await _drain(server, n1.id, DrainStrategy(deadline=10**12))

            def marked() -> set[str]:
                return {a.job_id for a in _all(server) if a.desired_transition.migrate}

            assert await drainer.check() == []
            assert marked() == {"web"}  # the service first, the system job waits
            for _ in range(10):
                await wait_until(lambda: _scheduled(server), what="the scheduler acted on the marks")
                await _report(server)
                if await drainer.check():
                    break
            else:
                raise AssertionError("drain never completed")
            assert marked() == {"web", "sys"}
            assert _live_on(server, n1.id) == []

            # a drain that ignores system jobs leaves them running
            n3 = await server.add_node()
            await wait_until(lambda: len(_live_on(server, n3.id)) == 1, what="system alloc on n3")
            await _report(server)
            await _drain(server, n3.id, DrainStrategy(deadline=10**12, ignore_system_jobs=True))
            assert await drainer.check() == [n3.id]
            assert [a.job_id for a in _live_on(server, n3.id)] == ["sys"]
        finally:
            server.scheduling.set_enabled(False)

    _run(main())


def test_drain_completes_only_once_the_last_replacement_runs() -> None:
    """Nomad completes a drain when the last old allocation stopped; nomadd waits until its
    replacement's health is known too, so drain_on_shutdown exits with the work running elsewhere."""

    async def main() -> None:
        server = FakeServer()
        n1 = await server.add_node()
        drainer = next(c for c in server.components if isinstance(c, Drainer))
        server.scheduling.set_enabled(True)
        try:
            job = api_job(count=1)
            job["TaskGroups"][0]["Migrate"] = {
                "MaxParallel": 1,
                "HealthCheck": "task_states",
                "MinHealthyTime": 0,
            }
            await server.register_job(job)
            await wait_until(lambda: len(_live_on(server, n1.id)) == 1)
            await _report(server)
            n2 = await server.add_node()
            await _drain(server, n1.id, DrainStrategy(deadline=10**12))
            assert await drainer.check() == []  # marks the one allocation
            await wait_until(lambda: _scheduled(server) and len(_live_on(server, n2.id)) == 1, what="moved")
            done = [a for a in _all(server) if a.server_terminal() and not a.client_terminal()]
            await server.update_allocs(done, AllocClientStatus.COMPLETE)  # the old one stopped...
            assert await drainer.check() == []  # ...but its replacement is not running yet
            await _report(server)
            assert await drainer.check() == [n1.id]
        finally:
            server.scheduling.set_enabled(False)

    _run(main())


def test_the_leading_drainer_follows_the_nodes_that_start_and_stop_draining() -> None:
    """While leading, the drainer keeps the draining nodes from the nodes written since its last
    check (not a scan of every node): drains set one after another, and again on a node whose
    drain completed, are completed; a drain cancelled is no longer followed."""

    async def main() -> None:
        server = FakeServer()
        n1 = await server.add_node()
        n2 = await server.add_node()
        drainer = next(c for c in server.components if isinstance(c, Drainer))

        def draining() -> set[str]:
            nodes = server.store.snapshot().table(store_nodes.TABLE).values()
            return {n.id for n in nodes if n.drain_strategy is not None}

        async def drained(node_id: str) -> None:
            await _drain(server, node_id, DrainStrategy(deadline=10**12))
            await wait_until(lambda: not draining(), 5, f"drain of {node_id} completed")

        drainer.set_enabled(True)
        try:
            await drained(n1.id)
            await drained(n2.id)
            await drained(n1.id)
            drainer.set_enabled(False)
            await _drain(server, n2.id, DrainStrategy(deadline=10**12))
            drainer.set_enabled(True)  # a new term: the first check looks at every node
            await wait_until(lambda: not draining(), 5, "drain set while not leading completed")
            kept = drainer._draining
            assert kept is not None
            await wait_until(lambda: not kept.rows, 5, "the completed drain no longer followed")
        finally:
            drainer.set_enabled(False)
            await drainer.shutdown()

    _run(main())
