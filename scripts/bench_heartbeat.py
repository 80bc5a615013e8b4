#!/usr/bin/env python3
"""Heartbeat capacity: simulated clients held by 3 real servers vs a bare aiohttp handler.

This process is the load generator. It starts 3 ``nomadd agent`` server processes on
127.0.0.1-3 (Nomad's default heartbeat settings unless overridden) and simulates clients over
the real internal HTTP RPC: each one registers (``Node.Register``), turns ready with a heartbeat
and then heartbeats every ``heartbeat_ttl`` the servers hand out, sticking to one server (as a
Nomad client does; followers forward to the leader). N grows in steps (default 1k, 2.5k, 5k,
10k); each step registers the new clients (bounded by ``--register-timeout``) and then holds
all of them for ``--hold`` seconds. A step passes when no node was marked down and the leader's
heartbeat timers never expired on any server (``Node.HeartbeatStats`` ``expired``, summed over
the servers, registration phase included). Per step it reports the
heartbeats/s the leader served during the hold and the leader process's CPU.

Capacity ratio: in the same run, a bare aiohttp server process (one POST handler decoding and
answering msgpack, the same wire as the internal RPC, behind the same TLS as the cluster's when
security is on) and the leader's ``Node.UpdateStatus`` are each driven flat out by this process
for ``--blast`` seconds with the same concurrency, three rounds alternating; the ratio of the
best rounds, leader heartbeats/s ÷ bare req/s, is printed (goal >= 0.5). Each round also
measures the CPU time per answered request of the target process and of this load generator.

``--secure`` runs it all on two fresh clusters, ACLs + mutual TLS off and on (bench_secure.py),
both up at once: the steps run on one, then the other; the flat-out rounds take turns between
them (off, on, then on, off, ...), so the machine's other load falls on both alike. It prints
the ratios on/off of:

* the leader's heartbeat capacity, 1 / (leader CPU seconds per heartbeat) in its best round,
  its idle CPU (Raft and gossip ticks, measured just before) left out: the rate the leader
  reaches flat out on a core of its own (a Python process is held to one core by its GIL).
  This is the goal figure (>= 0.8): it is what a deployment gets, where the clients run on
  other machines;
* the flat-out rate as measured, shown beside it: on this bench's shared cores the load
  generator's own TLS client work (printed as generator CPU per heartbeat) takes CPU from the
  leader, and the machine's other load makes rates noisy; CPU per heartbeat is much less so;
* N held with zero false downs.

Usage: scripts/bench heartbeat [--steps 1000,2500,5000,10000] [--hold 60] [--blast 5] [--json]
       [--min-ttl 10s] [--grace 10s] [--rate 50] [--secure | --secure-only]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import bench_secure  # noqa: E402
import psutil  # noqa: E402
from bench_secure import Access, node_headers  # noqa: E402

from nomadd.rpc.wire import MSGPACK_CONTENT_TYPE, decode, encode_request  # noqa: E402
from nomadd.structs.node import (  # noqa: E402
    Node,
    NodeCpuResources,
    NodeDiskResources,
    NodeMemoryResources,
    NodeResources,
    NodeStatus,
)
from nomadd.structs.requests.node import (  # noqa: E402
    NODE_HEARTBEAT_STATS,
    NODE_REGISTER,
    NODE_UPDATE_STATUS,
    HeartbeatStatsRequest,
    NodeRegisterRequest,
    NodeUpdateStatusRequest,
)
from tests.integration.cluster import Agent, Cluster  # noqa: E402

CONCURRENCY = 64  # requests in flight while blasting (both targets alike)
BLAST_ROUNDS = 3  # per target, alternating; the best round of each is compared
REGISTER_CONCURRENCY = 32  # a registration storm bounded like a rolling client start
IDLE_S = 3.0  # the leader's idle CPU is measured this long before the blasts

BARE_SERVER = r"""
import ssl, sys, msgpack
from aiohttp import web
async def h(req):
    args = msgpack.unpackb(await req.read(), raw=False)
    body = msgpack.packb({"ok": {"meta": {"index": 1}, "heartbeat_ttl": 10.0, "servers": []}}, use_bin_type=True)
    return web.Response(body=body, content_type="application/msgpack")
