#!/usr/bin/env python3
"""Scheduling throughput of a real 3-server cluster vs the raw Raft commit rate, same run.

1. Raft baseline: ``scripts/bench_raft.py``'s measuring function (3 pysyncobj processes on
   127.0.0.1, raw ``@replicated`` writes and nomadd's apply path, ``--raft-writes`` each).
2. Scheduler alone: ``nomadd.scheduler.bench`` (the service scheduler + an in-memory plan
   applier, one process, no Raft): the ceiling of the scheduling code itself.
3. Cluster: 3 ``nomadd agent`` server processes (tests/integration/cluster.py), ``--nodes``
   simulated nodes registered through the internal RPC (``Node.Register`` + ``Node.UpdateStatus``,
   no tasks; long ``min_heartbeat_ttl`` and ``failover_heartbeat_ttl`` so no node expires mid-run,
   even after a leader change), then ``--jobs`` service
   jobs of ``--count`` allocations registered with ``PUT /v1/jobs`` on the leader
   (``--inflight`` at once). The clock runs from the first register until the leader's
   ``nomad.nomad.plan.placements_committed`` gauge (``/v1/metrics``, polled every 50 ms) has
   counted every placement: the leader applies an entry only once a majority holds it. Then,
   untimed, a follower (``?stale``) must show every placement in its job summaries.

The cluster part runs ``--rounds`` times (3), each on a fresh cluster, because these shared
machines change speed by ±20 % from one run to the next; every round is printed and the median
round is the figure. Prints it beside the Raft rates (and as a ratio to them), plus where the
entries went (Raft entries per job) and the leader's CPU time.
Usage: scripts/bench_schedule.py [--nodes 1000] [--jobs 1000] [--count 10] [--rounds 3] [--json]
       [--secure | --secure-only]   (bench_secure.py: ACLs + mutual TLS off, then on; the ratio)
       --c1m [--nodes 5000] [--jobs 100000] [--alone-jobs 2000] [--op-timeout 300] [--json]
             Nomad's C1M shape in one round and what holding it costs (scripts/bench_c1m.py)
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GOAL_PER_S = 3750.0  # Nomad's C1M: 1,000,000 containers in under 5 minutes


def _bench_raft() -> Any:
    """scripts/bench_raft.py as the module ``bench_raft`` (its worker functions must be
    importable by name in the spawned node processes)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import bench_raft  # type: ignore[import-not-found]

    return bench_raft


def raft_baseline(writes: int) -> dict[str, float]:
    mod = _bench_raft()
    out: dict[str, float] = {}
    for mode in ("raw", "nomadd"):
        res = mod._run_layout(mode, writes, [1, 32], 100, str(ROOT))  # journals on a real disk
        out[f"{mode}_c1"] = writes / res[1]["elapsed"]
        out[f"{mode}_c32"] = writes / res[32]["elapsed"]
    return out


def scheduler_alone(nodes: int, jobs: int, count: int) -> float:
    from nomadd.helper.gc_policy import GC_THRESHOLDS
    from nomadd.scheduler.bench import bench_schedule

    return bench_schedule(nodes=nodes, jobs=jobs, count=count, gc_thresholds=GC_THRESHOLDS).placements_per_s


def _new_node() -> Any:
    from nomadd.scheduler.testing import mock_node
    from nomadd.structs.node import NodeStatus

    return dataclasses.replace(mock_node(str(uuid.uuid4())), status=NodeStatus.INITIALIZING)


def _job(i: int, count: int, cpu: int = 100, memory_mb: int = 64) -> dict[str, Any]:
    return {
        "ID": f"bench-{i}",
        "Type": "service",
        "Datacenters": ["dc1"],
        "TaskGroups": [
            {
                "Name": "g",
                "Count": count,
                "Tasks": [
                    {
                        "Name": "t",
                        "Driver": "raw_exec",
                        "Config": {"command": "/bin/true"},
                        "Resources": {"CPU": cpu, "MemoryMB": memory_mb},
                    }
                ],
            }
        ],
    }


async def run_pool(n: int, limit: int, work: Callable[[int], Awaitable[None]]) -> None:
    """``work(i)`` for i in 0..n-1, at most ``limit`` at once: ``limit`` workers share one
    counter, so nothing is held per item (no list of n coroutines)."""
    it = iter(range(n))

    async def worker() -> None:
        for i in it:
            await work(i)

    await asyncio.gather(*(worker() for _ in range(min(limit, n))))


