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
from tests.unit.server.test_jobs_fakes import FakeServer, api_job, wait_until


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_register_is_one_entry_with_job_and_eval() -> None:
    async def main() -> None:
        server = FakeServer()
        reply = await server.rpc("Job.Register", {"Job": api_job()})
        assert server.raft.applied == [MessageType.JOB_REGISTER]
        snap = server.store.snapshot()
        job = store_jobs.get_job(snap, "default", "web")
        ev = store_evals.get_eval(snap, reply["EvalID"])
        assert job is not None and ev is not None
        assert reply["JobModifyIndex"] == job.job_modify_index == reply["Index"]
        assert ev.create_index == reply["EvalCreateIndex"] == job.create_index
        assert ev.job_modify_index == job.job_modify_index
        assert ev.triggered_by == EvalTrigger.JOB_REGISTER and ev.status == EvalStatus.PENDING
        assert job.name == "web" and job.task_groups[0].restart_policy is not None  # canonicalized

    _run(main())


def test_identical_register_keeps_version_changed_spec_adds_one() -> None:
    async def main() -> None:
        server = FakeServer()
        first = await server.rpc("Job.Register", {"Job": api_job(count=2)})
        again = await server.rpc("Job.Register", {"Job": api_job(count=2)})
        assert again["JobModifyIndex"] == first["JobModifyIndex"]
        assert again["EvalID"] != first["EvalID"]  # an eval is still created, as Nomad does
        job = store_jobs.get_job(server.store.snapshot(), "default", "web")
        assert job is not None and job.version == 0
        changed = await server.rpc("Job.Register", {"Job": api_job(count=5)})
        assert changed["JobModifyIndex"] > first["JobModifyIndex"]
        reply = await server.rpc("Job.GetJobVersions", {"JobID": "web"})
        versions = reply["Value"]["Versions"]
        assert [v["Version"] for v in versions] == [1, 0]
        assert [v["TaskGroups"][0]["Count"] for v in versions] == [5, 2]

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
            await server.rpc("Job.Register", {"Job": job})
        assert field in str(err.value)
        assert err.value.code == 400
        assert server.raft.applied == []

    _run(main())


def test_unknown_api_keys_are_ignored() -> None:
    async def main() -> None:
        server = FakeServer()
        job = api_job(Affinities=None, SomethingNew={"x": 1})
        job["TaskGroups"][0]["Services"] = []
        reply = await server.rpc("Job.Register", {"Job": job})
        assert reply["EvalID"]

    _run(main())


def test_stop_then_purge() -> None:
    async def main() -> None:
        server = FakeServer()
        await server.rpc("Job.Register", {"Job": api_job()})
        stop = await server.rpc("Job.Deregister", {"JobID": "web"})
        job = store_jobs.get_job(server.store.snapshot(), "default", "web")
        assert job is not None and job.stop and job.version == 1
        assert stop["JobModifyIndex"] == job.job_modify_index
        ev = store_evals.get_eval(server.store.snapshot(), stop["EvalID"])
        assert ev is not None and ev.triggered_by == EvalTrigger.JOB_DEREGISTER
        await server.rpc("Job.Deregister", {"JobID": "web", "Purge": True})
        assert store_jobs.get_job(server.store.snapshot(), "default", "web") is None
        with pytest.raises(UnknownJobError):
            await server.rpc("Job.Deregister", {"JobID": "web"})

    _run(main())


def test_status_pending_running_dead_and_summary() -> None:
    async def main() -> None:
        server = FakeServer()
        await server.add_node()
        await server.rpc("Job.Register", {"Job": api_job(count=2)})
        got = await server.rpc("Job.GetJob", {"JobID": "web"})
        assert got["Value"]["Status"] == "pending"  # eval not processed yet
        server.scheduling.set_enabled(True)
        try:

            async def status() -> str:
                return str((await server.rpc("Job.GetJob", {"JobID": "web"}))["Value"]["Status"])

            await wait_until(lambda: bool(server.scheduling.applier.committed_placements == 2))
            assert await status() == "running"
            summary = (await server.rpc("Job.Summary", {"JobID": "web"}))["Value"]
            assert summary["Summary"]["g"]["Starting"] == 2
            listed = (await server.rpc("Job.List", {}))["Value"]
            assert listed[0]["ID"] == "web" and listed[0]["JobSummary"]["Summary"]["g"]["Starting"] == 2
            await server.rpc("Job.Deregister", {"JobID": "web"})
            deadline = asyncio.get_running_loop().time() + 5
            while await status() != "dead":
                assert asyncio.get_running_loop().time() < deadline, "job never became dead"
                await asyncio.sleep(0.01)
        finally:
            server.scheduling.set_enabled(False)

    _run(main())


def test_allocations_query_at_register_index_sees_placements() -> None:
    async def main() -> None:
        server = FakeServer()
        await server.add_node()
        server.scheduling.set_enabled(True)
        try:
            reply = await server.rpc("Job.Register", {"Job": api_job(count=3)})
            got = await server.rpc(
                "Job.Allocations", {"JobID": "web", "MinQueryIndex": reply["Index"], "MaxQueryTime": 5.0}
            )
            assert len(got["Value"]) == 3
            assert got["Index"] > reply["Index"]
        finally:
            server.scheduling.set_enabled(False)

    _run(main())
