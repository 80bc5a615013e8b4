"""Job registers that arrive while one is in Raft share one JOB_REGISTER_BATCH entry; each caller
still gets its own answer, and two registers of one job never share an entry."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from nomadd.server.group_commit import GroupCommit
from nomadd.server.state import store_evals, store_jobs
from nomadd.structs.errors import NoLeaderError
from nomadd.structs.eval import EvalStatus
from nomadd.structs.messages import MessageType
from tests.unit.server.fakes import FakeServer, api_job


def test_concurrent_registers_share_entries_but_never_with_their_own_job() -> None:
    async def main() -> None:
        server = FakeServer()
        jobs = [
            api_job("web", count=1),
            api_job("a"),
            api_job("web", count=2),
            api_job("b"),
            api_job("web", count=3),
        ]
        replies = await asyncio.gather(*(server.register_job(j) for j in jobs))
        assert server.raft.applied == [
            MessageType.JOB_REGISTER_BATCH,  # web v1, a, b
            MessageType.JOB_REGISTER,  # web v2 waited: its job was in that batch (one alone: plain)
            MessageType.JOB_REGISTER,  # web v3
        ]
        snap = server.store.snapshot()
        web = store_jobs.get_job(snap, "default", "web")
        assert web is not None and web.task_groups[0].count == 3 and web.version == 2
        assert replies[0].meta.index == replies[1].meta.index == replies[3].meta.index
        assert replies[0].meta.index < replies[2].meta.index < replies[4].meta.index
        for reply in replies:
            ev = store_evals.get_eval(snap, reply.eval_id)
            assert ev is not None and ev.status == EvalStatus.PENDING
            assert ev.job_modify_index == reply.job_modify_index
            assert ev.create_index == reply.eval_create_index == reply.meta.index
        assert [r.job_modify_index for r in (replies[0], replies[2], replies[4])] == sorted(
            {r.job_modify_index for r in (replies[0], replies[2], replies[4])}
        )

    asyncio.run(main())


def test_a_failed_entry_fails_every_request_in_it() -> None:
    class FailingContext:
        def __init__(self) -> None:
            self.calls = 0

        async def propose(self, msg_type: int, entry: object) -> tuple[object, int]:
            self.calls += 1
            await asyncio.sleep(0)
            raise NoLeaderError()

    async def main() -> None:
        raft = FailingContext()
        commit: GroupCommit[dict[str, Any]] = GroupCommit(raft, 1, 2, tuple, lambda r: [])  # type: ignore[arg-type]
        results: list[Any] = await asyncio.gather(
            *(commit.apply(k, {"k": k}) for k in "abc"), return_exceptions=True
        )
        assert all(isinstance(r, NoLeaderError) for r in results)
        assert raft.calls == 1  # one entry for all three
        with pytest.raises(NoLeaderError):
            await commit.apply("d", {})  # alone: a plain entry, same error
        assert raft.calls == 2

    asyncio.run(main())
