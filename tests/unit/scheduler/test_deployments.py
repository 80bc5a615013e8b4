"""The service scheduler under an ``update {}`` strategy: deployments, max_parallel, canaries."""

from __future__ import annotations

import dataclasses

from nomadd.scheduler.context import ALLOC_NOT_NEEDED, ALLOC_UPDATING
from nomadd.scheduler.testing import Harness, mock_job
from nomadd.structs.alloc import AllocClientStatus
from nomadd.structs.deployment import DESC_NEWER_JOB, DeploymentStatus
from nomadd.structs.eval import EvalTrigger
from nomadd.structs.job import Job
from nomadd.structs.policy import UpdateStrategy
from nomadd.structs.timeutil import NS_PER_S


def rolling_job(count: int = 6, **update: object) -> Job:
    strategy = UpdateStrategy(max_parallel=2, min_healthy_time=2 * NS_PER_S, **update)  # type: ignore[arg-type]
    job = mock_job(count=count)
    return dataclasses.replace(job, task_groups=(dataclasses.replace(job.task_groups[0], update=strategy),))


def new_version(h: Harness, marker: str) -> Job:
    job = h.job("web")
    tg = job.task_groups[0]
    task = dataclasses.replace(tg.tasks[0], env={"V": marker})
    return h.upsert_job(dataclasses.replace(job, task_groups=(dataclasses.replace(tg, tasks=(task,)),)))


def evaluate(h: Harness, job: Job) -> None:
    h.process(h.make_eval(job, EvalTrigger.DEPLOYMENT_WATCHER))


def healthy_all(h: Harness) -> None:
    for a in h.live_allocs("web"):
        if a.deployment_id and (a.deployment_status is None or a.deployment_status.healthy is None):
            h.set_health(a.id, True)


def setup(count: int = 6, **update: object) -> Harness:
    h = Harness()
    for _ in range(3):
        h.add_node()
    h.run(rolling_job(count, **update))
    healthy_all(h)
    return h


def test_first_version_gets_a_deployment_for_all_its_placements() -> None:
    h = Harness()
    h.add_node()
    h.run(rolling_job(4))
    (d,) = h.deployments.values()
    assert d.job_version == 0
    assert d.status == DeploymentStatus.RUNNING
    assert d.task_groups["web"].desired_total == 4
    live = h.live_allocs("web")
    assert len(live) == 4  # a first placement is not held back by max_parallel
    assert all(a.deployment_id == d.id for a in live)


def test_destructive_update_goes_max_parallel_at_a_time() -> None:
    h = setup()
    job = new_version(h, "1")
    evaluate(h, job)
    d = h.latest_deployment("default", "web")
    assert d is not None and d.job_version == job.version
    new = [a for a in h.live_allocs("web") if a.job_version == job.version]
    old = [a for a in h.live_allocs("web") if a.job_version != job.version]
    assert len(new) == 2 and len(old) == 4
    assert all(a.deployment_id == d.id for a in new)
    # nothing healthy yet: another evaluation replaces nothing more
    evaluate(h, job)
    assert len([a for a in h.live_allocs("web") if a.job_version == job.version]) == 2
    # one turns healthy: exactly one more goes
    h.set_health(new[0].id, True)
    evaluate(h, job)
    assert len([a for a in h.live_allocs("web") if a.job_version == job.version]) == 3
    for _ in range(5):
        healthy_all(h)
        evaluate(h, job)
    live = h.live_allocs("web")
    assert len(live) == 6 and all(a.job_version == job.version for a in live)
    assert sorted(a.name for a in live) == [f"web.web[{i}]" for i in range(6)]


def test_newer_version_cancels_the_running_deployment() -> None:
    h = setup()
    first = new_version(h, "1")
    evaluate(h, first)
    d1 = h.latest_deployment("default", "web")
    second = new_version(h, "2")
    evaluate(h, second)
    assert d1 is not None
    assert h.deployments[d1.id].status == DeploymentStatus.CANCELLED
    assert h.deployments[d1.id].status_description == DESC_NEWER_JOB
    d2 = h.latest_deployment("default", "web")
    assert d2 is not None and d2.id != d1.id and d2.job_version == second.version


