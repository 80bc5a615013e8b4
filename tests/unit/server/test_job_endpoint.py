"""Job.* RPCs on a fake-Raft server: one entry per register, versions, validation, stop/purge,
derived status and summaries, read-your-writes through the index."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from nomadd.server.state import store_evals, store_jobs
from nomadd.structs.errors import UnknownJobError, ValidationError
from nomadd.structs.eval import EvalStatus, EvalTrigger
from nomadd.structs.messages import MessageType
from nomadd.structs.requests.job import (
    JOB_ALLOCATIONS,
    JOB_GET,
    JOB_LIST,
    JOB_SUMMARY,
    JOB_VERSIONS,
    JobListRequest,
    JobSpecificRequest,
)
from tests.unit.server.fakes import FakeServer, api_job, wait_until


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_register_is_one_entry_with_job_and_eval() -> None:
    async def main() -> None:
        server = FakeServer()
        reply = await server.register_job(api_job())
        assert server.raft.applied == [MessageType.JOB_REGISTER]
        snap = server.store.snapshot()
        job = store_jobs.get_job(snap, "default", "web")
        ev = store_evals.get_eval(snap, reply.eval_id)
        assert job is not None and ev is not None
        assert reply.job_modify_index == job.job_modify_index == reply.meta.index
        assert ev.create_index == reply.eval_create_index == job.create_index
        assert ev.job_modify_index == job.job_modify_index
        assert ev.triggered_by == EvalTrigger.JOB_REGISTER and ev.status == EvalStatus.PENDING
        assert job.name == "web" and job.task_groups[0].restart_policy is not None  # canonicalized

    _run(main())


def test_identical_register_keeps_version_changed_spec_adds_one() -> None:
    async def main() -> None:
        server = FakeServer()
        first = await server.register_job(api_job(count=2))
        again = await server.register_job(api_job(count=2))
        assert again.job_modify_index == first.job_modify_index
        assert again.eval_id != first.eval_id  # an eval is still created, as Nomad does
        job = store_jobs.get_job(server.store.snapshot(), "default", "web")
        assert job is not None and job.version == 0
        changed = await server.register_job(api_job(count=5))
        assert changed.job_modify_index > first.job_modify_index
        reply = await server.rpc(JOB_VERSIONS, JobSpecificRequest(job_id="web"))
        assert [v.version for v in reply.versions] == [1, 0]
        assert [v.task_groups[0].count for v in reply.versions] == [5, 2]

    _run(main())


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda j: j.pop("Datacenters"), "Job.Datacenters"),
        (lambda j: j["TaskGroups"][0].update(Count=-1), "Job.TaskGroups[0].Count"),
        (
            lambda j: j["TaskGroups"][0]["Tasks"][0].update(Driver="docker2"),
            "Job.TaskGroups[0].Tasks[0].Driver",
        ),
        (
            lambda j: j["TaskGroups"][0]["Tasks"][0].update(KillTimeout="5s"),
            "TaskGroups[0].Tasks[0].KillTimeout",
        ),
        (lambda j: j["TaskGroups"][0].update(Count="three"), "TaskGroups[0].Count"),
        (lambda j: j.pop("ID"), "Job.ID"),
        (lambda j: j["TaskGroups"][0]["Tasks"][0].pop("Driver"), "Job.TaskGroups[0].Tasks[0].Driver"),
    ],
)
def test_invalid_specs_name_the_field(mutate: Any, field: str) -> None:
    async def main() -> None:
        server = FakeServer()
        job = api_job()
        mutate(job)
        with pytest.raises(ValidationError) as err:
            await server.register_job(job)
        assert field in str(err.value)
        assert err.value.code == 400
        assert server.raft.applied == []

    _run(main())


def test_unknown_api_keys_are_ignored() -> None:
    async def main() -> None:
        server = FakeServer()
        job = api_job(Affinities=None, SomethingNew={"x": 1})
        job["TaskGroups"][0]["Services"] = []
        reply = await server.register_job(job)
        assert reply.eval_id

    _run(main())


def test_stop_then_purge() -> None:
    async def main() -> None:
        server = FakeServer()
        await server.register_job(api_job())
        stop = await server.deregister_job("web")
        job = store_jobs.get_job(server.store.snapshot(), "default", "web")
        assert job is not None and job.stop and job.version == 1
        assert stop.job_modify_index == job.job_modify_index
        ev = store_evals.get_eval(server.store.snapshot(), stop.eval_id)
        assert ev is not None and ev.triggered_by == EvalTrigger.JOB_DEREGISTER
        await server.deregister_job("web", purge=True)
        assert store_jobs.get_job(server.store.snapshot(), "default", "web") is None
        with pytest.raises(UnknownJobError):
            await server.deregister_job("web")

    _run(main())


def test_status_pending_running_dead_and_summary() -> None:
    async def main() -> None:
        server = FakeServer()
        await server.add_node()
        await server.register_job(api_job(count=2))
        got = await server.rpc(JOB_GET, JobSpecificRequest(job_id="web"))
        assert got.job is not None and got.job.status == "pending"  # eval not processed yet
        server.scheduling.set_enabled(True)
        try:

            async def status() -> str:
                job = (await server.rpc(JOB_GET, JobSpecificRequest(job_id="web"))).job
                assert job is not None
                return str(job.status)

            await wait_until(lambda: bool(server.scheduling.applier.committed_placements == 2))
            assert await status() == "running"
            summary = (await server.rpc(JOB_SUMMARY, JobSpecificRequest(job_id="web"))).summary
            assert summary is not None and summary.summary["g"].starting == 2
            listed = (await server.rpc(JOB_LIST, JobListRequest())).jobs
            assert listed[0].id == "web" and listed[0].job_summary is not None
            assert listed[0].job_summary.summary["g"].starting == 2
            await server.deregister_job("web")
            deadline = asyncio.get_running_loop().time() + 5
            while await status() != "dead":
                assert asyncio.get_running_loop().time() < deadline, "job never became dead"
                await asyncio.sleep(0.01)
        finally:
            server.scheduling.set_enabled(False)

    _run(main())


def test_modify_index_moves_with_the_derived_status() -> None:
    """Nomad rewrites a job at a new ModifyIndex when its status changes; nomad-watch keeps the
    job it has unless the ModifyIndex grew, so a status change with the same index is never seen."""

    async def main() -> None:
        server = FakeServer()
        await server.add_node()
        reg = await server.register_job(api_job(count=1))

        async def read() -> tuple[str, int, int]:
            job = (await server.rpc(JOB_GET, JobSpecificRequest(job_id="web"))).job
            assert job is not None
            stub = (await server.rpc(JOB_LIST, JobListRequest())).jobs[0]
            return str(job.status), job.modify_index, stub.modify_index

        assert await read() == ("pending", reg.meta.index, reg.meta.index)
        server.scheduling.set_enabled(True)
        try:
            await wait_until(lambda: bool(server.scheduling.applier.committed_placements == 1))
            status, running_index, listed = await read()
            assert status == "running" and running_index > reg.meta.index and listed == running_index
            await server.deregister_job("web")
            deadline = asyncio.get_running_loop().time() + 5
            while (await read())[0] != "dead":
                assert asyncio.get_running_loop().time() < deadline, "job never became dead"
                await asyncio.sleep(0.01)
            _, dead_index, listed = await read()
            assert dead_index > running_index and listed == dead_index
        finally:
            server.scheduling.set_enabled(False)

    _run(main())


def test_allocations_query_at_register_index_sees_placements() -> None:
    async def main() -> None:
        server = FakeServer()
        await server.add_node()
        server.scheduling.set_enabled(True)
        try:
            reply = await server.register_job(api_job(count=3))
            req = JobSpecificRequest(job_id="web", min_query_index=reply.meta.index, max_query_time_s=5.0)
            got = await server.rpc(JOB_ALLOCATIONS, req)
            assert len(got.allocations) == 3
            assert got.meta.index > reply.meta.index
        finally:
            server.scheduling.set_enabled(False)

    _run(main())


def test_a_consul_service_registers_with_a_warning() -> None:
    async def main() -> None:
        server = FakeServer()
        job = api_job()
        group = job["TaskGroups"][0]
        group["Networks"] = [{"DynamicPorts": [{"Label": "http"}]}]
        group["Services"] = [{"Name": "web", "PortLabel": "http"}]
        reply = await server.register_job(job)
        assert "no Consul integration" in reply.warnings
        group["Services"] = [{"Name": "web", "PortLabel": "http", "Provider": "nomad"}]
        reply = await server.register_job(job)
        assert reply.warnings == ""

    _run(main())
