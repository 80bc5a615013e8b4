"""Eval/alloc/job GC: only terminal, old enough, and whose allocations are client-terminal."""

from __future__ import annotations

import asyncio
from typing import Any

from nomadd.server.job_gc import JobGC
from nomadd.server.state import store_allocs, store_evals, store_jobs
from nomadd.structs.alloc import AllocClientStatus
from nomadd.structs.messages import MessageType
from nomadd.structs.requests.eval import JobRef
from tests.unit.server.fakes import FakeServer, api_job, wait_until


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_gc_keeps_live_work_and_collects_finished() -> None:
    async def main() -> None:
        server = FakeServer()
        await server.add_node()
        gc = next(c for c in server.components if isinstance(c, JobGC))
        server.scheduling.set_enabled(True)
        try:
            reply = await server.register_job(api_job(count=2))
            await wait_until(lambda: len(store_allocs.list_allocs(server.store.snapshot())) == 2)
            await wait_until(lambda: store_evals.get_eval(server.store.snapshot(), reply.eval_id).terminal())
            # allocs still running: nothing to collect, whatever the age
            assert (await gc.collect(0.0, 0.0)).evals == ()
            assert (await gc.collect(3600.0, 3600.0)).evals == ()
            await server.deregister_job("web")
            await wait_until(
                lambda: all(a.server_terminal() for a in store_allocs.list_allocs(server.store.snapshot()))
            )
            allocs = store_allocs.list_allocs(server.store.snapshot())
            # stopped but the client has not confirmed: still kept
            assert (await gc.collect(0.0, 0.0)).jobs == ()
            await server.update_allocs(allocs, AllocClientStatus.COMPLETE)
            await wait_until(
                lambda: all(a.client_terminal() for a in store_allocs.list_allocs(server.store.snapshot()))
            )
            assert (await gc.collect(3600.0, 3600.0)).jobs == ()  # too young
            done = await gc.collect(0.0, 0.0)
            assert done.jobs == (JobRef(namespace="default", job_id="web"),)
            assert server.raft.applied[-1] == MessageType.EVAL_DELETE
            snap = server.store.snapshot()
            assert store_jobs.get_job(snap, "default", "web") is None
            assert store_allocs.list_allocs(snap) == [] and store_evals.list_evals(snap) == []
            assert store_allocs.allocs_by_node(snap, allocs[0].node_id) == []
            follower = server.follower().store.snapshot()  # the typed entries replay the same
            for table in (store_allocs.TABLE, store_evals.TABLE, store_jobs.TABLE):
                assert dict(follower.table(table)) == dict(snap.table(table)), table
        finally:
            server.scheduling.set_enabled(False)

    _run(main())


def test_eval_gc_takes_old_terminal_evals_of_a_live_job_whose_placements_are_done() -> None:
    async def main() -> None:
        server = FakeServer()
        await server.add_node()
        gc = next(c for c in server.components if isinstance(c, JobGC))
        server.scheduling.set_enabled(True)
        try:
            first = await server.register_job(api_job(count=1))
            again = await server.register_job(api_job(count=1))  # same job: places nothing

            def done(eval_id: str) -> bool:
                ev = store_evals.get_eval(server.store.snapshot(), eval_id)
                return ev is not None and ev.terminal()

            await wait_until(lambda: done(first.eval_id) and done(again.eval_id))
            assert (await gc.collect(3600.0, 0.0)).evals == ()  # too young
            entry = await gc.collect(0.0, 0.0)  # the first eval's allocation still runs
            assert entry.evals == (again.eval_id,) and entry.jobs == () and entry.allocs == ()
        finally:
            server.scheduling.set_enabled(False)

    _run(main())
