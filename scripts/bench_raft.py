#!/usr/bin/env python3
"""Raft write throughput: nomadd's apply path vs raw pysyncobj, same 3-node layout, same run.

Three node processes on 127.0.0.1 (spawned, no fork), the same pysyncobj settings (password,
appendEntriesUseBatch=False, the timers of ``nomadd.server.raft.RaftConfig``). The load runs on
the leader:

* raw: a ``SyncObj`` subclass with one ``@replicated set(key, value)``, writes issued with
  ``callback=`` and at most ``concurrency`` in flight (``sync=True`` when concurrency is 1);
* nomadd: ``await Raft.apply(VAR_UPSERT, msgpack payload)`` from the asyncio loop, the FSM
  decoding it and writing the state store (Variables table), ``concurrency`` coroutines, with
  the journal on disk (``--dir``) and durable: entries fsync'ed before they are acknowledged;
* nomadd without fsync: the same, with the test-only switch that turns raft's fsyncs off.

raw pysyncobj keeps its log in memory (its file journal is not durable anyway). Prints committed
writes/s for the three, the ratio nomadd/raw (goal >= 0.5) and the ratio durable/no-fsync
(what durability costs), per concurrency. Each layout runs ``--rounds`` times, alternating (the
machine's other load hits all alike); the median run per concurrency is reported.
Usage: scripts/bench_raft.py [--writes N] [--concurrency 1,32] [--rounds 3] [--dir D] [--json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PASSWORD = "bench-raft-secret-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _windowed(node: Any, success: int, n: int, conc: int, prefix: str, value: bytes) -> int:
    """Issue ``n`` raw writes with at most ``conc`` in flight; returns the number of errors."""
    sem = threading.Semaphore(conc)
    done = threading.Event()
    count = [0, 0]
    lock = threading.Lock()

    def cb(res: Any, err: int) -> None:
        with lock:
            count[0] += 1
            if err != success:
                count[1] += 1
            if count[0] == n:
                done.set()
        sem.release()

    for i in range(n):
        sem.acquire()
        node.set(f"{prefix}{i}", value, callback=cb)
    done.wait(120)
    return count[1] + (n - count[0])


def _raw_worker(conn: Connection, self_addr: str, partners: list[str]) -> None:
    import logging

    logging.basicConfig(level=logging.ERROR)
    from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, replicated

    from nomadd.server.raft import RaftConfig

    c = RaftConfig(self_addr=self_addr, bind_addr=self_addr, password=PASSWORD)

    class Node(SyncObj):  # type: ignore[misc]
        def __init__(self) -> None:
            self.data: dict[str, bytes] = {}
            conf = SyncObjConf(
                password=PASSWORD,
                bindAddress=self_addr,
                appendEntriesUseBatch=False,
                connectionRetryTime=c.connection_retry_s,
                connectionTimeout=c.connection_timeout_s,
                leaderFallbackTimeout=c.leader_fallback_s,
                raftMinTimeout=c.election_min_s,
                raftMaxTimeout=c.election_max_s,
                appendEntriesPeriod=c.append_entries_period_s,
                dynamicMembershipChange=True,
                useFork=False,
            )
            super().__init__(self_addr, partners, conf=conf)

        @replicated  # type: ignore[misc]
        def set(self, key: str, value: bytes) -> int:
            self.data[key] = value
            return len(self.data)

    node = Node()
    conn.send("up")
    while True:
        cmd, args = conn.recv()
        if cmd == "leader":
            conn.send(bool(node._isLeader()))
        elif cmd == "bench":
            n, conc, size, prefix = args
            value = b"x" * size
            t0 = time.monotonic()
            errors = 0
            if conc == 1:
                for i in range(n):
                    try:
                        node.set(f"{prefix}{i}", value, sync=True, timeout=10)
                    except Exception:
                        errors += 1
            else:
                errors = _windowed(node, FAIL_REASON.SUCCESS, n, conc, prefix, value)
            conn.send({"elapsed": time.monotonic() - t0, "errors": errors})
        elif cmd == "stop":
            node.destroy()
            conn.send("bye")
            return


def _nomadd_worker(conn: Connection, self_addr: str, partners: list[str], data_dir: str, fsync: bool) -> None:
    import asyncio
    import logging

    logging.basicConfig(level=logging.ERROR)
    from nomadd.server.fsm import FSM
    from nomadd.server.fsm.dispatch import entry_kinds
    from nomadd.server.raft import Raft, RaftConfig
    from nomadd.server.raft.journal import FSYNC_ENV
    from nomadd.server.state.store import StateStore
    from nomadd.structs.codec import pack
    from nomadd.structs.messages import MessageType
    from nomadd.structs.requests.variables import VarUpsertEntry

    os.environ[FSYNC_ENV] = "1" if fsync else "0"

    async def main() -> None:
        raft = Raft(
            RaftConfig(
                self_addr=self_addr,
                bind_addr=self_addr,
                password=PASSWORD,
                peers=tuple(partners),
                data_dir=Path(data_dir),
            ),
            FSM(StateStore(), entry_kinds()),
        )
        await raft.start()
        loop = asyncio.get_running_loop()
        conn.send("up")
        while True:
            cmd, args = await loop.run_in_executor(None, conn.recv)
            if cmd == "leader":
                conn.send(raft.is_leader())
            elif cmd == "bench":
                n, conc, size, prefix = args
                queue = iter(range(n))
                value = "x" * size

                async def writer(queue: Any = queue, prefix: str = prefix, value: str = value) -> int:
                    failed = 0
                    for i in queue:
                        req = VarUpsertEntry(  # the sealed items an endpoint proposes
                            namespace="default",
                            path=f"{prefix}{i}",
                            key_id="bench",
                            data=value.encode(),
                            time=i,
                        )
                        try:
                            await raft.apply(MessageType.VAR_UPSERT, pack(req))
                        except Exception:
                            failed += 1
                    return failed

                t0 = time.monotonic()
                errors = sum(await asyncio.gather(*(writer() for _ in range(conc))))
                conn.send({"elapsed": time.monotonic() - t0, "errors": errors})
            elif cmd == "stop":
                await raft.shutdown()
                conn.send("bye")
                return

    asyncio.run(main())


MODES = ("raw", "nomadd", "nomadd-nofsync")


def _run_layout(mode: str, writes: int, concurrencies: list[int], size: int, base: str) -> dict[int, Any]:
    ctx = mp.get_context("spawn")
    addrs = [f"127.0.0.1:{_free_port()}" for _ in range(3)]
    conns: list[Connection] = []
    procs = []
    tmp = tempfile.mkdtemp(prefix=f"bench-raft-{mode}-", dir=base)
    try:
        for i, a in enumerate(addrs):
            parent, child = ctx.Pipe()
            partners = [x for x in addrs if x != a]
            if mode == "raw":
                p = ctx.Process(target=_raw_worker, args=(child, a, partners))
            else:
                data_dir = os.path.join(tmp, f"n{i}")
                args = (child, a, partners, data_dir, mode == "nomadd")
                p = ctx.Process(target=_nomadd_worker, args=args)
            p.start()
            procs.append(p)
            conns.append(parent)
        for c in conns:
            if not c.poll(30) or c.recv() != "up":
                raise RuntimeError(f"{mode} node did not start")
        deadline = time.monotonic() + 30
        leader = None
        while leader is None:
            for c in conns:
                c.send(("leader", None))
                if c.recv():
                    leader = c
            if time.monotonic() > deadline:
                raise RuntimeError(f"{mode}: no leader in 30 s")
            time.sleep(0.05)
        leader.send(("bench", (min(200, writes), 8, size, "warmup-")))
        leader.recv()
        results: dict[int, Any] = {}
        for conc in concurrencies:
            leader.send(("bench", (writes, conc, size, f"c{conc}-")))
            r = leader.recv()
            r["ops_per_s"] = writes / r["elapsed"]
            results[conc] = r
        for c in conns:
            c.send(("stop", None))
            if c.poll(10):
                c.recv()
        return results
    finally:
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join(5)
        shutil.rmtree(tmp, ignore_errors=True)


def _median(runs: list[dict[int, Any]], concs: list[int]) -> dict[int, Any]:
    """Per concurrency, the run with the median throughput (its errors kept with it)."""
    out: dict[int, Any] = {}
    for c in concs:
        ordered = sorted((r[c] for r in runs), key=lambda r: r["ops_per_s"])
        out[c] = ordered[len(ordered) // 2]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--writes", type=int, default=3000)
    ap.add_argument("--concurrency", default="1,32")
    ap.add_argument("--size", type=int, default=100, help="value bytes per write")
    ap.add_argument("--rounds", type=int, default=3, help="alternating raw/nomadd runs")
    ap.add_argument("--dir", default=str(ROOT), help="where the journals go (a real disk, not tmpfs)")
    ap.add_argument("--json", action="store_true")
    opts = ap.parse_args()
    concs = [int(x) for x in opts.concurrency.split(",") if x]
    runs: dict[str, list[dict[int, Any]]] = {m: [] for m in MODES}
    for _ in range(opts.rounds):  # alternate, so background load hits all alike
        for mode in MODES:
            runs[mode].append(_run_layout(mode, opts.writes, concs, opts.size, opts.dir))
    raw = _median(runs["raw"], concs)
    ours = _median(runs["nomadd"], concs)
    nofsync = _median(runs["nomadd-nofsync"], concs)
    report = {
        "writes": opts.writes,
        "rounds": opts.rounds,
        "size": opts.size,
        "cpus": os.cpu_count(),
        "results": [
            {
                "concurrency": c,
                "raw_ops_per_s": round(raw[c]["ops_per_s"], 1),
                "nomadd_ops_per_s": round(ours[c]["ops_per_s"], 1),
                "nomadd_nofsync_ops_per_s": round(nofsync[c]["ops_per_s"], 1),
                "ratio": round(ours[c]["ops_per_s"] / raw[c]["ops_per_s"], 3),
                "durable_ratio": round(ours[c]["ops_per_s"] / nofsync[c]["ops_per_s"], 3),
                "raw_errors": raw[c]["errors"],
                "nomadd_errors": ours[c]["errors"],
                "nomadd_nofsync_errors": nofsync[c]["errors"],
            }
            for c in concs
        ],
    }
    if opts.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"raft write throughput, 3 nodes on 127.0.0.1, {opts.writes} writes of {opts.size} B, "
        f"median of {opts.rounds} alternating rounds, load average {os.getloadavg()[0]:.1f}"
    )
    print("nomadd = durable journal on disk (fsync before ack); no-fsync = test-only switch off")
    print(
        f"{'in flight':>10} {'raw pysyncobj/s':>16} {'nomadd apply/s':>15} {'no-fsync/s':>11} "
        f"{'nomadd/raw':>11} {'fsync on/off':>13}"
    )
    for r in report["results"]:
        assert isinstance(r, dict)
        print(
            f"{r['concurrency']:>10} {r['raw_ops_per_s']:>16.1f} {r['nomadd_ops_per_s']:>15.1f} "
            f"{r['nomadd_nofsync_ops_per_s']:>11.1f} {r['ratio']:>11.2f} {r['durable_ratio']:>13.2f}"
            + ("" if r["ratio"] >= 0.5 else "  (below goal 0.5)")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
