"""Seeded random walks over cluster events; after every evaluation the scheduler's invariants
must hold. Deterministic (fixed seeds), so a failure reproduces exactly."""

from __future__ import annotations

import dataclasses
import random
from collections import Counter

import pytest

from nomadd.scheduler.testing import Harness, mock_job
from nomadd.structs.alloc import AllocClientStatus
from nomadd.structs.eval import EvalStatus, EvalTrigger
from nomadd.structs.funcs import allocs_fit
from nomadd.structs.job import Job, JobType
from nomadd.structs.node import DrainStrategy, NodeStatus

JOBS = ("svc-a", "svc-b", "batch-c", "sys-d")


def check(h: Harness, jobs: tuple[str, ...] = JOBS) -> None:
    """Invariants after ``jobs`` were evaluated (other jobs may not have seen the event yet)."""
    for node in h.nodes():
        ok, dim = allocs_fit(node, h.allocs_by_node(node.id))
        assert ok, f"node {node.id} overcommitted on {dim}"
    for job_id in jobs:
        if h.job_by_id("default", job_id) is None:
            continue
        job = h.job(job_id)
        live = h.live_allocs(job_id)
        if job.type == JobType.SYSTEM:
            per_node = Counter(a.node_id for a in live)
            assert all(n == 1 for n in per_node.values()), f"two system allocs on a node {per_node}"
        else:
            names = Counter(a.name for a in live)
            assert all(n == 1 for n in names.values()), f"duplicate names {names}"
        for tg in job.task_groups:
            group_live = [a for a in live if a.task_group == tg.name]
            if job.type != JobType.SYSTEM:
                assert len(group_live) <= (0 if job.stop else tg.count)
            elif job.stop or tg.count == 0:
                assert group_live == []
        for a in live:
            node = h.node_by_id(a.node_id)
            assert node is not None
            assert node.status != NodeStatus.DOWN, "live allocation on a down node"
            assert node.drain_strategy is None, "live allocation on a draining node"


def full_when_room(h: Harness, job: Job) -> None:
    """With every placement possible, a service job has exactly count live allocations and a
    system job one on every ready node (or a failed/complete one it keeps there)."""
    ev = h.updated_evals[-1]
    if job.type == JobType.SYSTEM and not job.stop and job.task_groups[0].count == 1:
        if ev.status == EvalStatus.COMPLETE and not ev.failed_tg_allocs:
            for node in h.nodes():
                if not node.ready():
                    continue
                mine = [
                    a for a in h.allocs_by_node(node.id) if a.job_id == job.id and not a.server_terminal()
                ]
                assert len(mine) == 1, f"system job has {len(mine)} allocs on ready node {node.id}"
        return
    if job.stop or job.type != JobType.SERVICE:
        return
    if ev.status == EvalStatus.COMPLETE and not ev.failed_tg_allocs:
        live = h.live_allocs(job.id)
        pending_failed = [
            a
            for a in h.all_allocs(job.id)
            if a.client_status == AllocClientStatus.FAILED
            and not a.next_allocation
            and not a.server_terminal()
        ]
        assert len(live) + len(pending_failed) == job.task_groups[0].count


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_random_cluster_walk(seed: int) -> None:
    rng = random.Random(seed)
    h = Harness(seed=seed)
    nodes = [h.add_node().id for _ in range(5)]
    for job_id in JOBS:
        jtype = {"svc": JobType.SERVICE, "batch": JobType.BATCH, "sys": JobType.SYSTEM}[job_id.split("-")[0]]
        count = 1 if jtype == JobType.SYSTEM else rng.randint(1, 6)
        h.run(mock_job(job_id, count=count, job_type=jtype, cpu=rng.choice([300, 700, 1200])))
        check(h)
    for _step in range(60):
        h.now += rng.randint(1, 60) * 10**9
        action = rng.choice(["count", "down", "up", "drain", "undrain", "fail", "complete", "stop", "resize"])
        job_id = rng.choice(JOBS)
        job = h.job(job_id)
        trigger = EvalTrigger.JOB_REGISTER
        node_id = ""
        if action == "count":
            top = 1 if job.type == JobType.SYSTEM else 8
            tg = dataclasses.replace(job.task_groups[0], count=rng.randint(0, top))
            job = h.upsert_job(dataclasses.replace(job, task_groups=(tg,), stop=False))
        elif action == "resize":
            tg = job.task_groups[0]
            res = dataclasses.replace(tg.tasks[0].resources, cpu=rng.choice([200, 900, 2500]))
            task = dataclasses.replace(tg.tasks[0], resources=res)
            job = h.upsert_job(
                dataclasses.replace(job, task_groups=(dataclasses.replace(tg, tasks=(task,)),))
            )
        elif action == "stop":
            job = h.upsert_job(dataclasses.replace(job, stop=not job.stop))
        elif action in ("down", "up", "drain", "undrain"):
            node_id = rng.choice(nodes)
            trigger = EvalTrigger.NODE_UPDATE
            if action == "down":
                h.update_node(node_id, status=NodeStatus.DOWN)
            elif action == "up":
                h.update_node(node_id, status=NodeStatus.READY)
            elif action == "drain":
                h.update_node(node_id, drain_strategy=DrainStrategy())
                h.mark_migrate(node_id)  # the drainer at the drain's deadline
            else:
                h.update_node(node_id, drain_strategy=None)
        else:
            live = h.live_allocs(job_id)
            if not live:
                continue
            victim = rng.choice(live)
            status = AllocClientStatus.FAILED if action == "fail" else AllocClientStatus.COMPLETE
            h.set_client_status(victim.id, status)
            trigger = EvalTrigger.ALLOC_FAILURE
        # a node event concerns every job; process all of them, in random order
        targets = list(JOBS) if node_id else [job_id]
        rng.shuffle(targets)
        for target in targets:
            if h.job_by_id("default", target) is None:
                continue
            h.process(h.make_eval(h.job(target), trigger, node_id=node_id))
            check(h, (target,))
            full_when_room(h, h.job(target))
        check(h)
        # blocked evals retried when something changed, as the blocked-evals tracker would
        for ev in list(h.evals.values()):
            if ev.status == EvalStatus.BLOCKED and h.evals[ev.id] is ev and rng.random() < 0.5:
                h.process(ev)
                check(h, (ev.job_id,))
