#!/usr/bin/env python3
"""Bytes a server holds per stored allocation, in one process, deterministically (issue 15:
1,000,000 allocations in <= 2 GB per server).

The store is built the way a leader builds it: ``--nodes`` nodes (``NODE_REGISTER``) and
``--jobs`` service jobs of ``--count`` (``JOB_REGISTER``, the job of ``bench_schedule.py``)
through the real FSM, then every evaluation through the real service scheduler on a store
snapshot and the real plan applier (``PlanApplier``: checked plans, ``PLAN_RESULTS`` entries
naming the job by ``job_ref``) into ``FSM.apply``. As a leader the FSM applies the proposer's
own structs; with ``--follower`` every entry is encoded and decoded first, as a follower
applies it. No Raft, no sockets.

Printed, per allocation: the growth of the Python heap (tracemalloc) and of the RSS from the
empty process to the full store (nodes, jobs, evals and allocations: everything the server
holds for them), after ``gc.collect()``; then the same for a store restored from
``StateStore.dump`` (what a restarted or caught-up follower holds). Each figure comes from a
fresh process: the store built untraced (RSS), built traced (tracemalloc's own bookkeeping
would be most of an RSS figure), and each one's dump restored the same way. The restored RSS
includes what decoding the dump left behind (freed, not returned). ``--by-type`` adds what the
store's bytes are made of: every object reached from the tables once (shared objects count
once, where first reached; allocation tables last), by owning class and field.

With ``--cpu`` it measures CPU instead: the PLAN_RESULTS batches the plan applier checked while
building the store (``--nodes 1000 --allocs 10000``: the shape of ``scripts/bench schedule``) are
replayed into a fresh leader store and a fresh follower store, timing with CPU time, per 10,000
placements, best of ``--rounds``: the check (``PlanApplier._check``), ``FSM.encode``, the
leader's apply (the proposer's structs) and the follower's decode + apply. ``--stored N``
replays them into stores that hold ``N`` allocations already (written once with
``store_allocs.put_locked``, ``--count`` a job, spread evenly over the same nodes, no
resources so every placement still fits; each round's stores are O(1) copies of that one, the
tables being persistent maps): how the cost of a placement grows with the allocations stored
(issue 15: it must not). ``--compare REF`` alternates the measurement of git ``REF``'s nomadd
and this tree's, in child processes (the machine's speed drifts: before and after need the
same minutes).

Usage: scripts/bench_memory.py [--allocs 100000] [--nodes 5000] [--count 10] [--follower]
       [--by-type] [--json]
       scripts/bench_memory.py --cpu [--allocs 10000] [--nodes 1000] [--stored 0] [--rounds 5]
       [--compare REF]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import subprocess
import sys
import tarfile
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def measure() -> tuple[int, int]:
    """(traced heap bytes, RSS bytes) after a full collection."""
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else 0
    return traced, rss_bytes()


class _Leader:
    """The leader parts the scheduler and the plan applier talk to: the store, the FSM, a
    ``propose`` that applies at once (as the FSM does once Raft committed the entry)."""

    def __init__(self, follower: bool) -> None:
        from nomadd.server.fsm import FSM
        from nomadd.server.fsm.dispatch import entry_kinds
        from nomadd.server.state.store import StateStore

        self.store = StateStore()
        self.fsm = FSM(self.store, entry_kinds())
        self.follower = follower
        self.index = 0
        self.applier: Any = None
        self.log: list[tuple[str, Any]] | None = None  # see replay_cpu

    async def propose(self, msg_type: int, entry: object) -> tuple[object, int]:
        return self.apply(msg_type, entry), self.index

    def apply(self, msg_type: int, entry: object) -> object:
        from nomadd.structs.messages import MessageType

        if self.log is not None and msg_type != MessageType.PLAN_RESULTS:
            self.log.append(("entry", (msg_type, entry)))
        self.index += 1
        payload = self.fsm.encode(msg_type, entry)
        if not self.follower:
            self.fsm.expect(payload, entry)
        return self.fsm.apply(self.index, msg_type, payload)

    async def submit(self, ev: Any, token: str, plan: Any, evals: Sequence[Any]) -> Any:
        """worker.WorkerBackend.submit: plans and eval writes to the applier."""
        return await self.applier.submit(plan, evals)


def build(
    nodes: int, jobs: int, count: int, follower: bool, seed: int = 0, log: list[tuple[str, Any]] | None = None
) -> _Leader:
    """A store holding ``nodes`` nodes and ``jobs`` x ``count`` placed allocations. With ``log``,
    every entry but PLAN_RESULTS and every batch the plan applier checks is appended to it."""
    from bench_schedule import _job  # type: ignore[import-not-found]

    from nomadd.scheduler import SCHEDULERS
    from nomadd.scheduler.testing import mock_node
    from nomadd.server.alloc_endpoint import new_eval
    from nomadd.server.plan_apply import PlanApplier
    from nomadd.server.worker import MIN_WORKERS, _EvalPlanner, fresh_state
    from nomadd.structs.codec import from_api
    from nomadd.structs.eval import EvalTrigger
    from nomadd.structs.job import Job
    from nomadd.structs.messages import MessageType
    from nomadd.structs.requests.job import JobRegisterEntry
    from nomadd.structs.requests.node import NodeRegisterEntry

    rng = random.Random(seed)
    leader = _Leader(follower)
    leader.log = log
    now = 1_800_000_000 * 10**9
    for _ in range(nodes):
        node = mock_node(str(uuid.UUID(int=rng.getrandbits(128), version=4)))
        leader.apply(MessageType.NODE_REGISTER, NodeRegisterEntry(node=node, now_s=now // 10**9))
    evals = []
    for i in range(jobs):
        job = from_api(Job, _job(i, count)).canonicalize()
        ev = new_eval(
            job_id=job.id,
            namespace=job.namespace,
            job_type=str(job.type),
            priority=job.priority,
            trigger=EvalTrigger.JOB_REGISTER,
            now_ns=now,
        )
        result: Any = leader.apply(
            MessageType.JOB_REGISTER, JobRegisterEntry(job=job, eval=ev, submit_time=now)
        )
        evals.append(result.evals[0])

    async def schedule() -> None:
        leader.applier = (PlanApplier if log is None else _recording_applier())(leader)  # type: ignore[arg-type]
        if log is not None:
            leader.applier.log = log
        leader.applier.set_enabled(True)
        queue = iter(evals)

        async def worker() -> None:  # the server's workers: one eval at a time each
            for ev in queue:
                state = await fresh_state(leader.store, ev.modify_index)
                await SCHEDULERS[ev.type](state, _EvalPlanner(leader, ev, "")).process(ev)  # type: ignore[arg-type]

        await asyncio.gather(*(worker() for _ in range(MIN_WORKERS)))
        await leader.applier.shutdown()
        leader.applier = None

    asyncio.run(schedule())
    return leader


def by_type(tables: dict[str, dict[str, Any]]) -> dict[str, list[int]]:
    """``"<table>"`` / ``"<Class>.<field>"`` / ``"<type>"`` -> [bytes, objects]: every object
    reachable from the tables, counted once (where first reached, tables in sorted order)."""
    import dataclasses

    seen: set[int] = set()
    out: dict[str, list[int]] = {}

    def add(key: str, obj: object) -> bool:
        if id(obj) in seen:
            return False
        seen.add(id(obj))
        slot = out.setdefault(key, [0, 0])
        slot[0] += sys.getsizeof(obj)
        slot[1] += 1
        return True

    def walk(obj: object, where: str) -> None:
        stack = [(obj, where)]
        while stack:
            o, w = stack.pop()
            if o is None or isinstance(o, bool) or (isinstance(o, int) and -5 <= o <= 256):
                continue
            if dataclasses.is_dataclass(o) and not isinstance(o, type):
                if not add(type(o).__name__, o):
                    continue
                for f in dataclasses.fields(o):
                    stack.append((getattr(o, f.name), f"{type(o).__name__}.{f.name}"))
            elif isinstance(o, dict):
                if not add(f"{w} (dict)", o):
                    continue
                for k, v in o.items():
                    stack.append((k, f"{w} (key)"))
                    stack.append((v, w))
            elif isinstance(o, tuple | list | set | frozenset):
                if not add(f"{w} ({type(o).__name__})", o):
                    continue
                stack.extend((v, w) for v in o)
            else:
                add(f"{w} ({type(o).__name__})", o)

    for name in sorted(tables, key=lambda t: (t.startswith("alloc"), t)):  # allocations last
        rows = tables[name]
        add(f"table {name} (dict)", rows)
        for k, v in rows.items():
            walk(k, f"table {name} key")
            walk(v, f"table {name}")
    return out


def _store_tables(store: Any) -> dict[str, dict[str, Any]]:
    return dict(store._tables)  # every table of the store (read only)


def _allocs(store: Any) -> int:
    from nomadd.server.state import store_allocs

    return len(store.snapshot().table(store_allocs.TABLE))


def fresh(opts: argparse.Namespace, trace: bool, dump_to: str) -> dict[str, Any]:
    """Build the store in this process (traced or not: tracemalloc's own bookkeeping would be
    most of the RSS), measure it, and write its dump to ``dump_to`` when given."""
    build(10, 1, 1, opts.follower)  # every module imported and converter compiled before the base
    if trace:
        tracemalloc.start()
    base = measure()
    t0 = time.monotonic()
    leader = build(opts.nodes, opts.allocs // opts.count, opts.count, opts.follower)
    build_s = time.monotonic() - t0
    full = measure()
    n = _allocs(leader.store)
    out: dict[str, Any] = {"allocs": n, "build_s": round(build_s, 1)}
    out["traced_per_alloc" if trace else "rss_per_alloc"] = round(
        (full[int(not trace)] - base[int(not trace)]) / n
    )
    if trace:
        tracemalloc.stop()
    if opts.by_type:
        out["by_type"] = by_type(_store_tables(leader.store))
    if dump_to:
        t0 = time.monotonic()
        data = leader.store.dump()
        out["dump_s"] = round(time.monotonic() - t0, 1)
        out["dump_bytes"] = len(data)
        Path(dump_to).write_bytes(data)
    return out


def restored(path: str, trace: bool, with_types: bool) -> dict[str, Any]:
    """The store restored from a dump file, measured in this (fresh) process."""
    from nomadd.server.fsm.dispatch import entry_kinds  # noqa: F401  every table is registered
    from nomadd.server.state.store import StateStore

    if trace:
        tracemalloc.start()
    data = Path(path).read_bytes()
    base = measure()
    store = StateStore()
    t0 = time.monotonic()
    store.restore(data)
    restore_s = time.monotonic() - t0
    del data
    full = measure()
    size = Path(path).stat().st_size  # the dump bytes were held in ``base``, freed in ``full``
    n = _allocs(store)
    i = int(not trace)
    out: dict[str, Any] = {"allocs": n, "restore_s": round(restore_s, 1)}
    out["traced_per_alloc" if trace else "rss_per_alloc"] = round((full[i] - base[i] + size) / n)
    if trace:
        tracemalloc.stop()
    if with_types:
        out["by_type"] = by_type(_store_tables(store))
    return out


def _child(argv: list[str]) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, *argv], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"bench_memory {' '.join(argv)} failed:\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def run_all(opts: argparse.Namespace) -> dict[str, Any]:
    """Four fresh processes: the store built untraced (RSS) and traced (tracemalloc), and each
    one's dump restored the same way."""
    same = ["--allocs", str(opts.allocs), "--nodes", str(opts.nodes), "--count", str(opts.count)]
    same += ["--follower"] if opts.follower else []
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        dump = str(Path(tmp) / "dump")
        for trace in (False, True):
            flag = ["--trace"] if trace else []
            types = ["--by-type"] if opts.by_type and not trace else []
            built = _child([*same, *flag, *types, "--child-fresh", dump])
            back = _child([*flag, *types, "--child-restore", dump])
            for key, value in built.items():
                out.setdefault(key, value)
            out.setdefault("restored", {}).update({k: v for k, v in back.items() if k not in out["restored"]})
    return out


