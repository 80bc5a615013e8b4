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

``--restore`` measures instead what a restart, a catch-up or a follower's install costs, for each
dump format version this tree writes, in the same run: a store whose allocations each have their
own metric (as the scheduler's have), written as a Raft dump is (gzip level 1, streamed), then
restored from that file in a fresh process (``--repeat`` times, versions alternated): the CPU of
encoding (gzip included) and of restoring (gunzip included), the bytes, and the memory the
restored state takes beside what the same state took when it was filled ("fresh").

Usage: scripts/bench store [--allocs 1000000] [--nodes 5000] [--per-job 10] [--writes 200]
                           [--compare REF] [--skip-dump] [--json]
       scripts/bench store --restore [--allocs 200000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import gzip
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


def _rss_now_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def _uuid(kind: int, n: int) -> str:
    return f"{kind:08x}-0000-4000-8000-{n:012d}"


def _fill(
    allocs: int, nodes: int, per_job: int, vary: bool = False
) -> tuple[Any, list[str], list[str], int, int]:
    """A store of ``allocs`` allocations: (store, allocation IDs, node IDs, jobs, last index).
    With ``vary`` each allocation's metric is its own, as the scheduler's are (the scores of
    the nodes it ranked, its allocation time), and each job has its evaluation (complete);
    else every allocation has the template's metric, and there are no evaluations."""
    from nomadd.scheduler.testing import Harness, mock_job, mock_node
    from nomadd.server.state import store_allocs, store_evals, store_jobs, store_nodes
    from nomadd.server.state.store import StateStore
    from nomadd.structs.eval import EvalStatus, Evaluation

    h = Harness()
    for _ in range(3):
        h.add_node()
    ev = h.register(mock_job(count=per_job))
    h.process(ev)
    template = dataclasses.replace(h.live_allocs(ev.job_id)[0], job=None)
    template_job = mock_job(count=per_job)
    rng = random.Random(2)

    store = StateStore()
    index = 1
    gc.disable()  # the fill allocates millions of objects that all live on: no point collecting
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
                metrics = template.metrics
                if vary and metrics is not None:
                    ranked = (node_ids[placed % nodes], node_ids[(placed + 7) % nodes])
                    metrics = dataclasses.replace(
                        metrics,
                        scores={f"{n}.normalized-score": rng.random() for n in ranked},
                        allocation_time=rng.randrange(10_000, 90_000),
                    )
                batch.append(
                    dataclasses.replace(
                        template,
                        id=aid,
                        name=f"{job_id}.web[{k}]",
                        job_id=job_id,
                        node_id=node_ids[placed % nodes],
                        eval_id=_uuid(3, j),
                        metrics=metrics,
                    )
                )
                alloc_ids.append(aid)
                placed += 1
        # a separate entry, as the plan applier's: the plan result comes after the register
        index += 1
        with store.write(index) as txn:
            store_allocs.upsert_plan_locked(txn, job, batch, ())
            if vary:
                ev = Evaluation(
                    id=_uuid(3, j),
                    job_id=job_id,
                    type=job.type,
                    priority=job.priority,
                    job_modify_index=job.job_modify_index,
                    status=EvalStatus.COMPLETE,
                    queued_allocations={tg.name: 0 for tg in job.task_groups},
                )
                store_evals.upsert_evals_locked(txn, [ev])
    gc.enable()
    gc.collect()
    return store, alloc_ids, node_ids, n_jobs, index


def measure(allocs: int, nodes: int, per_job: int, writes: int, dump: bool = True) -> dict[str, Any]:
    from nomadd.server.state import store_allocs
    from nomadd.server.state.store import StateStore, dump_snapshot
    from nomadd.structs.alloc import AllocClientStatus
    from nomadd.structs.requests.node import AllocClientUpdate

    out: dict[str, Any] = {"allocs": allocs, "nodes": nodes, "per_job": per_job}
    t0 = time.perf_counter()
    store, alloc_ids, node_ids, n_jobs, index = _fill(allocs, nodes, per_job)
    placed = len(alloc_ids)
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


DUMP_VERSIONS = (2, 3, 4)  # the formats before, and the one written now


def measure_restore(allocs: int, nodes: int, per_job: int, repeat: int) -> dict[str, dict[str, float]]:
    """Per dump version: encode CPU, bytes, and (in a fresh process) restore CPU and memory."""
    from nomadd.server.state.store_codec import write_dump

    base = _rss_now_mb()
    store, alloc_ids, _, _, _ = _fill(allocs, nodes, per_job, vary=True)
    del alloc_ids
    gc.collect()
    fresh = _rss_now_mb() - base
    snap = store.snapshot()
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-restore-") as tmp:
        for v in DUMP_VERSIONS:
            raw = 0

            def count(b: bytes) -> None:
                nonlocal raw
                raw += len(b)
                g.write(b)

            path = Path(tmp) / f"v{v}.gz"
            t = time.process_time()
            with open(path, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", compresslevel=1) as g:
                write_dump(snap, count, version=v)
            out[f"v{v}"] = {
                "encode_cpu_s": time.process_time() - t,
                "dump_raw_mb": raw / 1e6,
                "dump_gz_mb": path.stat().st_size / 1e6,
                "fresh_mb": fresh,
            }
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in out}
        for _ in range(repeat):
            for v in DUMP_VERSIONS:
                res = subprocess.run(
                    [
                        sys.executable,
                        str(Path(__file__).resolve()),
                        "--restore-child",
                        str(Path(tmp) / f"v{v}.gz"),
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                    env={**os.environ, "PYTHONPATH": str(ROOT)},
                )
                runs[f"v{v}"].append(json.loads(res.stdout))
    for name, col in out.items():
        for key in ("restore_cpu_s", "restore_wall_s", "restored_mb"):
            col[key] = min(run[key] for run in runs[name])  # the least: the others waited on the machine
        col["restored_per_fresh"] = col["restored_mb"] / fresh
    return out


def _restore_child(path: str) -> dict[str, float]:
    """Restore the dump file ``path`` into a new store, as a server loading its Raft dump does."""
    from nomadd.server.state import store_allocs, store_evals, store_jobs, store_nodes  # noqa: F401
    from nomadd.server.state.store import StateStore
    from nomadd.server.state.store_codec import decode_dump_stream, dump_reader

    base = _rss_now_mb()
    t, w = time.process_time(), time.perf_counter()
    with open(path, "rb") as f, gzip.GzipFile(fileobj=f) as g:
        decoded = decode_dump_stream(dump_reader(g))
    store = StateStore()
    store.install(decoded)
    del decoded
    cpu, wall = time.process_time() - t, time.perf_counter() - w
    assert len(store.snapshot().table("allocs")) > 0
    return {"restore_cpu_s": cpu, "restore_wall_s": wall, "restored_mb": _rss_now_mb() - base}


_RESTORE_ROWS = [
    ("encode_cpu_s", "encode + gzip CPU (s)"),
    ("dump_raw_mb", "dump (MB)"),
    ("dump_gz_mb", "dump gzip -1 (MB)"),
    ("restore_cpu_s", "restore CPU (s)"),
    ("restore_wall_s", "restore wall (s)"),
    ("fresh_mb", "fresh state RSS (MB)"),
    ("restored_mb", "restored state RSS (MB)"),
    ("restored_per_fresh", "restored / fresh"),
]

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
    ap.add_argument("--restore", action="store_true", help="restore cost of each dump version")
    ap.add_argument("--repeat", type=int, default=2, help="restores per version (--restore; the least)")
    ap.add_argument("--restore-child", help=argparse.SUPPRESS)  # a dump file to restore, alone
    opts = ap.parse_args()
    if opts.restore_child:
        sys.path.insert(0, str(ROOT))
        print(json.dumps(_restore_child(opts.restore_child)))
        return 0
    if opts.restore:
        sys.path.insert(0, str(ROOT))
        cols = measure_restore(opts.allocs, opts.nodes, opts.per_job, opts.repeat)
        if opts.json:
            print(json.dumps(cols, indent=2))
            return 0
        print(
            f"allocations {opts.allocs}  nodes {opts.nodes}  per job {opts.per_job}  restores {opts.repeat}"
        )
        print(f"{'':<28}" + "".join(f"{'version ' + name[1:]:>16}" for name in cols))
        for key, label in _RESTORE_ROWS:
            print(f"{label:<28}" + "".join(f"{col[key]:>16.3f}" for col in cols.values()))
        return 0
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
