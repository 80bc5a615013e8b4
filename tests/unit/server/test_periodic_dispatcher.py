"""The leader's periodic dispatcher and the Periodic.Force / Job.Dispatch RPCs on an in-process
server (FakeServer: real FSM and endpoints, a fake Raft)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import re
import time
from typing import Any

import pytest

from nomadd.server.periodic_dispatch import PeriodicDispatcher, build_periodic
from nomadd.server.state import store_evals, store_periodic
from nomadd.structs.codec import from_api
from nomadd.structs.errors import ValidationError
from nomadd.structs.job import Job
from nomadd.structs.messages import MessageType
from nomadd.structs.requests.job import JobRegisterEntry
from nomadd.structs.requests.periodic import (
    JOB_DISPATCH,
    PERIODIC_FORCE,
    JobDispatchRequest,
    PeriodicForceRequest,
)
from tests.unit.server.fakes import FakeServer, api_job, wait_until

NS = 1_000_000_000


def periodic_api(job_id: str, spec: str, **periodic: Any) -> dict[str, Any]:
    job = api_job(job_id, count=1, job_type="batch")
    job["Periodic"] = {"Spec": spec, **periodic}
    return job


def children(fs: FakeServer, parent: str) -> list[str]:
    snap = fs.store.snapshot()
    job = next(j for j in snap.table("jobs").values() if j.id == parent)
    return sorted(c.id for c in store_periodic.children(snap, job))


def test_launches_on_schedule_and_a_new_leader_makes_up_one_missed_launch() -> None:
    async def body() -> None:
        fs = FakeServer()
        build_periodic(fs.ctx, fs.registry, fs.register_leader_component)
        reply = await fs.register_job(periodic_api("every", "* * * * * * *"))  # every second
        assert reply.eval_id == ""
        assert store_evals.evals_by_job(fs.store.snapshot(), "default", "every") == []
        d = next(c for c in fs.components if isinstance(c, PeriodicDispatcher))
        d.set_enabled(True)
        await wait_until(lambda: len(children(fs, "every")) >= 2, 5, "two launches")
        d.set_enabled(False)  # leadership lost
        held = children(fs, "every")
        await asyncio.sleep(2.5)  # launches missed meanwhile: the next leader makes up ONE
        d.set_enabled(True)
        await wait_until(lambda: len(children(fs, "every")) >= len(held) + 1, 5, "catch-up")
        d.set_enabled(False)
        seconds = [int(c.rsplit("-", 1)[1]) for c in children(fs, "every")]
        assert len(seconds) == len(set(seconds))
        missed = [b - a for a, b in itertools.pairwise(seconds) if b - a > 1]
        assert len(missed) == 1, seconds  # the gap while no one led is not filled launch by launch
        for child in children(fs, "every"):
            evs = store_evals.evals_by_job(fs.store.snapshot(), "default", child)
            assert [e.triggered_by for e in evs] == ["periodic-job"]
        await d.shutdown()

    asyncio.run(body())


def test_prohibit_overlap_skips_while_a_child_is_pending() -> None:
    async def body() -> None:
        fs = FakeServer()
        build_periodic(fs.ctx, fs.registry, fs.register_leader_component)
        await fs.register_job(periodic_api("solo", "* * * * * * *", ProhibitOverlap=True))
        d = next(c for c in fs.components if isinstance(c, PeriodicDispatcher))
        d.set_enabled(True)
        await wait_until(lambda: len(children(fs, "solo")) == 1, 5, "first launch")
        await asyncio.sleep(2.5)  # no scheduler runs: the child's evaluation stays pending
        assert len(children(fs, "solo")) == 1
        d.set_enabled(False)
        await d.shutdown()

    asyncio.run(body())


def test_force_and_dispatch_rpcs() -> None:
    async def body() -> None:
        fs = FakeServer()
        build_periodic(fs.ctx, fs.registry, fs.register_leader_component)
        await fs.register_job(periodic_api("nightly", "0 3 * * *"))
        forced = await fs.rpc(PERIODIC_FORCE, PeriodicForceRequest(job_id="nightly"))
        assert forced.eval_id and forced.eval_create_index == forced.meta.index
        assert len(children(fs, "nightly")) == 1
        await fs.register_job(api_job("plain", count=1, job_type="batch"))
        with pytest.raises(ValidationError, match="non-periodic"):
            await fs.rpc(PERIODIC_FORCE, PeriodicForceRequest(job_id="plain"))

        job = api_job("render", count=1, job_type="batch")
        job["ParameterizedJob"] = {"Payload": "optional", "MetaOptional": ["who"]}
        await fs.register_job(job)
        payload = base64.b64encode(b"data").decode()
        req = JobDispatchRequest(job_id="render", payload=payload, meta={"who": "me"}, idempotency_token="t1")
        first = await fs.rpc(JOB_DISPATCH, req)
        assert re.fullmatch(r"render/dispatch-\d+-[0-9a-f]{8}", first.dispatched_job_id)
        assert first.eval_id and first.job_create_index == first.meta.index
        again = await fs.rpc(JOB_DISPATCH, req)
        assert again.dispatched_job_id == first.dispatched_job_id and again.eval_id == ""
        other = await fs.rpc(JOB_DISPATCH, JobDispatchRequest(job_id="render", id_prefix_template="batch7"))
        assert other.dispatched_job_id.startswith("render/dispatch-batch7-")
        with pytest.raises(ValidationError, match="unpermitted"):
            await fs.rpc(JOB_DISPATCH, JobDispatchRequest(job_id="render", meta={"x": "1"}))
        with pytest.raises(ValidationError, match="not a parameterized job"):
            await fs.rpc(JOB_DISPATCH, JobDispatchRequest(job_id="nightly"))
        big = base64.b64encode(b"x" * (16 * 1024 + 1)).decode()
        with pytest.raises(ValidationError, match="maximum size"):
            await fs.rpc(JOB_DISPATCH, JobDispatchRequest(job_id="render", payload=big))
        # the follower's FSM, decoding every entry, ends with the same children
        follower = fs.follower()
        assert sorted(j.id for j in follower.store.snapshot().table("jobs").values()) == sorted(
            j.id for j in fs.store.snapshot().table("jobs").values()
        )

    asyncio.run(body())


def test_restore_launches_once_for_many_missed_launches() -> None:
    async def body() -> None:
        fs = FakeServer()
        build_periodic(fs.ctx, fs.registry, fs.register_leader_component)
        job = from_api(Job, periodic_api("every", "* * * * * * *"), path="Job").canonicalize()
        long_ago = time.time_ns() - 100 * NS  # 100 launches missed since the recorded one
        await fs.ctx.propose(MessageType.JOB_REGISTER, JobRegisterEntry(job=job, submit_time=long_ago))
        d = PeriodicDispatcher(fs.ctx)
        before = time.time()
        await d._restore()
        kids = children(fs, "every")
        assert len(kids) == 1, kids
        assert abs(int(kids[0].rsplit("-", 1)[1]) - before) <= 1  # launched at "now"
        row = store_periodic.get_launch(fs.store.snapshot(), "default", "every")
        assert row is not None and row.launch >= int(before) * NS
        await d._restore()  # a second leader right after: nothing missed any more
        assert children(fs, "every") == kids

    asyncio.run(body())


def test_tracks_jobs_from_the_changed_rows_exactly_as_a_full_rescan() -> None:
    """The dispatcher follows the jobs written since its last look (not a rescan of every job):
    a periodic job registered, changed, stopped, purged and registered again, and a job that
    stops being periodic, are tracked as a rescan of the whole table would track them."""

    def active(fs: FakeServer) -> dict[tuple[str, str], int]:
        jobs = fs.store.snapshot().table("jobs").values()
        return {(j.namespace, j.id): j.job_modify_index for j in jobs if j.is_periodic_active()}

    def tracked(d: PeriodicDispatcher) -> dict[tuple[str, str], int]:
        return {k: job.job_modify_index for k, (job, _) in d.tracked.items()}

    async def body() -> None:
        fs = FakeServer()
        build_periodic(fs.ctx, fs.registry, fs.register_leader_component)
        yearly = "0 0 1 1 *"  # never launches during the test
        await fs.register_job(periodic_api("p", yearly))
        await fs.register_job(api_job("plain", count=1))
        d = next(c for c in fs.components if isinstance(c, PeriodicDispatcher))
        d.set_enabled(True)

        async def settled(what: str) -> None:
            await wait_until(lambda: tracked(d) == active(fs), 5, what)

        await settled("first look")
        assert set(tracked(d)) == {("default", "p")}
        steps = [
            ("q registered", fs.register_job(periodic_api("q", yearly))),
            ("p changed", fs.register_job(periodic_api("p", "0 0 2 1 *"))),
            ("p stopped", fs.deregister_job("p")),
            ("q purged", fs.deregister_job("q", purge=True)),
            ("p registered again", fs.register_job(periodic_api("p", yearly))),
            ("plain made periodic", fs.register_job(periodic_api("plain", yearly))),
            ("plain not periodic again", fs.register_job(api_job("plain", count=1))),
        ]
        for what, write in steps:
            await write
            await settled(what)
        assert set(tracked(d)) == {("default", "p")}
        d.set_enabled(False)
        await d.shutdown()

    asyncio.run(body())
