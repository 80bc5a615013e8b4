#!/usr/bin/env python3
"""The server's state store at C1M size, in one process: fill, snapshot + write, reads, dump, restore.

Fills a StateStore through the FSM's own write helpers (nodes, jobs, then one plan result of
``--per-job`` allocations per job, like the plan applier's ALLOC_UPDATE entries), with realistic
allocations (one placed by the scheduler test harness, copied with new IDs, nodes and jobs),
then times:

* ``write``: one client status update (allocs, by-job, by-node and usage rows), no snapshot;
* ``snapshot+write``: a snapshot (what each evaluation, HTTP read and plan takes) then that write;
* ``get`` / ``allocs_by_node`` / ``allocs_by_job`` / ``node_usage``: reads from a snapshot;
* ``iterate``: every row of the allocs table;
* ``dump`` / ``restore``: ``dump_snapshot`` and ``StateStore.restore`` of the whole store.

``--compare REF`` runs the same measurement first on the ``nomadd/`` of git ``REF`` (e.g. main),
in a subprocess, and prints both columns: before and after in the same run.

Usage: scripts/bench store [--allocs 1000000] [--nodes 5000] [--per-job 10] [--writes 200]
                           [--compare REF] [--skip-dump] [--json]
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import random
import resource
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _StallProbe:
    """The longest another thread waited to run (a 1 ms sleep loop) while the main thread works:
    how long the work holds the GIL at a stretch (the Raft tick thread and the event loop wait
    that long)."""

    def __init__(self) -> None:
        self.max_gap = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        last = time.perf_counter()
        while not self._stop.is_set():
            time.sleep(0.001)
            now = time.perf_counter()
            self.max_gap = max(self.max_gap, now - last)
            last = now

    def __enter__(self) -> _StallProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _uuid(kind: int, n: int) -> str:
    return f"{kind:08x}-0000-4000-8000-{n:012d}"


def measure(allocs: int, nodes: int, per_job: int, writes: int, dump: bool = True) -> dict[str, Any]:
    from nomadd.scheduler.testing import Harness, mock_job, mock_node
    from nomadd.server.state import store_allocs, store_jobs, store_nodes
    from nomadd.server.state.store import StateStore, dump_snapshot
    from nomadd.structs.alloc import AllocClientStatus
    from nomadd.structs.requests.node import AllocClientUpdate

    h = Harness()
    for _ in range(3):
        h.add_node()
    ev = h.register(mock_job(count=per_job))
    h.process(ev)
    template = dataclasses.replace(h.live_allocs(ev.job_id)[0], job=None)
    template_job = mock_job(count=per_job)

    out: dict[str, Any] = {"allocs": allocs, "nodes": nodes, "per_job": per_job}
    store = StateStore()
    index = 1
    gc.disable()  # the fill allocates millions of objects that all live on: no point collecting
    t0 = time.perf_counter()
    node_ids = [_uuid(1, i) for i in range(nodes)]
    with store.write(index) as txn:
        for nid in node_ids:
            store_nodes.upsert_locked(txn, mock_node(nid), now_s=1, timestamp="2026-12-03T00:00:00Z")
    n_jobs = max(1, allocs // per_job)
    alloc_ids: list[str] = []
    placed = 0
    for j in range(n_jobs):
        index += 1
        job_id = f"job-{j}"
        with store.write(index) as txn:
            job, _ = store_jobs.upsert_job_locked(
                txn, dataclasses.replace(template_job, id=job_id, name=job_id), submit_time=1
            )
            batch = []
            for k in range(per_job):
                aid = _uuid(2, placed)
                batch.append(
                    dataclasses.replace(
                        template,
                        id=aid,
                        name=f"{job_id}.web[{k}]",
                        job_id=job_id,
                        node_id=node_ids[placed % nodes],
                        eval_id=_uuid(3, j),
                    )
                )
                alloc_ids.append(aid)
                placed += 1
        # a separate entry, as the plan applier's: the plan result comes after the register
        index += 1
        with store.write(index) as txn:
            store_allocs.upsert_plan_locked(txn, job, batch, ())
    gc.enable()
    gc.collect()
    out["fill_s"] = time.perf_counter() - t0
    out["rss_after_fill_mb"] = _rss_mb()

    rng = random.Random(1)
    picks = [rng.choice(alloc_ids) for _ in range(writes)]

    def one_write(i: int, aid: str) -> None:
        nonlocal index
        index += 1
        status = AllocClientStatus.RUNNING if i % 2 == 0 else AllocClientStatus.PENDING
        with store.write(index) as txn:
            store_allocs.update_client_locked(
                txn, [AllocClientUpdate(id=aid, client_status=status)], now_ns=index
            )

    t = time.perf_counter()
    for i, aid in enumerate(picks):
        one_write(i, aid)
    out["write_ms"] = (time.perf_counter() - t) / writes * 1e3

    snaps = []
    t = time.perf_counter()
    for i, aid in enumerate(picks):
        snaps.append(store.snapshot())  # kept alive, as a running evaluation would
        one_write(i, aid)
        if len(snaps) > 8:
            snaps.pop(0)
    out["snapshot_write_ms"] = (time.perf_counter() - t) / writes * 1e3
    snaps.clear()

    snap = store.snapshot()
    reads = 200_000
    keys = [rng.choice(alloc_ids) for _ in range(reads)]
    t = time.perf_counter()
    for k in keys:
        snap.get("allocs", k)
    out["get_us"] = (time.perf_counter() - t) / reads * 1e6
    nkeys = [rng.choice(node_ids) for _ in range(reads // 10)]
    t = time.perf_counter()
    for k in nkeys:
        store_allocs.allocs_by_node(snap, k)
    out["allocs_by_node_us"] = (time.perf_counter() - t) / len(nkeys) * 1e6
    t = time.perf_counter()
    for k in nkeys:
        store_allocs.node_usage(snap, k)
    out["node_usage_us"] = (time.perf_counter() - t) / len(nkeys) * 1e6
    t = time.perf_counter()
    for j in range(len(nkeys)):
        store_allocs.allocs_by_job(snap, "default", f"job-{j % n_jobs}")
    out["allocs_by_job_us"] = (time.perf_counter() - t) / len(nkeys) * 1e6
    t = time.perf_counter()
    n = sum(1 for a in snap.table("allocs").values() if a.client_status)
    out["iterate_s"] = time.perf_counter() - t
    assert n == placed, (n, placed)
    if not dump:
        return out

    t = time.perf_counter()
    with _StallProbe() as probe:
        data = dump_snapshot(snap)
    out["dump_s"] = time.perf_counter() - t
    out["dump_max_stall_ms"] = probe.max_gap * 1e3
    out["dump_mb"] = len(data) / 1e6
    out["rss_after_dump_mb"] = _rss_mb()
    del snap
    other = StateStore()
    t = time.perf_counter()
    with _StallProbe() as probe:
        other.restore(data)
    out["restore_s"] = time.perf_counter() - t
    out["restore_max_stall_ms"] = probe.max_gap * 1e3
    out["rss_after_restore_mb"] = _rss_mb()
    assert len(other.snapshot().table("allocs")) == placed
    return out


_ROWS = [
    ("fill_s", "fill (s)"),
    ("write_ms", "write, no snapshot (ms)"),
    ("snapshot_write_ms", "snapshot + write (ms)"),
    ("get_us", "get (us)"),
    ("allocs_by_node_us", "allocs_by_node (us)"),
    ("allocs_by_job_us", "allocs_by_job (us)"),
    ("node_usage_us", "node_usage (us)"),
    ("iterate_s", "iterate allocs (s)"),
    ("dump_s", "dump (s)"),
    ("dump_max_stall_ms", "  longest GIL hold (ms)"),
    ("dump_mb", "dump size (MB)"),
    ("restore_s", "restore (s)"),
    ("restore_max_stall_ms", "  longest GIL hold (ms)"),
    ("rss_after_fill_mb", "max RSS after fill (MB)"),
    ("rss_after_dump_mb", "max RSS after dump (MB)"),
    ("rss_after_restore_mb", "max RSS after restore (MB)"),
]


def _run_ref(ref: str, argv: list[str]) -> dict[str, Any]:
    """This measurement on git ``ref``'s nomadd package, in a child process."""
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", ref, "nomadd"], check=True, capture_output=True
        ).stdout
        tar_path = Path(tmp) / "src.tar"
        tar_path.write_bytes(archive)
        with tarfile.open(tar_path) as tar:
            tar.extractall(tmp, filter="data")
        env = {**os.environ, "PYTHONPATH": tmp}
        res = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), *argv, "--src", tmp, "--json"],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        )
        parsed: dict[str, Any] = json.loads(res.stdout)
        return parsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--allocs", type=int, default=1_000_000)
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--per-job", type=int, default=10)
    ap.add_argument("--writes", type=int, default=200)
    ap.add_argument("--compare", metavar="REF", help="also measure git REF's nomadd (before)")
    ap.add_argument("--skip-dump", action="store_true", help="no dump/restore (main's needs ~13 GB at 1M)")
    ap.add_argument("--src", help=argparse.SUPPRESS)  # the nomadd tree to import (for --compare)
    ap.add_argument("--json", action="store_true")
    opts = ap.parse_args()
    sys.path.insert(0, opts.src or str(ROOT))
    argv = [
        f"--allocs={opts.allocs}",
        f"--nodes={opts.nodes}",
        f"--per-job={opts.per_job}",
        f"--writes={opts.writes}",
        *(["--skip-dump"] if opts.skip_dump else []),
    ]
    columns: list[tuple[str, dict[str, Any]]] = []
    if opts.compare:
        columns.append((opts.compare, _run_ref(opts.compare, argv)))
    columns.append(
        (
            "this tree" if not opts.src else opts.src,
            measure(opts.allocs, opts.nodes, opts.per_job, opts.writes, not opts.skip_dump),
        )
    )
    if opts.json:
        print(json.dumps(columns[-1][1] if len(columns) == 1 else dict(columns), indent=2))
        return 0
    print(f"allocations {opts.allocs}  nodes {opts.nodes}  per job {opts.per_job}  writes {opts.writes}")
    print(f"{'':<28}" + "".join(f"{name:>16}" for name, _ in columns))
    for key, label in _ROWS:
        print(f"{label:<28}" + "".join(f"{col.get(key, float('nan')):>16.3f}" for _, col in columns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
