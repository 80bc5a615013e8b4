#!/usr/bin/env python3
"""Cyclic-GC pauses while a server's state store grows to N allocations, in one process.

Builds ``allocations`` allocations (decoded from the wire form of a few real placements of the
scheduler harness, each with its own ID, the shared job attached, as a follower's FSM stores
them) into a :class:`StateStore`, with the collector running automatically under the agent's
policy (``nomadd.agent.runtime``) or the previous one (``--policy old``: thresholds
10,000/10/10, nothing frozen after start-up), and prints the collections by generation, the
longest pause, the total paused, and the time of one explicit ``gc.collect()`` at the end.

Usage: scripts/bench_gc.py [allocations] [--policy new|old]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OLD_THRESHOLDS = (10_000, 10, 10)
BATCH = 1000  # allocations per store write (one plan result entry)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("allocations", type=int, nargs="?", default=1_000_000)
    ap.add_argument("--policy", choices=("new", "old"), default="new")
    opts = ap.parse_args()
    gc.disable()
    from nomadd.agent import runtime
    from nomadd.scheduler.testing import Harness, mock_job
    from nomadd.server.state import store_allocs
    from nomadd.server.state.store import StateStore
    from nomadd.structs.alloc import Allocation
    from nomadd.structs.codec import from_wire, to_wire

    harness = Harness()
    for _ in range(100):
        harness.add_node()
    evals = [harness.register(mock_job(f"bench-{i}", count=10, cpu=100, memory_mb=64)) for i in range(10)]

    async def schedule() -> None:
        for ev in evals:
            await harness.aprocess(ev)

    asyncio.run(schedule())
    samples = list(harness._allocs.values())
    job = samples[0].job
    wires = [to_wire(dataclasses.replace(a, job=None)) for a in samples]

    if opts.policy == "new":
        watch = runtime.install()
    else:
        watch = runtime.RuntimeWatch(freeze_min_objects=sys.maxsize)
        gc.freeze()
        gc.set_threshold(*OLD_THRESHOLDS)
        watch.install_gc()
        gc.enable()
    store = StateStore()
    start = time.perf_counter()
    index = 1
    for first in range(0, opts.allocations, BATCH):
        index += 1
        with store.write(index) as txn:
            for i in range(first, min(first + BATCH, opts.allocations)):
                wire = dict(wires[i % len(wires)])
                wire["id"] = f"{i:08x}-0000-4000-8000-000000000000"
                alloc = dataclasses.replace(from_wire(Allocation, wire), job=job)
                txn.put(store_allocs.TABLE, alloc.id, alloc)
    built = time.perf_counter() - start
    watch.uninstall_gc()
    pauses = list(watch.pending)
    by_gen = {g: [p for gen, p, _ in pauses if gen == g] for g in (0, 1, 2)}
    t = time.perf_counter()
    gc.collect()
    explicit = time.perf_counter() - t
    print(f"policy {opts.policy}: {opts.allocations:,} allocations stored in {built:.1f} s")
    for g, ps in by_gen.items():
        if ps:
            print(
                f"  generation {g}: {len(ps):6d} collections, longest {max(ps) / 1e6:8.1f} ms, "
                f"total {sum(ps) / 1e9:6.2f} s"
            )
    print(f"  longest pause {watch.max_pause_ns / 1e6:.1f} ms; frozen objects {gc.get_freeze_count():,}")
    print(f"  gc.collect() at the end: {explicit * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