class ClusterCalls:
    """The load generator's calls on one cluster over one aiohttp session: simulated nodes
    through the internal RPC, job registers, the leader's committed-placements gauge."""

    def __init__(self, http: Any, leader: Any) -> None:
        self.http = http
        self.leader = leader

    async def rpc(self, method: str, request: object, node: Any) -> Any:
        """The wire form of ``method``'s reply to the typed ``request``, sent as ``node``."""
        from bench_secure import node_headers

        from nomadd.rpc.wire import MSGPACK_CONTENT_TYPE, decode, encode_request

        async with self.http.post(
            f"{self.leader.url}/v1/internal/{method}",
            data=encode_request(request),
            headers={"Content-Type": MSGPACK_CONTENT_TYPE, **node_headers(node.id, node.secret_id)},
        ) as resp:
            reply = decode(await resp.read())
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["ok"]

    async def add_node(self) -> None:
        """One simulated node registered and turned ready (no tasks)."""
        from nomadd.structs.node import NodeStatus
        from nomadd.structs.requests.node import (
            NODE_REGISTER,
            NODE_UPDATE_STATUS,
            NodeRegisterRequest,
            NodeUpdateStatusRequest,
        )

        node = _new_node()
        await self.rpc(NODE_REGISTER.name, NodeRegisterRequest(node=node), node)
        ready = NodeUpdateStatusRequest(node_id=node.id, secret_id=node.secret_id, status=NodeStatus.READY)
        await self.rpc(NODE_UPDATE_STATUS.name, ready, node)

    async def index_of(self, agent: Any, timeout: float = 30.0) -> int:
        """``agent``'s Raft applied index (``/v1/agent/self``)."""
        import aiohttp

        async with self.http.get(
            f"{agent.url}/v1/agent/self", timeout=aiohttp.ClientTimeout(total=timeout)
        ) as resp:
            stats = (await resp.json())["stats"]
        return int(stats["raft"]["applied_index"])

    async def gauges(self, timeout: float = 300.0, agent: Any = None) -> dict[str, float]:
        """Every gauge of ``agent`` (the leader), name -> value (``/v1/metrics``)."""
        import aiohttp

        async with self.http.get(
            f"{(agent or self.leader).url}/v1/metrics", timeout=aiohttp.ClientTimeout(total=timeout)
        ) as resp:
            return {g["Name"]: g["Value"] for g in (await resp.json())["Gauges"]}

    async def committed(self, timeout: float = 300.0, agent: Any = None) -> int:
        """The ``nomad.nomad.plan.placements_committed`` gauge of ``agent`` (the leader): the
        placements of every plan result it has applied (replicated: the cluster's count)."""
        return int((await self.gauges(timeout, agent))["nomad.nomad.plan.placements_committed"])

    async def register(self, job: dict[str, Any], timeout: float = 300.0) -> None:
        """``PUT /v1/jobs`` on the leader; a non-200 answer raises RuntimeError."""
        import aiohttp

        async with self.http.put(
            f"{self.leader.url}/v1/jobs", json={"Job": job}, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as resp:
            if resp.status != 200:
                raise RuntimeError(f"register {job['ID']}: {resp.status} {(await resp.text())[:300]}")


async def _cluster_run(
    leader: Any, follower: Any, others: list[Any], opts: argparse.Namespace, access: Any
) -> dict[str, Any]:
    import aiohttp

    async with aiohttp.ClientSession(connector=access.connector(), headers=access.headers()) as http:
        calls = ClusterCalls(http, leader)
        t_nodes = time.monotonic()
        await run_pool(opts.nodes, 64, lambda _: calls.add_node())
        nodes_s = time.monotonic() - t_nodes

        opts.start_spy()
        start_index = await calls.index_of(leader)
        cpu0 = _cpu_seconds(leader)
        others0 = [_cpu_seconds(o) for o in others]
        self0 = _self_cpu_seconds()
        expected = opts.jobs * opts.count
        t0 = time.monotonic()
        submit_done = 0.0

        async def submit_all() -> None:
            nonlocal submit_done
            await run_pool(
                opts.jobs,
                opts.inflight,
                lambda i: calls.register(_job(i, opts.count, opts.cpu, opts.memory_mb)),
            )
            submit_done = time.monotonic() - t0

        async def placed() -> int:
            async with http.get(
                f"{follower.url}/v1/jobs", params={"stale": "true", "prefix": "bench-"}
            ) as resp:
                jobs = await resp.json()
            return sum(
                s.get("Starting", 0) + s.get("Running", 0)
                for j in jobs
                for s in ((j.get("JobSummary") or {}).get("Summary") or {}).values()
            )

        base = await calls.committed()
        submitter = asyncio.ensure_future(submit_all())
        samples: list[tuple[float, int]] = []
        count = 0
        deadline = t0 + opts.timeout
        while time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            count = await calls.committed() - base
            samples.append((round(time.monotonic() - t0, 2), count))
            if count >= expected:
                break
        elapsed = time.monotonic() - t0
        await submitter
        seen = 0
        while time.monotonic() < deadline:  # not timed: every placement also reached a follower
            seen = await placed()
            if seen >= expected:
                break
            await asyncio.sleep(0.1)
        end_index = await calls.index_of(leader)
        cpu1 = _cpu_seconds(leader)
        others_cpu = [round(_cpu_seconds(o) - c0, 2) for o, c0 in zip(others, others0, strict=True)]
        self_cpu = round(_self_cpu_seconds() - self0, 2)
        async with http.get(f"{follower.url}/v1/evaluations", params={"stale": "true"}) as resp:
            evals = await resp.json()
        async with http.get(f"{follower.url}/v1/nodes", params={"stale": "true"}) as resp:
            nodes = await resp.json()
        triggers: dict[str, int] = {}
        for e in evals:
            key = f"{e['TriggeredBy']}/{e['Status']}"
            triggers[key] = triggers.get(key, 0) + 1
        node_status: dict[str, int] = {}
        for n in nodes:
            node_status[n["Status"]] = node_status.get(n["Status"], 0) + 1
        return {
            "nodes_register_s": round(nodes_s, 2),
            "submit_s": round(submit_done, 2),
            "elapsed_s": round(elapsed, 2),
            "placed": count,
            "follower_placed": seen,
            "expected": expected,
            "placements_per_s": round(count / elapsed, 1),
            "raft_entries": end_index - start_index,
            "leader_cpu_s": round(cpu1 - cpu0, 2),
            "followers_cpu_s": others_cpu,
            "bench_cpu_s": self_cpu,
            "evals": triggers,
            "nodes": node_status,
            "samples": samples[:: max(1, len(samples) // 20)],
        }


def _self_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def _cpu_seconds(agent: Any) -> float:
    try:
        import psutil

        t = psutil.Process(agent.proc.proc.pid).cpu_times()
        return float(t.user + t.system)
    except Exception:
        return 0.0


def _scheduler_split() -> dict[str, int]:
    """``BENCH_SCHEDULERS=<leader>,<follower>``: the servers' ``leader_schedulers`` and
    ``follower_schedulers`` (unset: the defaults), to compare splits of the workers."""
    split = os.environ.get("BENCH_SCHEDULERS", "")
    if not split:
        return {}
    leader, follower = (int(x) for x in split.split(","))
    return {"leader_schedulers": leader, "follower_schedulers": follower}


def start_servers(c: Any, secure: bool = False, log_level: str = "WARN") -> tuple[list[Any], Any]:
    """3 linked server agents of cluster ``c`` started (WARN logs; no simulated node expires
    mid-run); returns them and their leader."""
    import bench_secure

    extra = bench_secure.server_extra(
        {
            "log_level": log_level,
            # simulated nodes never heartbeat: a new leader gives every node failover_heartbeat_ttl
            # (5 min) to heartbeat, so after a leader change they would all go down mid-run
            "server": {
                "min_heartbeat_ttl": "3600s",
                "heartbeat_grace": "600s",
                "failover_heartbeat_ttl": "3600s",
                **_scheduler_split(),
            },
        },
        secure,
    )
    servers = [c.add_server(bootstrap_expect=3, extra=extra) for _ in range(3)]
    c.link(servers)
    for s in servers:
        s.start()
    return servers, c.wait_leader(servers, timeout=60)


def cluster(opts: argparse.Namespace, secure: bool) -> dict[str, Any]:
    import bench_secure

    with tempfile.TemporaryDirectory(prefix="bench-schedule-") as tmp:
        c = bench_secure.new_cluster(Path(tmp), secure)
        try:
            servers, leader = start_servers(c, secure)
            follower = next(s for s in servers if s is not leader)
            access = bench_secure.access(c, leader, secure)
            spies: list[subprocess.Popen[bytes]] = []

            def start_spy() -> None:  # after the nodes are registered: profile the run only
                if opts.py_spy and not opts.spied:
                    opts.spied = True
                    targets = [(leader, opts.profile_out), (follower, opts.profile_out + ".follower")]
                    for agent, out in targets[: 2 if opts.py_spy_follower else 1]:
                        assert agent.proc is not None
                        argv = [opts.py_spy, "record", "--nonblocking", "--gil", "--format", "raw"]
                        argv += ["-r", str(opts.py_spy_rate), "-o", out, "--pid", str(agent.proc.proc.pid)]
                        spies.append(
                            subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                        )

            opts.start_spy = start_spy
            try:
                others = [s for s in servers if s is not leader]
                return asyncio.run(_cluster_run(leader, follower, others, opts, access))
            finally:
                for spy in spies:
                    spy.send_signal(signal.SIGINT)
                    spy.wait(30)
        finally:
            c.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--c1m", action="store_true", help="the C1M shape and its costs (scripts/bench_c1m.py)")
    ap.add_argument("--nodes", type=int, help="simulated nodes (1000; --c1m: 5000)")
    ap.add_argument("--jobs", type=int, help="service jobs (1000; --c1m: 100000)")
    ap.add_argument("--count", type=int, help="allocations per job (10)")
    ap.add_argument("--cpu", type=int, help="MHz per allocation (100; --c1m: 10)")
    ap.add_argument("--memory-mb", type=int, help="MB per allocation (64; --c1m: 10)")
    ap.add_argument("--inflight", type=int, default=32, help="job registers in flight")
    ap.add_argument("--raft-writes", type=int, default=3000)
    ap.add_argument("--timeout", type=float, help="seconds the placements may take (600; --c1m: 900)")
    ap.add_argument("--poll", type=float, default=0.2, help="--c1m: seconds between gauge polls")
    ap.add_argument(
        "--register-timeout", type=float, default=120.0, help="--c1m: seconds one register may take"
    )
    ap.add_argument(
        "--op-timeout", type=float, default=300.0, help="--c1m: seconds each save/restore/... may take"
    )
    ap.add_argument(
        "--alone-nodes", type=int, default=1000, help="--c1m: the scheduler alone's small node count"
    )
    ap.add_argument(
        "--alone-jobs", type=int, default=2000, help="--c1m: jobs of the scheduler alone (both sizes)"
    )
    ap.add_argument(
        "--alone-rounds",
        type=int,
        default=2,
        help="--c1m: scheduler alone rounds per size (best; 0: skip it)",
    )
    ap.add_argument(
        "--skip-ops", action="store_true", help="--c1m: no snapshot save/restore, catch-up or restart"
    )
    ap.add_argument(
        "--save-state", default="", help="--c1m: keep the state after the placements in this new dir"
    )
    ap.add_argument("--from-state", default="", help="--c1m: no placements; start from a --save-state dir")
    ap.add_argument(
        "--place",
        action="store_true",
        help="--c1m --from-state: place --jobs more jobs on the kept state first",
    )
    ap.add_argument("--job-offset", type=int, default=0, help="--c1m: the first job's number (bench-N)")
    ap.add_argument("--logs", default="", help="--c1m: write every agent's output to this dir at the end")
    ap.add_argument("--log-level", default="WARN", help="--c1m: the servers' log level")
    ap.add_argument(
        "--ops",
        default="snapshot_save,catch_up,restart,snapshot_restore",
        help="--c1m: the steps after the run, in their order (a subset)",
    )
    ap.add_argument("--skip-raft", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument(
        "--py-spy",
        default="",
        help="path of py-spy: profile the leader during the run (GIL holder only: where its CPU goes)",
    )
    ap.add_argument("--py-spy-rate", type=int, default=100, help="py-spy samples per second")
    ap.add_argument(
        "--py-spy-follower", action="store_true", help="also profile one follower (to PROFILE_OUT.follower)"
    )
    ap.add_argument(
        "--profile-out", default="/tmp/bench-schedule-leader.txt", help="py-spy raw (collapsed) output"
    )
    ap.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="cluster runs, each on a fresh cluster; the median is the figure",
    )
    import bench_secure

    bench_secure.add_mode_args(ap)
    opts = ap.parse_args()
    if opts.c1m:
        import bench_c1m  # type: ignore[import-not-found]

        return int(bench_c1m.main(opts))
    for name, value in (("nodes", 1000), ("jobs", 1000), ("count", 10), ("cpu", 100), ("memory_mb", 64)):
        if getattr(opts, name) is None:
            setattr(opts, name, value)
    opts.timeout = 600.0 if opts.timeout is None else opts.timeout
    opts.spied = False  # py-spy profiles the first round only
    raft = {} if opts.skip_raft else raft_baseline(opts.raft_writes)
    alone = scheduler_alone(opts.nodes, opts.jobs, opts.count)
    modes = bench_secure.modes(opts)
    by_mode: dict[bool, list[dict[str, Any]]] = {m: [] for m in modes}
    for _ in range(max(1, opts.rounds)):  # off and on alternate: the machine's drift hits both
        for m in modes:
            by_mode[m].append(cluster(opts, m))
    medians = {m: _median_round(xs) for m, xs in by_mode.items()}
    rounds = by_mode[modes[0]]
    r = medians[modes[0]]
    ok = all(
        x["placed"] >= x["expected"] and x["follower_placed"] >= x["expected"]
        for xs in by_mode.values()
        for x in xs
    )
    report = {
        "cpus": os.cpu_count(),
        "raft": raft,
        "scheduler_alone_per_s": round(alone, 1),
        "median_placements_per_s": r["placements_per_s"],
        "rounds": rounds,
    }
    if True in by_mode:
        report["secure"] = {
            "median_placements_per_s": medians[True]["placements_per_s"],
            "rounds": by_mode[True],
        }
        if False in by_mode:
            report["secure"]["ratio_on_off"] = round(
                medians[True]["placements_per_s"] / max(0.001, r["placements_per_s"]), 3
            )
    if opts.json:
        print(json.dumps(report, indent=2))
        return 0 if ok else 1
    print(
        f"schedule: 3 servers, {opts.nodes} simulated nodes, {opts.jobs} jobs x {opts.count}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
        + ("; ACLs + mutual TLS ON" if modes == [True] else "")
    )
    if raft:
        print(
            f"  raft commit rate (bench_raft): raw pysyncobj {raft['raw_c1']:.0f}/s (1 in flight), "
            f"{raft['raw_c32']:.0f}/s (32); nomadd apply {raft['nomadd_c1']:.0f}/s, {raft['nomadd_c32']:.0f}/s"
        )
    print(f"  scheduler alone (no Raft, one process): {alone:,.0f} placements/s")
    for i, x in enumerate(rounds, 1):
        print(
            f"  round {i}: {x['placed']}/{x['expected']} placements committed in {x['elapsed_s']} s = "
            f"{x['placements_per_s']:,.0f}/s; leader CPU {x['leader_cpu_s']} s, "
            f"followers {x['followers_cpu_s']}, this load generator {x['bench_cpu_s']}"
        )
    vs_raft = ""
    if raft:
        vs_raft = (
            f"; {r['placements_per_s'] / raft['raw_c1']:.1f}x raw pysyncobj with 1 write in flight, "
            f"{r['placements_per_s'] / raft['nomadd_c32']:.2f}x nomadd's apply path with 32"
        )
    print(
        f"  cluster, median of {len(rounds)}: {r['placements_per_s']:,.0f} placements/s "
        f"(goal {GOAL_PER_S:,.0f}/s){vs_raft}"
    )
    print(
        f"  median round: registers took {r['submit_s']} s; {r['raft_entries']} Raft entries "
        f"({r['raft_entries'] / max(1, opts.jobs):.2f} per job); leader CPU {r['leader_cpu_s']} s "
        f"({r['leader_cpu_s'] / max(0.001, r['elapsed_s']) * 100:.0f}% of one core); "
        f"nodes registered in {r['nodes_register_s']} s"
    )
    print(f"  evals by trigger/status: {r['evals']}; nodes by status: {r['nodes']}")
    if len(modes) == 2:
        for i, x in enumerate(by_mode[True], 1):
            print(
                f"  ACLs + mutual TLS on, round {i}: {x['placed']}/{x['expected']} in {x['elapsed_s']} s = "
                f"{x['placements_per_s']:,.0f}/s; leader CPU {x['leader_cpu_s']} s, "
                f"nodes registered in {x['nodes_register_s']} s"
            )
        print(
            "  "
            + bench_secure.ratio_line(
                f"placements/s, median of {len(rounds)}",
                float(r["placements_per_s"]),
                float(medians[True]["placements_per_s"]),
            )
        )
    for m, xs in by_mode.items():
        for i, x in enumerate(xs, 1):
            if x["follower_placed"] < x["expected"]:
                print(
                    f"  FAILED: {'secure ' if m else ''}round {i}: a follower shows only "
                    f"{x['follower_placed']} of {x['expected']} placements"
                )
    return 0 if ok else 1


def _median_round(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The median round by placement rate (the upper one of an even count)."""
    by_rate = sorted(rounds, key=lambda x: float(x["placements_per_s"]))
    return by_rate[len(by_rate) // 2]


if __name__ == "__main__":
    sys.exit(main())