def test_failed_or_paused_deployment_replaces_no_more() -> None:
    for status in (DeploymentStatus.FAILED, DeploymentStatus.PAUSED):
        h = setup()
        job = new_version(h, "1")
        evaluate(h, job)
        d = h.latest_deployment("default", "web")
        assert d is not None
        h.update_deployment(d.id, status=status)
        healthy_all(h)
        evaluate(h, job)
        assert len([a for a in h.live_allocs("web") if a.job_version == job.version]) == 2, status


def test_canary_runs_beside_the_old_version_until_promoted() -> None:
    h = setup(3, canary=1)
    job = new_version(h, "1")
    evaluate(h, job)
    live = h.live_allocs("web")
    canaries = [a for a in live if a.deployment_status is not None and a.deployment_status.canary]
    assert len(live) == 4 and len(canaries) == 1  # 3 old + 1 canary
    assert canaries[0].job_version == job.version
    d = h.latest_deployment("default", "web")
    assert d is not None and d.task_groups["web"].desired_canaries == 1
    assert d.requires_promotion()
    h.set_health(canaries[0].id, True)
    evaluate(h, job)
    assert len(h.live_allocs("web")) == 4  # healthy but not promoted: nothing more
    groups = {"web": dataclasses.replace(d.task_groups["web"], promoted=True)}
    h.update_deployment(d.id, task_groups=groups)
    evaluate(h, job)
    stops = {a.desired_description for a in h.all_allocs("web") if a.terminal()}
    assert ALLOC_NOT_NEEDED in stops and ALLOC_UPDATING in stops
    for _ in range(4):
        healthy_all(h)
        evaluate(h, job)
    live = h.live_allocs("web")
    assert len(live) == 3 and all(a.job_version == job.version for a in live)
    assert sorted(a.name for a in live) == [f"web.web[{i}]" for i in range(3)]


def test_job_without_update_strategy_has_no_deployment() -> None:
    h = Harness()
    h.add_node()
    h.run(mock_job(count=2))
    assert h.deployments == {}


def test_failed_allocation_of_an_older_version_is_replaced_by_the_new_one() -> None:
    # out of reschedule attempts (the default service policy is unlimited: turn it off), a failed
    # allocation keeps its name until the job changes; the new version (an auto-revert) replaces it
    h = setup(3)
    job = h.job("web")
    no_resched = dataclasses.replace(job.task_groups[0].reschedule_policy, attempts=0, unlimited=False)  # type: ignore[type-var]
    job = h.upsert_job(
        dataclasses.replace(
            job, task_groups=(dataclasses.replace(job.task_groups[0], reschedule_policy=no_resched),)
        )
    )
    evaluate(h, job)
    healthy_all(h)
    failed = h.live_allocs("web")[0]
    h.set_client_status(failed.id, AllocClientStatus.FAILED)
    evaluate(h, job)
    assert len(h.live_allocs("web")) == 2  # not replaced: no attempts left
    newer = new_version(h, "2")
    for _ in range(3):  # max_parallel 2: the failed one goes with the second batch
        evaluate(h, newer)
        healthy_all(h)
    live = h.live_allocs("web")
    assert len(live) == 3 and failed.name in {a.name for a in live if a.job_version == newer.version}


def test_the_evaluation_records_the_deployment_it_created_or_worked_on() -> None:
    h = Harness()
    h.add_node()
    first = h.run(rolling_job(2))
    (d,) = h.deployments.values()
    assert first.deployment_id == d.id  # created by this evaluation
    ev = h.make_eval(h.job("web"), EvalTrigger.DEPLOYMENT_WATCHER)
    h.process(ev)
    assert h.evals[ev.id].deployment_id == d.id  # worked on
    plain = h.run(mock_job(job_id="plain", count=1))  # no update {}: no deployment
    assert plain.deployment_id == ""
