"""Job.Plan (the scheduler's dry run), EnforceIndex on register, version diffs, revert, scale and
evaluate on a fake-Raft server with the real scheduler."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from nomadd.server.job_versions import JobVersionsEndpoint
from nomadd.server.state import store_allocs, store_evals, store_jobs
from nomadd.structs.alloc import AllocClientStatus
from nomadd.structs.codec import from_api
from nomadd.structs.errors import UnknownJobError, ValidationError
from nomadd.structs.eval import EvalStatus
from nomadd.structs.job import Job
from nomadd.structs.requests.job import JOB_REGISTER, JobRegisterRequest, JobSpecificRequest
from nomadd.structs.requests.job_plan import (
    JOB_EVALUATE,
    JOB_PLAN,
    JOB_REVERT,
    JOB_SCALE,
    JOB_SCALE_STATUS,
    JOB_STABLE,
    JOB_VERSION_DIFFS,
    SCALING_GET_POLICY,
    SCALING_LIST_POLICIES,
    JobEvaluateRequest,
    JobPlanReply,
    JobPlanRequest,
    JobRevertRequest,
    JobScaleRequest,
    JobStableRequest,
    ScalingPolicyListRequest,
    ScalingPolicyRequest,
)
from tests.unit.server.fakes import FakeServer, api_job, wait_until


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def _live(server: FakeServer, job_id: str = "web") -> list[Any]:
    allocs = store_allocs.allocs_by_job(server.store.snapshot(), "default", job_id)
    return [a for a in allocs if not a.terminal()]


def _settled(server: FakeServer) -> bool:
    evals = store_evals.list_evals(server.store.snapshot())
    return all(e.status != EvalStatus.PENDING for e in evals)


@asynccontextmanager
async def _cluster(nodes: int = 2) -> AsyncIterator[FakeServer]:
    server = FakeServer()
    JobVersionsEndpoint(server.ctx, server.jobs).register(server.registry)
    for _ in range(nodes):
        await server.add_node()
    server.scheduling.set_enabled(True)
    try:
        yield server
    finally:
        server.scheduling.set_enabled(False)


async def _plan(server: FakeServer, api: dict[str, Any]) -> JobPlanReply:
    return await server.rpc(JOB_PLAN, JobPlanRequest(job=from_api(Job, api, path="Job"), diff=True))


async def _registered(server: FakeServer, api: dict[str, Any]) -> int:
    reply = await server.register_job(api)
    await wait_until(lambda: _settled(server), what="evals processed")
    return reply.job_modify_index


def _updates(reply: JobPlanReply, group: str = "g") -> dict[str, int]:
    assert isinstance(reply.annotations, dict)
    counts: dict[str, int] = reply.annotations["DesiredTGUpdates"][group]
    return {k: v for k, v in counts.items() if v}


def _task(reply: JobPlanReply) -> dict[str, Any]:
    assert isinstance(reply.diff, dict)
    task: dict[str, Any] = reply.diff["TaskGroups"][0]["Tasks"][0]
    return task


def test_plan_of_a_new_job_places_and_commits_nothing() -> None:
    async def main() -> None:
        async with _cluster() as server:
            entries = len(server.raft.applied)
            reply = await _plan(server, api_job(count=3))
            assert len(server.raft.applied) == entries  # a dry run: nothing reached Raft
            assert store_jobs.get_job(server.store.snapshot(), "default", "web") is None
            assert _updates(reply) == {"Place": 3}
            assert isinstance(reply.diff, dict) and reply.diff["Type"] == "Added"
            assert reply.job_modify_index == 0 and not reply.failed_tg_allocs
            assert _task(reply)["Annotations"] == ["forces create"]

    _run(main())


def test_plan_counts_changes_against_running_allocations() -> None:
    async def main() -> None:
        async with _cluster() as server:
            index = await _registered(server, api_job(count=3))
            await wait_until(lambda: len(_live(server)) == 3)
            same = await _plan(server, api_job(count=3))
            assert isinstance(same.diff, dict) and same.diff["Type"] == "None"
            assert _updates(same) == {"Ignore": 3} and same.job_modify_index == index

            more = await _plan(server, api_job(count=5))
            # a new job version: the running three are updated in place (Nomad's own example:
            # "(1 create, 1 in-place update)" for a count raised from 1 to 2)
            assert _updates(more) == {"InPlaceUpdate": 3, "Place": 2}
            assert isinstance(more.diff, dict)
            count = more.diff["TaskGroups"][0]["Fields"][0]
            assert (count["Name"], count["Old"], count["New"]) == ("Count", "3", "5")
            assert count["Annotations"] == ["forces create"]
            assert more.diff["TaskGroups"][0]["Updates"] == {"create": 2, "in-place update": 3}

            fewer = await _plan(server, api_job(count=1))
            assert _updates(fewer) == {"InPlaceUpdate": 1, "Stop": 2}

            changed = api_job(count=3)
            changed["TaskGroups"][0]["Tasks"][0]["Config"]["args"] = ["2000"]
            destructive = await _plan(server, changed)
            assert _updates(destructive) == {"DestructiveUpdate": 3}
            assert _task(destructive)["Annotations"] == ["forces create/destroy update"]
            config = _task(destructive)["Objects"][0]
            assert config["Name"] == "Config" and config["Fields"][0]["Name"] == "args[0]"

            inplace = api_job(count=3)
            inplace["TaskGroups"][0]["RestartPolicy"] = {"Attempts": 5, "Mode": "delay"}
            soft = await _plan(server, inplace)
            assert _updates(soft) == {"InPlaceUpdate": 3}
            assert (
                isinstance(soft.diff, dict)
                and soft.diff["TaskGroups"][0]["Objects"][0]["Name"] == "RestartPolicy"
            )
            assert len(_live(server)) == 3  # still the same three, untouched

    _run(main())


def test_plan_reports_what_cannot_be_placed() -> None:
    async def main() -> None:
        async with _cluster(nodes=1) as server:
            big = api_job(count=2)
            big["TaskGroups"][0]["Tasks"][0]["Resources"]["MemoryMB"] = 6000
            reply = await _plan(server, big)
            assert "g" in reply.failed_tg_allocs
            assert _updates(reply)["Place"] == 2

    _run(main())


def test_enforce_index_refuses_a_stale_register() -> None:
    async def main() -> None:
        async with _cluster() as server:
            job = from_api(Job, api_job(count=1), path="Job")

            def register(index: int, **kw: Any) -> Any:
                req = JobRegisterRequest(job=job, enforce_index=True, job_modify_index=index, **kw)
                return server.rpc(JOB_REGISTER, req)

            with pytest.raises(ValidationError, match="Enforcing job modify index 7: job does not exist"):
                await register(7)
            first = await register(0)
            with pytest.raises(ValidationError, match="Enforcing job modify index 0: job already exists"):
                await register(0)
            job = from_api(Job, api_job(count=2), path="Job")
            stale = first.job_modify_index - 1
            with pytest.raises(
                ValidationError,
                match=f"Enforcing job modify index {stale}: job exists with conflicting job modify "
                f"index: {first.job_modify_index}",
            ):
                await register(stale)
            stored = store_jobs.get_job(server.store.snapshot(), "default", "web")
            assert stored is not None and stored.task_groups[0].count == 1  # refused: not written
            second = await register(first.job_modify_index)
            assert second.job_modify_index > first.job_modify_index

    _run(main())


def test_versions_with_diffs_revert_scale_and_evaluate() -> None:
    async def main() -> None:
        async with _cluster() as server:
            await _registered(server, api_job(count=1))
            edited = copy.deepcopy(api_job(count=1))
            edited["Meta"] = {"owner": "ops"}
            await _registered(server, edited)
            versions = await server.rpc(JOB_VERSION_DIFFS, JobSpecificRequest(job_id="web"))
            assert [v.version for v in versions.versions] == [1, 0]
            assert isinstance(versions.diffs, list) and len(versions.diffs) == 1
            assert versions.diffs[0]["Fields"][0]["Name"] == "Meta[owner]"

            with pytest.raises(ValidationError, match="can't revert to current version"):
                await server.rpc(JOB_REVERT, JobRevertRequest(job_id="web", job_version=1))
            with pytest.raises(ValidationError, match="Current job has version 1; enforcing version 0"):
                await server.rpc(
                    JOB_REVERT, JobRevertRequest(job_id="web", job_version=0, enforce_prior_version=0)
                )
            with pytest.raises(UnknownJobError, match="at version 9 not found"):
                await server.rpc(JOB_REVERT, JobRevertRequest(job_id="web", job_version=9))
            await server.rpc(
                JOB_REVERT, JobRevertRequest(job_id="web", job_version=0, enforce_prior_version=1)
            )
            job = store_jobs.get_job(server.store.snapshot(), "default", "web")
            assert job is not None and job.version == 2 and not job.meta

            scaled = await server.rpc(JOB_SCALE, JobScaleRequest(job_id="web", group="g", count=3))
            assert scaled.eval_id
            await wait_until(lambda: len(_live(server)) == 3, what="scaled to 3")
            status = await server.rpc(JOB_SCALE_STATUS, JobSpecificRequest(job_id="web"))
            assert isinstance(status.status, dict) and status.status["TaskGroups"]["g"]["Desired"] == 3
            with pytest.raises(ValidationError, match="does not exist in job"):
                await server.rpc(JOB_SCALE, JobScaleRequest(job_id="web", group="nope", count=1))
            with pytest.raises(ValidationError, match="can't be negative"):
                await server.rpc(JOB_SCALE, JobScaleRequest(job_id="web", group="g", count=-1))

            ev = await server.rpc(JOB_EVALUATE, JobEvaluateRequest(job_id="web"))
            stored_ev = store_evals.get_eval(server.store.snapshot(), ev.eval_id)
            assert stored_ev is not None
            with pytest.raises(UnknownJobError):
                await server.rpc(JOB_EVALUATE, JobEvaluateRequest(job_id="nope"))

            # a periodic or parameterized job is a template: only its children are evaluated
            periodic = api_job("cron", job_type="batch", Periodic={"Enabled": True, "Spec": "0 3 * * *"})
            parameterized = api_job("param", job_type="batch", ParameterizedJob={"Payload": "optional"})
            for job_id, body, what in (
                ("cron", periodic, "periodic"),
                ("param", parameterized, "parameterized"),
            ):
                await server.register_job(body)
                with pytest.raises(ValidationError, match=f"can't evaluate {what} job"):
                    await server.rpc(JOB_EVALUATE, JobEvaluateRequest(job_id=job_id))

    _run(main())


def test_stable_versions_and_scaling_events_are_replicated() -> None:
    async def main() -> None:
        async with _cluster() as server:
            await _registered(server, api_job(count=1))
            await _registered(server, api_job(count=2))
            await server.rpc(JOB_STABLE, JobStableRequest(job_id="web", job_version=0, stable=True))
            versions = store_jobs.job_versions(server.store.snapshot(), "default", "web")
            assert [(v.version, v.stable) for v in versions] == [(1, False), (0, True)]
            await server.rpc(JOB_STABLE, JobStableRequest(job_id="web", job_version=1, stable=True))
            job = store_jobs.get_job(server.store.snapshot(), "default", "web")
            assert job is not None and job.stable
            with pytest.raises(UnknownJobError, match="at version 7 not found"):
                await server.rpc(JOB_STABLE, JobStableRequest(job_id="web", job_version=7))

            await server.rpc(JOB_SCALE, JobScaleRequest(job_id="web", group="g", count=3, message="up"))
            await server.rpc(
                JOB_SCALE, JobScaleRequest(job_id="web", group="g", error=True, message="metrics down")
            )
            status = await server.rpc(JOB_SCALE_STATUS, JobSpecificRequest(job_id="web"))
            assert isinstance(status.status, dict)
            events = status.status["TaskGroups"]["g"]["Events"]
            assert [(e["Message"], e["Count"], e["PreviousCount"], e["Error"]) for e in events] == [
                ("metrics down", None, 3, True),
                ("up", 3, 2, False),
            ]
            assert events[1]["EvalID"]
            # a follower that applied the same entries holds the same rows
            follower = server.follower().store.snapshot()
            assert store_jobs.job_versions(follower, "default", "web") == store_jobs.job_versions(
                server.store.snapshot(), "default", "web"
            )

    _run(main())


def test_group_scaling_blocks_are_policies_and_bound_job_scale() -> None:
    async def main() -> None:
        async with _cluster() as server:
            bad = api_job(count=9)
            bad["TaskGroups"][0]["Scaling"] = {"Min": 1, "Max": 5}
            with pytest.raises(ValidationError, match=r"Scaling\.Max: task group count \(9\) is greater"):
                await server.register_job(bad)
            spec = api_job(count=2)
            spec["TaskGroups"][0]["Scaling"] = {"Min": 1, "Max": 5, "Policy": {"cooldown": "1m"}}
            await _registered(server, spec)
            listed = await server.rpc(SCALING_LIST_POLICIES, ScalingPolicyListRequest())
            (policy,) = listed.policies
            assert (policy.min, policy.max, policy.enabled) == (1, 5, True)
            assert policy.target == {"Namespace": "default", "Job": "web", "Group": "g"}
            assert policy.policy == {"cooldown": "1m"}
            got = await server.rpc(SCALING_GET_POLICY, ScalingPolicyRequest(policy_id=policy.id))
            assert got.policy == policy
            none = await server.rpc(SCALING_LIST_POLICIES, ScalingPolicyListRequest(job="other"))
            assert none.policies == ()
            with pytest.raises(ValidationError, match="greater than scaling policy maximum: 6 > 5"):
                await server.rpc(JOB_SCALE, JobScaleRequest(job_id="web", group="g", count=6))
            with pytest.raises(ValidationError, match="less than scaling policy minimum: 0 < 1"):
                await server.rpc(JOB_SCALE, JobScaleRequest(job_id="web", group="g", count=0))
            await server.rpc(JOB_SCALE, JobScaleRequest(job_id="web", group="g", count=5))
            after = await server.rpc(SCALING_GET_POLICY, ScalingPolicyRequest(policy_id=policy.id))
            assert after.policy is not None and after.policy.id == policy.id  # stable across versions

    _run(main())


def test_evaluate_with_force_reschedule_replaces_failed_allocations_now() -> None:
    async def main() -> None:
        async with _cluster() as server:
            spec = api_job(count=1)
            spec["TaskGroups"][0]["ReschedulePolicy"] = {"Attempts": 0, "Unlimited": False}
            await _registered(server, spec)
            await wait_until(lambda: len(_live(server)) == 1)
            (alloc,) = _live(server)
            await server.update_allocs([alloc], AllocClientStatus.FAILED)
            await wait_until(lambda: _settled(server), what="evals processed")
            assert _live(server) == []  # no reschedule attempts: left failed

            await server.rpc(JOB_EVALUATE, JobEvaluateRequest(job_id="web"))
            await wait_until(lambda: _settled(server), what="evals processed")
            assert _live(server) == []  # a plain evaluation changes nothing

            await server.rpc(JOB_EVALUATE, JobEvaluateRequest(job_id="web", force_reschedule=True))
            await wait_until(lambda: len(_live(server)) == 1, what="forced replacement")
            (replacement,) = _live(server)
            assert replacement.previous_allocation == alloc.id

    _run(main())


def test_concurrent_registers_with_the_same_index_let_exactly_one_through() -> None:
    async def main() -> None:
        async with _cluster() as server:
            first = await server.register_job(api_job(count=1))

            async def register(count: int) -> Any:
                job = from_api(Job, api_job(count=count), path="Job")
                req = JobRegisterRequest(job=job, enforce_index=True, job_modify_index=first.job_modify_index)
                return await server.rpc(JOB_REGISTER, req)

            results = await asyncio.gather(*(register(n) for n in (2, 3, 4, 5)), return_exceptions=True)
            passed = [r for r in results if not isinstance(r, BaseException)]
            refused = [r for r in results if isinstance(r, ValidationError)]
            assert len(passed) == 1 and len(refused) == 3, results
            assert all("conflicting job modify index" in str(r) for r in refused)
            stored = store_jobs.get_job(server.store.snapshot(), "default", "web")
            assert stored is not None and stored.version == 1
            assert stored.job_modify_index == passed[0].job_modify_index

    _run(main())


def test_scale_racing_a_register_never_loses_the_register() -> None:
    async def main() -> None:
        async with _cluster() as server:
            await server.register_job(api_job(count=1))
            edited = api_job(count=1)
            edited["Meta"] = {"owner": "ops"}
            scale = server.rpc(JOB_SCALE, JobScaleRequest(job_id="web", group="g", count=3))
            results = await asyncio.gather(server.register_job(edited), scale, return_exceptions=True)
            job = store_jobs.get_job(server.store.snapshot(), "default", "web")
            assert job is not None and job.meta == {"owner": "ops"}, results  # the register is kept
            scaled = not isinstance(results[1], BaseException)
            assert job.task_groups[0].count == (3 if scaled else 1)

    _run(main())