app = web.Application()
app.router.add_post("/v1/internal/{method}", h)
ctx = None
if len(sys.argv) > 2:  # ca, cert, key: mutual TLS as the servers' listener
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_verify_locations(cafile=sys.argv[2])
    ctx.load_cert_chain(sys.argv[3], sys.argv[4])
    ctx.verify_mode = ssl.CERT_REQUIRED
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), ssl_context=ctx, print=None, access_log=None)
"""


@dataclass
class SimClient:
    node: Node
    server: str  # base URL

    def headers(self) -> dict[str, str]:
        return node_headers(self.node.id, self.node.secret_id)

    ready: bool = False
    errors: int = 0


@dataclass
class Sim:
    session: aiohttp.ClientSession
    servers: list[str]
    clients: list[SimClient] = field(default_factory=list)
    heartbeats_sent: int = 0
    heartbeat_errors: int = 0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def call(
        self, base: str, method: str, request: object, headers: dict[str, str], timeout: float = 30.0
    ) -> Any:
        """The wire form of ``method``'s reply to the typed ``request``, with the caller's
        credential ``headers``."""
        async with self.session.post(
            f"{base}/v1/internal/{method}",
            data=encode_request(request),
            headers={"Content-Type": MSGPACK_CONTENT_TYPE, **headers},
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as resp:
            reply = decode(await resp.read())
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["ok"]

    async def heartbeat(self, c: SimClient) -> float:
        req = NodeUpdateStatusRequest(node_id=c.node.id, secret_id=c.node.secret_id, status=NodeStatus.READY)
        reply = await self.call(c.server, NODE_UPDATE_STATUS.name, req, c.headers())
        self.heartbeats_sent += 1
        c.ready = True
        return float(reply["heartbeat_ttl"])

    async def run_client(self, c: SimClient, sem: asyncio.Semaphore) -> None:
        async with sem:
            for attempt in range(5):
                try:
                    await self.call(
                        c.server, NODE_REGISTER.name, NodeRegisterRequest(node=c.node), c.headers()
                    )
                    ttl = await self.heartbeat(c)
                    break
                except (RuntimeError, aiohttp.ClientError, TimeoutError):
                    c.errors += 1
                    await asyncio.sleep(0.5 * (attempt + 1))
            else:
                return
        while True:
            await asyncio.sleep(ttl)
            try:
                ttl = await self.heartbeat(c)
            except (RuntimeError, aiohttp.ClientError, TimeoutError):
                self.heartbeat_errors += 1
                c.errors += 1
                ttl = 1.0 + random.random()  # Nomad: missed by < 30 s -> 1-2 s

    def add(self, n: int, sem: asyncio.Semaphore) -> list[SimClient]:
        new = []
        for i in range(n):
            node = Node(
                id=str(uuid.uuid4()),
                secret_id=str(uuid.uuid4()),
                name=f"sim-{len(self.clients) + i}",
                attributes={"kernel.name": "linux", "cpu.arch": "amd64", "os.name": "debian"},
                node_resources=NodeResources(
                    cpu=NodeCpuResources(cpu_shares=4000, total_cpu_cores=4),
                    memory=NodeMemoryResources(memory_mb=8192),
                    disk=NodeDiskResources(disk_mb=100_000),
                ),
            )
            new.append(SimClient(node=node, server=random.choice(self.servers)))
        self.clients.extend(new)
        for c in new:
            task = asyncio.create_task(self.run_client(c, sem))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return new


@dataclass(frozen=True)
class Blast:
    """One flat-out round: requests/s answered, and CPU µs per answered request of the target
    process and of this load generator."""

    rate: float
    target_us: float
    generator_us: float


def _cpu_s(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return float(t.user + t.system)


async def blast(
    session: aiohttp.ClientSession,
    base: str,
    method: str,
    args_of: Any,
    seconds: float,
    target: psutil.Process,
    background: float = 0.0,
) -> Blast:
    """Drive URL ``base`` (served by process ``target``) with CONCURRENCY in flight for
    ``seconds``; ``args_of(i)`` is the i-th (request, credential headers). ``background``: the
    target's CPU seconds per second when idle (its Raft and gossip ticks), left out of its
    CPU per request."""
    done = 0
    errors = 0
    deadline = time.monotonic() + seconds

    async def worker(k: int) -> None:
        nonlocal done, errors
        i = k
        while time.monotonic() < deadline:
            try:
                request, headers = args_of(i)
                async with session.post(
                    f"{base}/v1/internal/{method}",
                    data=encode_request(request),
                    headers={"Content-Type": MSGPACK_CONTENT_TYPE, **headers},
                ) as resp:
                    reply = decode(await resp.read())
                if "ok" in reply:
                    done += 1
                else:
                    errors += 1
            except aiohttp.ClientError:
                errors += 1
            i += CONCURRENCY

    me = psutil.Process()
    t0, target0, me0 = time.monotonic(), _cpu_s(target), _cpu_s(me)
    await asyncio.gather(*(worker(k) for k in range(CONCURRENCY)))
    wall, target_s, me_s = time.monotonic() - t0, _cpu_s(target) - target0, _cpu_s(me) - me0
    target_s = max(target_s - background * wall, 0.0)
    n = max(done, 1)
    return Blast(rate=done / wall, target_us=target_s / n * 1e6, generator_us=me_s / n * 1e6)


async def all_stats(
    session: aiohttp.ClientSession, servers: list[Agent], access: Access
) -> dict[str, dict[str, Any]]:
    """``Node.HeartbeatStats`` of every server (the leader is the one with timers enabled),
    asked as a server (the cluster secret's signature) with the management token."""
    sim = Sim(session=session, servers=[])
    request = HeartbeatStatsRequest(auth_token=access.token)
    method = NODE_HEARTBEAT_STATS.name
    out = {}
    for s in servers:
        try:
            headers = access.server_headers(method, encode_request(request))
            out[s.name] = await sim.call(s.url, method, request, headers, timeout=10)
        except (RuntimeError, aiohttp.ClientError, TimeoutError):
            out[s.name] = {"enabled": False, "heartbeats": 0, "expired": 0}
    return out


def _sum(stats: dict[str, dict[str, Any]], key: str) -> int:
    return sum(int(v[key]) for v in stats.values())


def _leader(stats: dict[str, dict[str, Any]], servers: list[Agent]) -> Agent | None:
    return next((s for s in servers if stats[s.name]["enabled"]), None)


def _proc(agent: Agent) -> psutil.Process:
    assert agent.proc is not None
    return psutil.Process(agent.proc.proc.pid)


def _cpu(agent: Agent) -> float:
    return _cpu_s(_proc(agent))


async def idle_cpu(proc: psutil.Process, seconds: float = IDLE_S) -> float:
    """``proc``'s CPU seconds per second while nothing is sent to it."""
    c0, t0 = _cpu_s(proc), time.monotonic()
    await asyncio.sleep(seconds)
    return (_cpu_s(proc) - c0) / (time.monotonic() - t0)


async def node_statuses(session: aiohttp.ClientSession, leader: Agent) -> dict[str, int]:
    async with session.get(f"{leader.url}/v1/nodes", timeout=aiohttp.ClientTimeout(total=60)) as resp:
        nodes = await resp.json()
    out: dict[str, int] = {}
    for n in nodes:
        out[n["Status"]] = out.get(n["Status"], 0) + 1
    return out


async def hold(args: argparse.Namespace, t: Target) -> None:
    """The steps: N simulated clients held by ``t``'s servers, N growing while it passes."""
    session, servers, access, results = t.session, t.servers, t.access, t.results
    sim = Sim(session=session, servers=[s.url for s in servers])
    sem = asyncio.Semaphore(REGISTER_CONCURRENCY)
    best = 0
    for target in args.steps:
        add = target - len(sim.clients)
        t0 = time.monotonic()
        sim.add(add, sem)
        deadline = t0 + args.register_timeout
        while time.monotonic() < deadline and sum(c.ready for c in sim.clients) < target:
            await asyncio.sleep(0.5)
        ready = sum(c.ready for c in sim.clients)
        reg_s = time.monotonic() - t0
        print(f"step n={target}: {ready} ready after {reg_s:.1f}s", file=sys.stderr)
        if ready < target:
            results["steps"].append({"n": target, "ok": False, "why": f"only {ready} ready in {reg_s:.0f}s"})
            break
        s0 = await all_stats(session, servers, access)
        cpu0 = {s.name: _cpu(s) for s in servers}
        w0 = time.monotonic()
        await asyncio.sleep(args.hold)
        s1 = await all_stats(session, servers, access)
        cpu1 = {s.name: _cpu(s) for s in servers}
        w1 = time.monotonic()
        leader0, leader1 = _leader(s0, servers), _leader(s1, servers)
        statuses = await node_statuses(session, leader1 or servers[0])
        wall = w1 - w0
        cpu = (cpu1[leader1.name] - cpu0[leader1.name]) / wall * 100 if leader1 else 0.0
        hb_rate = (_sum(s1, "heartbeats") - _sum(s0, "heartbeats")) / wall
        expired_total = _sum(s1, "expired")
        expired_hold = expired_total - _sum(s0, "expired")
        stable = leader0 is not None and leader0 is leader1
        ok = statuses.get("down", 0) == 0 and expired_total == 0 and statuses.get("ready", 0) == target
        step = {
            "n": target,
            "ok": ok,
            "register_s": round(reg_s, 1),
            "hold_s": round(wall, 1),
            "leader_heartbeats_per_s": round(hb_rate, 1),
            "leader_cpu_percent": round(cpu, 1),
            "leader": leader1.name if leader1 else None,
            "leader_stable_during_hold": stable,
            "statuses": statuses,
            "timers_expired_total": expired_total,
            "timers_expired_during_hold": expired_hold,
            "client_errors": sim.heartbeat_errors,
        }
        results["steps"].append(step)
        print(json.dumps(step), file=sys.stderr)
        if not ok:
            break
        best = target
    results["max_clients_held"] = best
    for task in list(sim.tasks):  # the simulated clients stop: the blasts run alone
        task.cancel()
    await asyncio.gather(*sim.tasks, return_exceptions=True)
    t.ids = [(c.node.id, c.node.secret_id) for c in sim.clients if c.ready]


async def blast_rounds(args: argparse.Namespace, targets: list[Target]) -> None:
    """Each target's bare server and leader driven flat out, BLAST_ROUNDS rounds; the targets
    (the clusters with security off and on) take turns within each round, in alternating
    order, so the machine's other load falls on all of them alike."""
    runs: dict[int, dict[str, list[Blast]]] = {id(t): {"bare": [], "leader": []} for t in targets}
    for r in range(BLAST_ROUNDS):
        for t in targets if r % 2 == 0 else targets[::-1]:

            def hb_args(
                i: int, ids: list[tuple[str, str]] = t.ids
            ) -> tuple[NodeUpdateStatusRequest, dict[str, str]]:
                node_id, secret = ids[i % len(ids)]
                req = NodeUpdateStatusRequest(node_id=node_id, secret_id=secret, status=NodeStatus.READY)
                return req, node_headers(node_id, secret)

            leader = _leader(await all_stats(t.session, t.servers, t.access), t.servers) or t.servers[0]
            leader_proc = _proc(leader)
            # the leader's own ticks cost the same CPU per second in both modes, but more per
            # heartbeat the fewer heartbeats a round gets through: they are left out
            background = await idle_cpu(leader_proc)
            method = "Node.UpdateStatus"
            bare_proc = psutil.Process(t.bare.proc.pid)
            runs[id(t)]["bare"].append(
                await blast(t.session, t.bare.url, method, hb_args, args.blast, bare_proc)
            )
            runs[id(t)]["leader"].append(
                await blast(t.session, leader.url, method, hb_args, args.blast, leader_proc, background)
            )
    for t in targets:
        bare_runs, leader_runs = runs[id(t)]["bare"], runs[id(t)]["leader"]
        results = t.results
        bare_rate = max(b.rate for b in bare_runs)
        leader_rate = max(b.rate for b in leader_runs)
        leader_us = min(b.target_us for b in leader_runs)
        results["blast_rounds"] = {
            name: [
                {
                    "rate": round(b.rate),
                    "target_us": round(b.target_us),
                    "generator_us": round(b.generator_us),
                }
                for b in blasts
            ]
            for name, blasts in (("bare", bare_runs), ("leader", leader_runs))
        }
        results["bare_aiohttp_req_per_s"] = round(bare_rate, 1)
        results["leader_heartbeats_per_s_max"] = round(leader_rate, 1)
        results["leader_cpu_us_per_heartbeat"] = round(leader_us, 1)
        results["leader_capacity_per_s"] = round(1e6 / leader_us, 1) if leader_us else 0.0
        results["generator_cpu_us_per_heartbeat"] = round(min(b.generator_us for b in leader_runs), 1)
        results["ratio"] = round(leader_rate / bare_rate, 3) if bare_rate else 0.0


@dataclass
class Bare:
    """The bare aiohttp server process (the baseline), on the cluster's TLS when it has one."""

    proc: subprocess.Popen[bytes]
    url: str


def start_bare(cluster: Cluster) -> Bare:
    from tests.helpers import free_port

    port = free_port()
    argv = [sys.executable, "-c", BARE_SERVER, str(port)]
    if cluster.tls is not None:
        cert, key = cluster.tls.issue("server", cluster.tmp / "bench-bare-tls")
        argv += [str(cluster.tls.ca), str(cert), str(key)]
    scheme = "https" if cluster.tls is not None else "http"
    return Bare(proc=subprocess.Popen(argv), url=f"{scheme}://127.0.0.1:{port}")


@dataclass
class Target:
    """One cluster under test (security off or on) and how this process reaches it."""

    secure: bool
    cluster: Cluster
    servers: list[Agent]
    bare: Bare
    access: Access
    session: aiohttp.ClientSession
    results: dict[str, Any]
    ids: list[tuple[str, str]] = field(default_factory=list)


async def measure(args: argparse.Namespace, extra: dict[str, Any], modes: list[bool]) -> list[dict[str, Any]]:
    """A fresh cluster per security setting (bench_secure.py), all up at once: the steps run on
    each in turn, then the flat-out rounds interleave them."""
    targets: list[Target] = []
    with tempfile.TemporaryDirectory(prefix="bench-heartbeat-") as tmp:
        try:
            for secure in modes:
                cluster = bench_secure.new_cluster(Path(tmp) / ("on" if secure else "off"), secure)
                bare = start_bare(cluster)
                config = bench_secure.server_extra(extra, secure)
                servers = [cluster.add_server(bootstrap_expect=3, extra=config) for _ in range(3)]
                cluster.link(servers)
                for s in servers:
                    s.start()
                access = bench_secure.access(cluster, cluster.wait_leader(servers, timeout=60), secure)
                session = aiohttp.ClientSession(connector=access.connector(512), headers=access.headers())
                results: dict[str, Any] = {"steps": [], "secure": secure}
                targets.append(Target(secure, cluster, servers, bare, access, session, results))
            for t in targets:
                await hold(args, t)
            await blast_rounds(args, [t for t in targets if t.ids])
            return [t.results for t in targets]
        finally:
            for t in targets:
                await t.session.close()
                t.cluster.close()
                t.bare.proc.kill()
                t.bare.proc.wait(10)


def print_results(results: dict[str, Any]) -> None:
    if results["secure"]:
        print("ACLs + mutual TLS on:")
    print(f"{'clients':>8} {'ok':>4} {'register s':>10} {'hb/s leader':>12} {'leader CPU %':>12}")
    for st in results["steps"]:
        print(
            f"{st['n']:>8} {st['ok']!s:>4} {st.get('register_s', '-')!s:>10} "
            f"{st.get('leader_heartbeats_per_s', '-')!s:>12} {st.get('leader_cpu_percent', '-')!s:>12}"
        )
    print(f"largest N held with zero false downs: {results['max_clients_held']} (goal >= 10000)")
    if "ratio" not in results:
        print("no flat-out rounds: no client was ever ready")
        return
    print(
        f"leader heartbeats/s flat out: {results['leader_heartbeats_per_s_max']}, "
        f"bare aiohttp req/s: {results['bare_aiohttp_req_per_s']}, ratio {results['ratio']} (goal >= 0.5)"
    )
    print(
        f"CPU per heartbeat: leader {results['leader_cpu_us_per_heartbeat']} µs "
        f"(capacity {results['leader_capacity_per_s']}/s on a core of its own), "
        f"load generator {results['generator_cpu_us_per_heartbeat']} µs"
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", default="1000,2500,5000,10000")
    p.add_argument("--hold", type=float, default=60.0)
    p.add_argument("--blast", type=float, default=5.0)
    p.add_argument("--register-timeout", type=float, default=300.0)
    p.add_argument("--min-ttl", default="10s")
    p.add_argument("--grace", default="10s")
    p.add_argument("--rate", type=float, default=50.0)
    p.add_argument("--json", action="store_true")
    bench_secure.add_mode_args(p)
    args = p.parse_args()
    args.steps = [int(x) for x in args.steps.split(",")]
    extra: dict[str, Any] = {
        "log_level": "WARN",
        "server": {
            "min_heartbeat_ttl": args.min_ttl,
            "heartbeat_grace": args.grace,
            "max_heartbeats_per_second": args.rate,
        },
    }
    runs = asyncio.run(measure(args, extra, bench_secure.modes(args)))
    if len(runs) == 2:
        off, on = runs
        ratios = {
            "leader_capacity_per_s": bench_secure.ratio_line(
                "leader heartbeat capacity (1 / leader CPU per heartbeat)",
                off["leader_capacity_per_s"],
                on["leader_capacity_per_s"],
            ),
            "leader_heartbeats_per_s_max": bench_secure.ratio_line(
                "leader heartbeats/s flat out, load generator on the same cores",
                off["leader_heartbeats_per_s_max"],
                on["leader_heartbeats_per_s_max"],
                goal=None,
            ),
            "generator_cpu_us_per_heartbeat": bench_secure.ratio_line(
                "load generator CPU µs per heartbeat",
                off["generator_cpu_us_per_heartbeat"],
                on["generator_cpu_us_per_heartbeat"],
                goal=None,
            ),
            "max_clients_held": bench_secure.ratio_line(
                "largest N held", off["max_clients_held"], on["max_clients_held"]
            ),
        }
    else:
        ratios = {}
    if args.json:
        print(
            json.dumps(
                runs[0] if len(runs) == 1 else {"off": runs[0], "on": runs[1], "ratios": ratios}, indent=2
            )
        )
    else:
        for results in runs:
            print_results(results)
        for line in ratios.values():
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
