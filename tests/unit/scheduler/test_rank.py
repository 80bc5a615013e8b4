from __future__ import annotations

import random

import pytest

from nomadd.scheduler.context import Env, PlanBuilder
from nomadd.scheduler.feasible import GroupChecker
from nomadd.scheduler.rank import NodeUsage, Stack, _stride, binpack_score, score_limit
from nomadd.scheduler.testing import Harness, mock_job
from nomadd.structs.alloc import AllocClientStatus
from nomadd.structs.node import NodeEligibility


def test_score_limit() -> None:
    assert score_limit(0, batch=False) == 2
    assert score_limit(3, batch=False) == 2
    assert score_limit(1000, batch=False) == 10
    assert score_limit(1000, batch=True) == 2


def test_binpack_prefers_fuller_nodes() -> None:
    empty = binpack_score(4000, 8192, 100, 100)
    half = binpack_score(4000, 8192, 2000, 4096)
    full = binpack_score(4000, 8192, 4000, 8192)
    assert 0.0 <= empty < half < full <= 1.0
    assert full == pytest.approx(1.0)


def _setup(nodes: int) -> tuple[Harness, list[str]]:
    h = Harness()
    return h, [h.add_node().id for _ in range(nodes)]


def test_usage_counts_state_minus_plan_stops_plus_placements() -> None:
    h, (n1,) = _setup(1)
    h.run(mock_job(count=2, cpu=500, memory_mb=256))
    job = h.job("web")
    a, _b = h.live_allocs("web")
    plan = PlanBuilder("e", job, Env(random.Random(0)))
    plan.stop(a, "x")
    usage = NodeUsage(h, plan, h.allocs_by_job("default", "web"))
    assert usage.used(n1) == [500, 256, 300]
    assert usage.collisions(n1) == 1
    assert usage.collisions(n1, "web") == 1
    usage.add(n1, "web", (100, 10, 1))
    assert usage.used(n1) == [600, 266, 301]
    assert usage.collisions(n1, "web") == 2


def test_usage_without_index_sums_allocs_by_node() -> None:
    class SlowState:
        """The Harness without its NodeUsageIndex."""

        def __init__(self, h: Harness) -> None:
            self.allocs_by_node = h.allocs_by_node

    h, (n1,) = _setup(1)
    h.run(mock_job(count=3, cpu=500, memory_mb=256))
    h.set_client_status(h.live_allocs("web")[0].id, AllocClientStatus.COMPLETE)
    plan = PlanBuilder("e", h.job("web"), Env(random.Random(0)))
    fast = NodeUsage(h, plan, [])
    slow = NodeUsage(SlowState(h), plan, [])  # type: ignore[arg-type]
    assert fast.used(n1) == slow.used(n1) == [1000, 512, 600]


def test_stack_scores_a_bounded_number_of_nodes() -> None:
    h, _ = _setup(200)
    job = h.upsert_job(mock_job(count=1, cpu=10, memory_mb=10))
    plan = PlanBuilder("e", job, Env(random.Random(0)))
    usage = NodeUsage(h, plan, [])
    stack = Stack(job, list(h.nodes()), usage, batch=False, rng=random.Random(1))
    checker = GroupChecker(job, job.task_groups[0])
    sel = stack.select("web", checker, (10, 10, 0), 1)
    assert sel.node is not None
    assert sel.metric.nodes_evaluated == score_limit(200, batch=False)
    assert len(sel.metric.scores) == 5


def test_stack_walks_all_nodes_when_few_fit() -> None:
    h, ids = _setup(50)
    for nid in ids[:-1]:  # fill all but the last node
        h.update_node(nid, node_resources=h.node_by_id(nid).node_resources.__class__())  # type: ignore[union-attr]
    job = h.upsert_job(mock_job(count=1))
    plan = PlanBuilder("e", job, Env(random.Random(0)))
    stack = Stack(job, list(h.nodes()), NodeUsage(h, plan, []), batch=True, rng=random.Random(3))
    checker = GroupChecker(job, job.task_groups[0])
    sel = stack.select("web", checker, job.task_groups[0].resources(), 1)
    assert sel.node is not None
    assert sel.node.id == ids[-1]
    assert sel.metric.nodes_exhausted >= 1
    again = stack.select("web", checker, (10**6, 1, 1), 1)
    assert again.node is None
    assert again.metric.nodes_evaluated == 50
    assert again.metric.dimension_exhausted == {"cpu": 50}
    assert again.metric.nodes_available == {"dc1": 50}


def test_walk_moves_on_between_placements() -> None:
    h, _ids = _setup(12)
    job = h.upsert_job(mock_job(count=1))
    plan = PlanBuilder("e", job, Env(random.Random(0)))
    stack = Stack(job, list(h.nodes()), NodeUsage(h, plan, []), batch=True, rng=random.Random(7))
    checker = GroupChecker(job, job.task_groups[0])
    seen = []
    for _ in range(12):
        sel = stack.select("web", checker, (1, 1, 1), 100)
        assert sel.node is not None
        seen.append(sel.node.id)
    # batch scores two per placement and keeps moving: all nodes get looked at
    assert len(set(seen)) >= 6