def _recording_applier() -> Any:
    """A PlanApplier that appends each batch it checks to its ``log`` (nomadd imported late)."""
    from nomadd.server.plan_apply import PlanApplier, _Pending

    class RecordingApplier(PlanApplier):
        log: list[tuple[str, Any]]

        def _check(self, batch: list[_Pending]) -> Any:
            self.log.append(("batch", [_Pending(p.plan, p.evals, None) for p in batch]))  # type: ignore[arg-type]
            return super()._check(batch)

    return RecordingApplier


def prefilled(log: list[tuple[str, Any]], stored: int, count: int) -> Any:
    """A store holding ``stored`` allocations of jobs of ``count``, spread evenly over the nodes
    ``log`` registers (see the module doc)."""
    from nomadd.server.state import store_allocs
    from nomadd.server.state.store import StateStore
    from nomadd.structs.alloc import Allocation
    from nomadd.structs.messages import MessageType

    nodes = [
        item[1].node.id for kind, item in log if kind == "entry" and item[0] == MessageType.NODE_REGISTER
    ]
    store = StateStore()
    batch = 10_000  # allocations a write
    for start in range(0, stored, batch):
        with store.write(start // batch + 1) as txn:
            for i in range(start, min(stored, start + batch)):
                job = f"prefill-{i // count}"
                alloc = Allocation(
                    id=str(uuid.UUID(int=i, version=4)),
                    name=f"{job}.web[{i % count}]",
                    node_id=nodes[i % len(nodes)],
                    job_id=job,
                    task_group="web",
                )
                store_allocs.put_locked(txn, alloc)
    return store


def _copy(base: Any) -> Any:
    """A store with ``base``'s rows: O(1), its tables are persistent maps (store.py)."""
    from nomadd.server.state.store import StateStore

    store = StateStore()
    store._tables, store._indexes, store._latest = dict(base._tables), dict(base._indexes), base._latest
    return store


def _replay_once(
    log: list[tuple[str, Any]], prof: Any, prof_step: str, base: Any = None
) -> tuple[dict[str, float], int]:
    """One replay of ``log`` into fresh stores (copies of ``base``, if given): CPU seconds of each
    step, and placements made."""
    from types import SimpleNamespace

    from nomadd.server.fsm import FSM
    from nomadd.server.fsm.dispatch import entry_kinds
    from nomadd.server.plan_apply import PlanApplier
    from nomadd.server.state.store import StateStore

    def fresh() -> Any:
        return StateStore() if base is None else _copy(base)

    leader, follower = FSM(fresh(), entry_kinds()), FSM(fresh(), entry_kinds())
    applier = PlanApplier(SimpleNamespace(store=leader.store))  # type: ignore[arg-type]
    spent = dict.fromkeys(("check", "encode", "apply_leader", "apply_follower", "gc"), 0.0)
    # The collector's time is a row of its own: a collection runs in whichever step allocates
    # past the threshold, and one full collection would swamp that step's figure.
    in_gc = [0.0, 0.0]  # [started, seconds so far]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            in_gc[0] = time.process_time()
        else:
            in_gc[1] += time.process_time() - in_gc[0]

    def timed(step: str, fn: Any, *args: Any) -> Any:
        t0, g0 = time.process_time(), in_gc[1]
        out = prof.runcall(fn, *args) if prof is not None and step == prof_step else fn(*args)
        collector = in_gc[1] - g0
        spent[step] += time.process_time() - t0 - collector
        spent["gc"] += collector
        return out

    gc.callbacks.insert(0, on_gc)
    try:
        placed = _replay_steps(log, leader, follower, applier, timed)
    finally:
        gc.callbacks.remove(on_gc)
    return spent, placed


def _replay_steps(log: list[tuple[str, Any]], leader: Any, follower: Any, applier: Any, timed: Any) -> int:
    from nomadd.structs.messages import MessageType

    # the entries keep the indexes they had when built (a plan names its job by the job's
    # modify index), after a prefill too: its rows are at indexes of their own, never compared
    placed = index = 0

    for kind, item in log:
        if kind == "entry":  # nodes and jobs: as the leader wrote them, not timed
            index += 1
            payload = leader.encode(*item)
            leader.expect(payload, item[1])
            leader.apply(index, item[0], payload)
            follower.apply(index, item[0], payload)
            continue
        request = timed("check", applier._check, item).request
        if request is None:
            continue
        index += 1
        payload = timed("encode", leader.encode, MessageType.PLAN_RESULTS, request)
        leader.expect(payload, request)
        placed += timed("apply_leader", leader.apply, index, MessageType.PLAN_RESULTS, payload).placed
        timed("apply_follower", follower.apply, index, MessageType.PLAN_RESULTS, payload)
    return placed


def replay_cpu(opts: argparse.Namespace) -> dict[str, float]:
    """CPU seconds per 10,000 placements of each step of the plan path (see the module doc)."""
    import cProfile

    import nomadd
    from nomadd.agent import runtime

    if opts.src and not nomadd.__file__.startswith(opts.src):
        raise RuntimeError(f"nomadd imported from {nomadd.__file__}, not from {opts.src}")
    log: list[tuple[str, Any]] = []
    build(opts.nodes, opts.allocs // opts.count, opts.count, False, log=log)
    base = prefilled(log, opts.stored, opts.count) if opts.stored else None
    gc.collect()
    runtime.install()  # the agent's GC policy (young generations frozen once large)
    if opts.no_gc:
        gc.disable()
    prof = cProfile.Profile() if opts.profile else None
    best: dict[str, float] = {}
    for _ in range(opts.rounds):
        spent, placed = _replay_once(log, prof, opts.profile, base)
        for step, cpu in spent.items():
            best[step] = min(best.get(step, cpu), cpu * 10_000 / max(1, placed))
    best["leader"] = best["check"] + best["encode"] + best["apply_leader"]  # without the collector
    if prof is not None:
        import pstats

        pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(30)
    return best


def _cpu_child(src: str, argv: list[str]) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": src}
    proc = subprocess.run(
        [sys.executable, __file__, *argv, "--src", src, "--json"], capture_output=True, text=True, env=env
    )
    if proc.returncode != 0:
        raise RuntimeError(f"bench_memory --cpu failed:\n{proc.stderr}")
    result: dict[str, float] = json.loads(proc.stdout)
    return result


def compare_cpu(opts: argparse.Namespace, argv: list[str]) -> dict[str, dict[str, float]]:
    """``replay_cpu`` of git ``opts.compare``'s nomadd and of this tree's, alternated
    ``opts.repeat`` times in child processes; the best of each."""
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", opts.compare, "nomadd"], check=True, capture_output=True
        ).stdout
        tar_path = Path(tmp) / "src.tar"
        tar_path.write_bytes(archive)
        with tarfile.open(tar_path) as tar:
            tar.extractall(tmp, filter="data")
        for _ in range(opts.repeat):
            for name, src in ((opts.compare, tmp), ("this tree", str(ROOT))):
                got = _cpu_child(src, argv)
                col = out.setdefault(name, got)
                for step, cpu in got.items():
                    col[step] = min(col[step], cpu)
    return out


def _print_cpu(opts: argparse.Namespace, columns: dict[str, dict[str, float]]) -> None:
    print(
        f"plan path CPU (ms per 10,000 placements, best of {opts.rounds}): {opts.allocs:,} allocations "
        f"on {opts.nodes:,} nodes, {opts.count} per job, {opts.stored:,} stored before"
    )
    print(f"{'':<16}" + "".join(f"{name:>14}" for name in columns))
    for step in next(iter(columns.values())):
        print(f"{step:<16}" + "".join(f"{col[step] * 1e3:>14.1f}" for col in columns.values()))


def _print_types(title: str, rows: dict[str, list[int]], n: int, top: int) -> None:
    total = sum(b for b, _ in rows.values())
    print(f"  {title}: {total / n:,.0f} bytes/alloc reachable from the tables (sys.getsizeof, shared once)")
    for key, (b, count) in sorted(rows.items(), key=lambda kv: -kv[1][0])[:top]:
        print(f"    {b / n:8.1f} B/alloc  {count:>9,} objects  {key}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--allocs", type=int, default=100_000)
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--count", type=int, default=10, help="allocations per job")
    ap.add_argument("--follower", action="store_true", help="decode every entry (a follower's objects)")
    ap.add_argument("--by-type", action="store_true", help="what the bytes are made of")
    ap.add_argument("--top", type=int, default=30, help="rows of --by-type")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--cpu", action="store_true", help="CPU of the plan path instead (see above)")
    ap.add_argument("--rounds", type=int, default=5, help="--cpu: replays, best of")
    ap.add_argument("--stored", type=int, default=0, help="--cpu: allocations stored before the replay")
    ap.add_argument("--compare", metavar="REF", help="--cpu: also git REF's nomadd, alternated")
    ap.add_argument("--repeat", type=int, default=3, help="--compare: alternations")
    ap.add_argument("--no-gc", action="store_true", help="--cpu: collector off while replaying")
    ap.add_argument("--profile", metavar="STEP", help="--cpu: cProfile one step (check, encode...)")
    ap.add_argument("--src", help=argparse.SUPPRESS)  # the nomadd tree to import (--compare)
    ap.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)  # child processes:
    ap.add_argument("--child-fresh", default="", help=argparse.SUPPRESS)
    ap.add_argument("--child-restore", default="", help=argparse.SUPPRESS)
    opts = ap.parse_args()
    if opts.src:
        import bench_schedule  # noqa: F401  # it puts this work tree first on sys.path: src goes before

        sys.path.insert(0, opts.src)
    if opts.cpu:
        if "--allocs" not in sys.argv:
            opts.allocs = 10_000
        if "--nodes" not in sys.argv:
            opts.nodes = 1000
        argv = ["--cpu", f"--allocs={opts.allocs}", f"--nodes={opts.nodes}", f"--count={opts.count}"]
        argv += [f"--rounds={opts.rounds}", f"--stored={opts.stored}", *(["--no-gc"] if opts.no_gc else [])]
        columns = compare_cpu(opts, argv) if opts.compare else {"this tree": replay_cpu(opts)}
        if opts.json:
            print(json.dumps(columns[next(iter(columns))] if len(columns) == 1 else columns, indent=2))
        else:
            _print_cpu(opts, columns)
        return 0
    if opts.child_fresh:
        print(json.dumps(fresh(opts, opts.trace, opts.child_fresh)))
        return 0
    if opts.child_restore:
        print(json.dumps(restored(opts.child_restore, opts.trace, opts.by_type)))
        return 0
    res = run_all(opts)
    if opts.json:
        print(json.dumps(res, indent=2))
        return 0
    n, back = res["allocs"], res["restored"]
    role = "follower (decoded entries)" if opts.follower else "leader (proposer's structs)"
    print(
        f"memory: {n:,} allocations on {opts.nodes:,} nodes, {opts.count} per job, as a {role}; "
        f"built in {res['build_s']} s"
    )
    print(
        f"  fresh:    {res['traced_per_alloc']:,} B/alloc traced (tracemalloc), "
        f"{res['rss_per_alloc']:,} B/alloc RSS"
    )
    print(
        f"  restored: {back['traced_per_alloc']:,} B/alloc traced, {back['rss_per_alloc']:,} B/alloc RSS "
        f"(dump {res['dump_bytes'] / n:,.0f} B/alloc, dumped in {res['dump_s']} s, "
        f"restored in {back['restore_s']} s)"
    )
    if opts.by_type:
        _print_types("fresh", res["by_type"], n, opts.top)
        _print_types("restored", back["by_type"], n, opts.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
