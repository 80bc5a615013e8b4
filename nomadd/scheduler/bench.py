"""Scheduler micro-benchmark: placements per second of the scheduler alone (no Raft).

``scripts/bench schedule`` can call :func:`bench_schedule` to report the scheduler's own ceiling
beside the cluster figure; ``python -m nomadd.scheduler.bench [nodes jobs count]`` prints it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import sys
import time

from nomadd.helper.gc_policy import GC_THRESHOLDS
from nomadd.scheduler.testing import Harness, mock_job

__all__ = ["BenchResult", "bench_schedule"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BenchResult:
    nodes: int
    jobs: int
    count: int
    placements: int
    failed_placements: int
    seconds: float
    cpu_seconds: float  # process CPU time: robust on a busy machine
    placements_per_s: float
    placements_per_cpu_s: float


def bench_schedule(
    *,
    nodes: int = 1000,
    jobs: int = 1000,
    count: int = 10,
    seed: int = 0,
    gc_thresholds: tuple[int, int, int] | None = None,
) -> BenchResult:
    """Register ``jobs`` service jobs of ``count`` allocations on ``nodes`` mock nodes, then
    time processing their evaluations through the service scheduler and the Harness's plan
    applier (``evaluate_node_plan`` per node). Setup is not timed.

    ``gc_thresholds``: time under the agent's collector policy (what the setup built is frozen
    first, as a server's long-lived state is, and the thresholds set for the timed part; the
    caller passes ``nomadd.helper.gc_policy.GC_THRESHOLDS``). Without it, under Python's defaults:
    then a full collection walks the whole setup again and again, a cost that grows with the
    node count and is not the scheduler's."""
    harness = Harness(seed=seed)
    for _ in range(nodes):
        harness.add_node()
    evals = [
        harness.register(mock_job(f"bench-{i}", count=count, cpu=100, memory_mb=64)) for i in range(jobs)
    ]

    async def run_all() -> None:
        for ev in evals:
            await harness.aprocess(ev)

    saved = gc.get_threshold()
    if gc_thresholds is not None:
        gc.collect()
        gc.freeze()
        gc.set_threshold(*gc_thresholds)
    try:
        start, cpu_start = time.perf_counter(), time.process_time()
        asyncio.run(run_all())
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    finally:
        if gc_thresholds is not None:
            gc.set_threshold(*saved)
            gc.unfreeze()
    placed = sum(plan.placements() for plan in harness.plans)
    failed = sum(sum(ev.queued_allocations.values()) for ev in harness.updated_evals)
    return BenchResult(
        nodes=nodes,
        jobs=jobs,
        count=count,
        placements=placed,
        failed_placements=failed,
        seconds=elapsed,
        cpu_seconds=cpu,
        placements_per_s=placed / elapsed if elapsed > 0 else 0.0,
        placements_per_cpu_s=placed / cpu if cpu > 0 else 0.0,
    )


def main(argv: list[str]) -> int:
    nums = [int(a) for a in argv[:3]]
    kwargs = dict(zip(("nodes", "jobs", "count"), nums, strict=False))
    result = bench_schedule(**kwargs, gc_thresholds=GC_THRESHOLDS)
    print(
        f"scheduler: {result.placements} placements in {result.seconds:.2f}s "
        f"= {result.placements_per_s:,.0f} placements/s "
        f"({result.placements_per_cpu_s:,.0f}/s of CPU) "
        f"({result.nodes} nodes, {result.jobs} jobs x {result.count}; "
        f"{result.failed_placements} failed)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