def test_anti_affinity_penalises_collisions() -> None:
    h, (n1, n2) = _setup(2)
    h.run(mock_job(count=2, cpu=100, memory_mb=64))
    assert {a.node_id for a in h.live_allocs("web")} == {n1, n2}


@pytest.mark.parametrize("n", [1, 2, 3, 4, 12, 97, 100, 1000])
def test_stride_walk_is_a_permutation(n: int) -> None:
    rng = random.Random(n)
    for _ in range(5):
        step = _stride(n, rng)
        offset = rng.randrange(n)
        assert sorted((offset + i * step) % n for i in range(n)) == list(range(n))


def test_node_facts_kept_across_evaluations_follow_node_writes() -> None:
    """Readiness and capacity are remembered per node object between evaluations; a node
    written since (drained, shrunk) is a new object and is judged afresh."""
    h, ids = _setup(3)
    job = h.upsert_job(mock_job(count=1, cpu=10, memory_mb=10))
    checker = GroupChecker(job, job.task_groups[0])

    def chosen() -> set[str]:
        found = set()
        for seed in range(40):  # every walk order: which nodes can be chosen at all
            plan = PlanBuilder("e", job, Env(random.Random(0)))
            stack = Stack(job, list(h.nodes()), NodeUsage(h, plan, []), batch=True, rng=random.Random(seed))
            sel = stack.select("web", checker, (10, 10, 0), 1)
            assert sel.node is not None
            found.add(sel.node.id)
        return found

    assert chosen() == set(ids)
    h.update_node(ids[0], scheduling_eligibility=NodeEligibility.INELIGIBLE)
    small = h.node_by_id(ids[1]).node_resources.__class__()  # type: ignore[union-attr]
    h.update_node(ids[1], node_resources=small)  # no capacity left
    assert chosen() == {ids[2]}


def test_eligibility_kept_across_evaluations_is_per_pool_and_datacenters() -> None:
    """The eligibility remembered between evaluations belongs to a (node pool, datacenters)
    pair: a job of other datacenters or another pool judges the same node objects afresh."""
    h = Harness()
    dc1 = {h.add_node(datacenter="dc1").id for _ in range(3)}
    dc2 = {h.add_node(datacenter="dc2").id for _ in range(3)}
    gpu = {h.add_node(datacenter="dc1", node_pool="gpu").id for _ in range(3)}

    def chosen(**kw: object) -> set[str]:
        job = h.upsert_job(mock_job(count=1, cpu=10, memory_mb=10, **kw))
        checker = GroupChecker(job, job.task_groups[0])
        found = set()
        for seed in range(60):  # every walk order: which nodes can be chosen at all
            plan = PlanBuilder("e", job, Env(random.Random(0)))
            stack = Stack(job, list(h.nodes()), NodeUsage(h, plan, []), batch=True, rng=random.Random(seed))
            sel = stack.select("web", checker, (10, 10, 0), 1)
            assert sel.node is not None
            found.add(sel.node.id)
        return found

    assert chosen(datacenters=("dc1",)) == dc1
    assert chosen(datacenters=("dc2",)) == dc2
    assert chosen(datacenters=("dc1",), node_pool="gpu") == gpu
    assert chosen(datacenters=("dc1", "dc2")) == dc1 | dc2
    assert chosen(datacenters=("dc1",)) == dc1


def test_low_scoring_nodes_are_skipped_and_do_not_count_toward_the_limit() -> None:
    """Nomad's LimitIterator: a fitting node scoring <= 0 (here: the reschedule penalty) is
    passed over (up to MAX_SKIP per placement) and the walk goes on to ``limit`` others; a
    skipped node is taken only when nothing else fits."""
    h, ids = _setup(6)
    skip = 3  # Nomad's maxSkip
    job = h.upsert_job(mock_job(count=1, cpu=10, memory_mb=10))
    plan = PlanBuilder("e", job, Env(random.Random(0)))
    penalised = frozenset(ids[:skip])
    nodes = [h.node_by_id(i) for i in ids]
    stack = Stack(job, nodes, NodeUsage(h, plan, []), batch=True, rng=None)  # walk in list order
    checker = GroupChecker(job, job.task_groups[0])
    sel = stack.select("web", checker, (10, 10, 0), 1, penalty_nodes=penalised)
    assert sel.node is not None and sel.node.id not in penalised
    assert sel.metric.nodes_evaluated == skip + score_limit(6, batch=True)
    # every node penalised: once three are passed over, the next ones count again
    stack = Stack(job, nodes, NodeUsage(h, plan, []), batch=True, rng=None)
    sel = stack.select("web", checker, (10, 10, 0), 1, penalty_nodes=frozenset(ids))
    assert sel.node is not None and sel.node.id in ids[skip:]
    assert sel.metric.nodes_evaluated == skip + 2
    # two nodes, both penalised: the walk ends with the skipped ones as the only options
    stack = Stack(job, nodes[:2], NodeUsage(h, plan, []), batch=True, rng=None)
    sel = stack.select("web", checker, (10, 10, 0), 1, penalty_nodes=frozenset(ids))
    assert sel.node is not None
    assert sel.metric.nodes_evaluated == 2


def test_failed_placement_metric_counts_each_reason_in_its_field() -> None:
    """``nomad alloc status -verbose`` / FailedTGAllocs: filtered by constraint (per constraint
    and per node class), exhausted (per dimension), and the pool, each in its own field."""
    from nomadd.structs.job import Constraint

    h = Harness()
    for _ in range(3):
        h.add_node(node_class="gpu")
    h.add_node(node_class="small", datacenter="dc2")
    h.run(mock_job("big", count=3, cpu=3900, memory_mb=64))  # fills the three dc1 nodes
    windows = Constraint(l_target="${attr.kernel.name}", r_target="windows")
    ev = h.run(mock_job("win", count=1, constraints=(windows,)))
    metric = ev.failed_tg_allocs["web"]
    assert metric.nodes_evaluated == 3 and metric.nodes_filtered == 3 and metric.nodes_in_pool == 4
    assert metric.constraint_filtered == {"${attr.kernel.name} = windows": 3}
    assert metric.class_filtered == {"gpu": 3}
    assert metric.nodes_exhausted == 0 and metric.dimension_exhausted == {} and metric.class_exhausted == {}
    assert metric.nodes_available == {"dc1": 3}
    ev = h.run(mock_job("fat", count=1, cpu=3900, memory_mb=64))
    metric = ev.failed_tg_allocs["web"]
    assert metric.nodes_evaluated == 3 and metric.nodes_filtered == 0
    assert metric.nodes_exhausted == 3 and metric.dimension_exhausted == {"cpu": 3}
    assert metric.constraint_filtered == {} and metric.class_filtered == {} and metric.scores == {}


def test_fixed_seed_placements_are_pinned() -> None:
    """Which node each placement takes for a fixed seed (walk order, limit, skip threshold,
    binpack and anti-affinity), the work counted in its metric and its top scores (ties by node
    ID, highest first), as the scheduler has always chosen: a faster walk must choose the same."""
    h = Harness(seed=5)
    nodes = [h.add_node().id for _ in range(10)]
    got = []
    for name, count, cpu in (("a", 6, 1500), ("b", 3, 700), ("c", 12, 400), ("d", 3, 1200), ("e", 5, 900)):
        ev = h.run(mock_job(name, count=count, cpu=cpu, memory_mb=256))
        assert not ev.failed_tg_allocs
        allocs = sorted(h.live_allocs(name), key=lambda a: a.name)
        metrics = [a.metrics for a in allocs if a.metrics is not None]
        evaluated = sum(m.nodes_evaluated for m in metrics)
        exhausted = sum(m.nodes_exhausted for m in metrics)
        got.append(([nodes.index(a.node_id) for a in allocs], evaluated, exhausted))
    assert got == [
        ([9, 5, 1, 7, 3, 8], 24, 0),
        ([9, 5, 1], 13, 0),
        ([9, 9, 5, 5, 1, 7, 3, 8, 5, 1, 5, 1], 48, 0),
        ([8, 3, 6], 20, 8),
        ([9, 3, 8, 7, 4], 33, 13),
    ]

    def top_scores(job_id: str) -> list[tuple[int, float]]:
        metric = sorted(h.live_allocs(job_id), key=lambda a: a.name)[0].metrics
        assert metric is not None
        return [(nodes.index(k.split(".")[0]), round(v, 6)) for k, v in metric.scores.items()]

    assert top_scores("c") == [(9, 0.539048), (8, 0.443928), (7, 0.443928), (6, 0.152833)]
    assert top_scores("e") == [(9, 0.66458), (8, 0.638948), (7, 0.552573), (6, 0.464165)]


def test_equal_scores_are_listed_by_node_id_highest_first() -> None:
    """AllocMetric.scores keeps the top five, equal scores by node ID (highest first), whatever
    order the walk met them in."""
    h = Harness(seed=5)
    nodes = [h.add_node().id for _ in range(12)]
    for j in range(6):
        h.run(mock_job(f"j{j}", count=8, cpu=900, memory_mb=256))
    metric = sorted(h.live_allocs("j5"), key=lambda a: a.name)[0].metrics
    assert metric is not None
    scores = [(nodes.index(k.split(".")[0]), round(v, 6)) for k, v in metric.scores.items()]
    assert scores == [(11, 0.546005), (8, 0.546005), (4, 0.546005), (0, 0.546005)]
