"""``scripts/bench schedule --c1m``: Nomad's C1M shape (1,000,000 placements on 5,000 nodes) on
3 real server agent processes on this machine, and what holding that state costs.

One round, on a fresh cluster (tests/integration/cluster.py, logs at WARN), in this order:

1. Scheduler alone (``nomadd.scheduler.bench``, one process, no Raft) at ``--alone-nodes``
   (1,000) and at ``--nodes`` simulated nodes, ``--alone-jobs`` (2,000) jobs x ``--count`` each,
   ``--alone-rounds`` (2) rounds alternating; the best round of each size is the figure and the
   ratio large / small is printed beside its goal (>= 0.8). ``--alone-rounds 0`` skips it.
2. Placements: ``--nodes`` (5,000) simulated nodes registered through the internal RPC (as the
   default mode), then ``--jobs`` (100,000) service jobs of ``--count`` (10) allocations of
   ``--cpu`` 10 MHz / ``--memory-mb`` 10 MB (400 fit on a simulated node: the million fills the
   5,000 nodes to half) registered with ``PUT /v1/jobs`` on the leader by ``--inflight`` (32)
   workers sharing one job counter. A failed register is counted (the first few errors are
   printed) and the run goes on. The clock runs from the first register until the leader's
   ``nomad.nomad.plan.placements_committed`` gauge (polled every ``--poll`` s) has counted every
   placement; or, every register answered, once no server has an evaluation ready or unacked
   (``nomad.nomad.broker.*``) and the count has not moved for ``IDLE_END_S`` (the rest are
   blocked); or at ``--timeout`` (900 s). Printed: placements/s overall and per tenth of the run
   (the time each successive tenth of the placements took, interpolated between polls), the
   leader's and the followers' CPU seconds per 10,000 placements in each tenth (CPU read at each
   poll), the ratio last tenth / first tenth (goal >= 0.8), and whether the whole run took no
   longer than placements / 3,750 s (267 s for the million); the CPU seconds of this process
   (the load generator) and how busy the machine's CPUs were over the run, and how much of
   their time the hypervisor stole (``/proc/stat``). Then,
   untimed: how long until every follower has applied the leader's index.
3. Throughout (from before the nodes register until the end), a monitor thread with its own
   event loop samples once a second, for every running server: ``GET /v1/status/leader``
   (timeout 10 s; its answer time, samples over 1 s or failed, every change of leader a server
   reports) and VmRSS from ``/proc/<pid>/status`` (peak and last value; and its children's, a
   forked Raft dump), kept per window: node registration ("nodes"), the placements ("run",
   the window the goals read), then each step of 4.
4. With that state, each step timed against the 30 s goal (``--op-timeout`` each; the leader
   found again before each): snapshot save (``nomadd operator snapshot save`` on the leader:
   the archive an operator keeps), follower catch-up (a follower stopped with SIGTERM, its Raft
   journal and dump deleted, started again: until its applied index reaches the leader's; once
   the leader has compacted its log, that takes a snapshot install), restart (another follower
   stopped with SIGTERM and started again from its data dir: until it answers HTTP, and until
   its applied index is back where it was), and last, as it replaces the whole state, snapshot
   restore (``nomadd operator snapshot restore`` of the saved file into the same cluster; also
   until every server has applied it). The monitor keeps its figures per step. ``--skip-ops``
   skips them (and their goals); the steps are in ``bench_c1m_ops.py``.

A timeout or Ctrl-C still prints what was measured. ``--json`` prints the report as JSON. The
exit status is 0 when every figure was measured (all placed, every step run timed), met or not.
The load generator keeps no per-job data (its own peak RSS is printed). Develop at a small
size (``--c1m --nodes 500 --jobs 2000 --alone-jobs 200``): the full run wants the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import bench_c1m_state  # noqa: E402
from bench_c1m_ops import OPS, operations  # noqa: E402
from bench_c1m_report import (  # noqa: E402
    ANSWER_GOAL_S,
    goals,
    print_report,
    tenth_cpu,
    tenth_durations,
    tenth_ratio,
)

C1M_NODES = 5000
C1M_JOBS = 100_000
C1M_COUNT = 10
C1M_CPU, C1M_MEMORY_MB = 10, 10
C1M_TIMEOUT_S = 900.0
PROBE_TIMEOUT_S = 10.0
COMMITTED = "nomad.nomad.plan.placements_committed"
# The run ends this long after the last register when no server has an eval ready or unacked and
# the count has not moved (the rest are blocked: no capacity); longer than an election, during
# which no server has a broker.
IDLE_END_S = 10.0
FIRST_ERRORS = 5


class Failures:
    """A count of failed calls and the first few errors."""

    def __init__(self) -> None:
        self.count = 0
        self.first: list[str] = []

    def add(self, what: str) -> None:
        self.count += 1
        if len(self.first) < FIRST_ERRORS:
            self.first.append(what[:300])

    def report(self) -> dict[str, Any]:
        return {"count": self.count, "first": self.first}


@dataclass
class Probe:
    """One server's ``/v1/status/leader`` samples in one window of the run."""

    samples: int = 0
    slow: int = 0  # answered, but after more than ANSWER_GOAL_S
    failed: int = 0  # an error, or no answer within PROBE_TIMEOUT_S
    no_leader: int = 0  # answered "" (no known leader)
    max_s: float = 0.0


@dataclass
class Rss:
    peak_kb: int = 0
    last_kb: int = 0
    children_peak_kb: int = 0  # the server's child processes together (a forked Raft dump)


def _vm_rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _children_rss_kb(pid: int) -> int:
    """The RSS of ``pid``'s children together (pages shared with it counted again)."""
    import psutil

    try:
        return sum(c.memory_info().rss for c in psutil.Process(pid).children(recursive=True)) // 1024
    except psutil.Error:
        return 0


class Monitor:
    """Once a second, on a thread with its own event loop (a busy load generator delays no
    probe): every running server's ``/v1/status/leader`` (a new probe each second even while
    earlier ones wait) and VmRSS. Figures are kept per window (``window``)."""

    def __init__(self, servers: Sequence[Any]) -> None:
        self.servers = list(servers)
        self.window = "nodes"  # then "run" (the placements), then one per step after it
        self.probes: dict[str, dict[str, Probe]] = {}
        self.rss: dict[str, dict[str, Rss]] = {}
        self.changes: list[dict[str, Any]] = []
        self._last: dict[str, tuple[float, str]] = {}  # server -> (probe start, leader answered)
        self._t0 = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._loop()), name="c1m-monitor", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def elapsed(self) -> float:
        """Seconds since the monitor was made (the clock of its leader changes)."""
        return round(time.monotonic() - self._t0, 1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(PROBE_TIMEOUT_S + 5)

    async def _loop(self) -> None:
        import aiohttp

        pending: set[asyncio.Task[None]] = set()
        async with aiohttp.ClientSession() as http:
            while not self._stop.is_set():
                tick = time.monotonic()
                for s in self.servers:
                    if not s.running():
                        continue
                    rss = self.rss.setdefault(self.window, {}).setdefault(s.name, Rss())
                    rss.last_kb = _vm_rss_kb(s.proc.proc.pid)
                    rss.peak_kb = max(rss.peak_kb, rss.last_kb)
                    rss.children_peak_kb = max(rss.children_peak_kb, _children_rss_kb(s.proc.proc.pid))
                    task = asyncio.create_task(self._probe(http, s, self.window))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                await asyncio.sleep(max(0.0, tick + 1.0 - time.monotonic()))
            for task in list(pending):
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _probe(self, http: Any, server: Any, window: str) -> None:
        import aiohttp

        probe = self.probes.setdefault(window, {}).setdefault(server.name, Probe())
        start = time.monotonic()
        try:
            async with http.get(
                f"{server.url}/v1/status/leader", timeout=aiohttp.ClientTimeout(total=PROBE_TIMEOUT_S)
            ) as resp:
                answer = str(await resp.json()) if resp.status == 200 else None
        except (aiohttp.ClientError, TimeoutError, ValueError):
            answer = None
        took = time.monotonic() - start
        probe.samples += 1
        probe.max_s = max(probe.max_s, took)
        if answer is None:
            probe.failed += 1
            return
        if took > ANSWER_GOAL_S:
            probe.slow += 1
        if not answer:
            probe.no_leader += 1
            return
        last = self._last.get(server.name)
        if last is not None and last[0] > start:
            return  # a later probe has answered already
        if last is not None and last[1] != answer:
            self.changes.append(
                {
                    "at": round(start - self._t0, 1),
                    "window": window,
                    "server": server.name,
                    "from": last[1],
                    "to": answer,
                }
            )
        self._last[server.name] = (start, answer)

    def report(self) -> dict[str, Any]:
        return {
            "leader_probes": {
                w: {name: {**vars(p), "max_s": round(p.max_s, 3)} for name, p in by.items()}
                for w, by in self.probes.items()
            },
            "leader_changes": self.changes,
            "rss_mb": {
                w: {
                    name: {
                        "peak": round(r.peak_kb / 1024, 1),
                        "last": round(r.last_kb / 1024, 1),
                        "children_peak": round(r.children_peak_kb / 1024, 1),
                    }
                    for name, r in by.items()
                }
                for w, by in self.rss.items()
            },
        }


async def _place(
    leader: Any, followers: Sequence[Any], opts: argparse.Namespace, out: dict[str, Any], monitor: Monitor
) -> None:
    """The nodes, then the timed placements; ``out`` is filled as figures come in (a timeout or an
    interrupt leaves in it what was measured)."""
    import aiohttp
    from bench_schedule import ClusterCalls, _cpu_seconds, _job, run_pool

    connector = aiohttp.TCPConnector(limit=opts.inflight + 16)
    timeout = aiohttp.ClientTimeout(total=opts.register_timeout)  # every call, node registers too
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        calls = ClusterCalls(http, leader)
        node_failures = Failures()

        retried = Failures()

        async def add_node(_: int) -> None:
            for attempt in range(3):  # setup, not measured: a node is tried again (a new one)
                try:
                    await calls.add_node()
                    return
                except (RuntimeError, aiohttp.ClientError, TimeoutError) as err:
                    (retried if attempt < 2 else node_failures).add(f"node register: {err!r}")
                    await asyncio.sleep(1.0)

        t = time.monotonic()
        await run_pool(0 if opts.from_state else opts.nodes, 64, add_node)  # a kept state has them
        out["nodes_register_s"] = round(time.monotonic() - t, 2)
        out["failed_node_registers"] = node_failures.report()
        out["retried_node_registers"] = retried.report()

        # every server's gauge, the replicated count: the highest (the server furthest ahead)
        # counts every placement since now, across leader changes too
        servers = [leader, *followers]
        base = {s.name: await calls.committed(timeout=PROBE_TIMEOUT_S, agent=s) for s in servers}
        last = dict(base)
        poll_errors = 0

        busy: dict[str, float] = {}  # per server polled: evals ready or unacked (-1: no answer)

        async def committed_sum() -> int:
            async def one(agent: Any) -> None:
                nonlocal poll_errors
                try:
                    g = await calls.gauges(timeout=PROBE_TIMEOUT_S, agent=agent)
                    last[agent.name] = int(g[COMMITTED])
                    busy[agent.name] = (
                        g["nomad.nomad.broker.total_ready"] + g["nomad.nomad.broker.total_unacked"]
                    )
                except (aiohttp.ClientError, TimeoutError, ValueError, KeyError):
                    poll_errors += 1  # its last value stands
                    busy[agent.name] = -1

            busy.clear()
            await asyncio.gather(*(one(s) for s in servers if s.running()))
            return max(last.values()) - max(base.values())

        start_index = await calls.index_of(leader)
        cpu0 = {s.name: _cpu_seconds(s) for s in servers}
        own0, machine0 = _own_cpu_s(), _machine_jiffies()
        expected = opts.jobs * opts.count
        failures = Failures()
        out.update(expected=expected, placed=0, elapsed_s=0.0, failed_registers=failures.report())
        samples: list[tuple[float, int]] = []
        monitor.window = "run"
        out["at"] = monitor.elapsed()  # on the clock of the leader changes
        t0 = time.monotonic()

        async def register(i: int) -> None:
            job = _job(i + opts.job_offset, opts.count, opts.cpu, opts.memory_mb)
            try:
                await calls.register(job, timeout=opts.register_timeout)
            except (RuntimeError, aiohttp.ClientError, TimeoutError) as err:
                failures.add(f"bench-{i + opts.job_offset}: {err!r}")

        async def submit() -> None:
            await run_pool(opts.jobs, opts.inflight, register)
            out["submit_s"] = round(time.monotonic() - t0, 2)

        def summarize() -> None:
            out["failed_registers"] = failures.report()
            out["samples"] = samples[:: max(1, len(samples) // 20)]
            durations = tenth_durations(samples, expected)
            out["tenths_s"] = durations
            out["tenths_per_s"] = [round(expected / 10 / d, 1) if d > 0 else 0.0 for d in durations]
            out["last_first_ratio"] = tenth_ratio(durations)
            out["cpu_s"] = {s.name: round(_cpu_seconds(s) - cpu0[s.name], 2) for s in servers}
            # this process (the load generator, the polls and the monitor) and the whole machine:
            # what else the servers' two cores went to, and how busy they were
            out["loadgen_cpu_s"] = round(_own_cpu_s() - own0, 2)
            busy, steal, total = (b - a for a, b in zip(machine0, _machine_jiffies(), strict=True))
            out["machine_busy"] = round(busy / total, 3) if total > 0 else 0.0
            out["machine_steal"] = round(steal / total, 3) if total > 0 else 0.0
            out["tenths_cpu_per_10k"] = {
                who: tenth_cpu([(c, cpu[k]) for c, *cpu in cpu_samples], expected)
                for k, who in enumerate(("leader", "followers (mean)"))
            }

        submitter = asyncio.ensure_future(submit())
        deadline = t0 + opts.timeout
        cpu_samples = [(0, 0.0, 0.0)]  # (placements, leader's CPU s, the followers' mean) per poll
        idle_since = 0.0  # since when the count has not moved, registers done and no eval left
        out["ended"] = "timeout"
        try:
            while time.monotonic() < deadline:
                await asyncio.sleep(opts.poll)
                count, prev = await committed_sum(), out["placed"]
                now = time.monotonic() - t0
                samples.append((round(now, 2), count))
                fcpu = sum(_cpu_seconds(f) - cpu0[f.name] for f in followers) / max(1, len(followers))
                cpu_samples.append((count, _cpu_seconds(leader) - cpu0[leader.name], fcpu))
                out["placed"], out["elapsed_s"] = count, round(now, 2)
                out["placements_per_s"] = round(count / now, 1)
                if count >= expected or (
                    submitter.done() and count >= (opts.jobs - failures.count) * opts.count
                ):
                    out["ended"] = "all placed"  # or all that the registers which did not fail can place
                    break
                if count != prev or not submitter.done() or not busy or any(b != 0 for b in busy.values()):
                    idle_since = now
                elif now - idle_since >= IDLE_END_S:
                    out["ended"] = f"every evaluation done, count still for {IDLE_END_S:.0f} s"
                    break
        finally:
            out["timed_out"] = out["ended"] == "timeout"
            out["gauge_poll_errors"] = poll_errors
            summarize()
            if not submitter.done():
                submitter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await submitter
            summarize()
        out["raft_entries"] = await calls.index_of(leader) - start_index
        target = await calls.index_of(leader)  # untimed: every follower applies it
        t = time.monotonic()
        for f in followers:
            while await _applied_or_none(calls, f) < target and time.monotonic() - t < opts.op_timeout:
                await asyncio.sleep(0.2)
        out["followers_applied_s"] = round(time.monotonic() - t, 2)


async def _applied_or_none(calls: Any, agent: Any) -> int:
    try:
        return int(await calls.index_of(agent, timeout=PROBE_TIMEOUT_S))
    except Exception:
        return -1


def scheduler_alone(opts: argparse.Namespace) -> dict[str, Any]:
    """The scheduler alone at the small and the large node count, same jobs x count."""
    from nomadd.helper.gc_policy import GC_THRESHOLDS
    from nomadd.scheduler.bench import bench_schedule

    sizes = (opts.alone_nodes, opts.nodes)
    best: dict[int, Any] = {}
    for r in range(max(1, opts.alone_rounds)):
        for n in sizes if r % 2 == 0 else sizes[::-1]:  # alternating: the machine's drift hits both
            res = bench_schedule(nodes=n, jobs=opts.alone_jobs, count=opts.count, gc_thresholds=GC_THRESHOLDS)
            if n not in best or res.placements_per_s > best[n].placements_per_s:
                best[n] = res
    small, large = best[sizes[0]], best[sizes[1]]
    return {
        "jobs": opts.alone_jobs,
        "count": opts.count,
        "small_nodes": sizes[0],
        "large_nodes": sizes[1],
        "small_per_s": round(small.placements_per_s, 1),
        "large_per_s": round(large.placements_per_s, 1),
        "small_per_cpu_s": round(small.placements_per_cpu_s, 1),
        "large_per_cpu_s": round(large.placements_per_cpu_s, 1),
        "failed_placements": small.failed_placements + large.failed_placements,
        "ratio": round(large.placements_per_s / max(0.001, small.placements_per_s), 3),
        "cpu_ratio": round(large.placements_per_cpu_s / max(0.001, small.placements_per_cpu_s), 3),
    }


def run(opts: argparse.Namespace) -> dict[str, Any]:
    """The whole C1M run; returns the report (partial after a timeout, an error or Ctrl-C)."""
    from bench_schedule import start_servers

    from tests.integration.cluster import Cluster

    report: dict[str, Any] = {
        "mode": "c1m",
        "nodes": opts.nodes,
        "jobs": opts.jobs,
        "count": opts.count,
        "cpus": os.cpu_count(),
        "load_average": round(os.getloadavg()[0], 2),
        "run": {},
        "ops": {},
        "skipped_alone": opts.alone_rounds <= 0,
        "skipped_ops": opts.skip_ops,
        "ops_run": [] if opts.skip_ops else [op for op in OPS if op in opts.ops.split(",")],
    }
    monitor: Monitor | None = None
    try:
        if opts.alone_rounds > 0:
            report["scheduler_alone"] = scheduler_alone(opts)
        with tempfile.TemporaryDirectory(prefix="bench-c1m-") as tmp:
            c = Cluster(Path(tmp))
            try:
                if opts.from_state:
                    servers, index = bench_c1m_state.load_state(c, Path(opts.from_state), opts.log_level)
                    monitor = Monitor(servers)
                    monitor.window = "cluster_restart"
                    monitor.start()
                    leader, report["cluster_restart"] = bench_c1m_state.restart_cluster(
                        c, servers, index, opts.op_timeout
                    )
                    report["from_state"] = opts.from_state
                else:
                    servers, leader = start_servers(c, log_level=opts.log_level)
                    monitor = Monitor(servers)
                    monitor.start()
                report["leader"] = leader.name
                followers = [s for s in servers if s is not leader]
                if not opts.from_state or opts.place:
                    try:
                        asyncio.run(_place(leader, followers, opts, report["run"], monitor))
                    except Exception as err:
                        report["run"]["error"] = f"{type(err).__name__}: {err}"[:500]
                if opts.save_state:
                    monitor.window = "save_state"
                    report["save_state"] = rec = bench_c1m_state.save_state(
                        c, servers, Path(opts.save_state), opts.op_timeout
                    )
                    t = time.monotonic()
                    try:
                        c.wait_leader(servers, timeout=opts.op_timeout)
                        rec["leader_again_s"] = round(time.monotonic() - t, 2)
                    except AssertionError as err:
                        rec["error"] = str(err)[:300]
                if not opts.skip_ops:
                    operations(c, servers, opts, report["ops"], monitor)
            finally:
                if monitor is not None:
                    monitor.stop()
                if opts.logs:
                    bench_c1m_state.write_logs(c.agents, Path(opts.logs))
                c.close()
    except KeyboardInterrupt:
        report["interrupted"] = True
    finally:
        if monitor is not None:
            report.update(monitor.report())
        report["loadgen_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        report["goals"] = goals(report)
    return report


def _own_cpu_s() -> float:
    """This process's CPU seconds (user and system), every thread."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _machine_jiffies() -> tuple[int, int, int]:
    """(busy, stolen, total) CPU ticks of the whole machine so far (``/proc/stat``'s cpu line:
    idle and iowait are not busy; steal, time the hypervisor gave another guest, is)."""
    with open("/proc/stat") as f:
        ticks = [*(int(v) for v in f.readline().split()[1:9]), 0, 0, 0, 0, 0, 0, 0, 0][:8]
    total = sum(ticks)
    return total - ticks[3] - ticks[4], ticks[7], total


def apply_defaults(opts: argparse.Namespace) -> None:
    """The C1M size for every size option not given on the command line."""
    for name, value in (
        ("nodes", C1M_NODES),
        ("jobs", C1M_JOBS),
        ("count", C1M_COUNT),
        ("cpu", C1M_CPU),
        ("memory_mb", C1M_MEMORY_MB),
        ("timeout", C1M_TIMEOUT_S),
    ):
        if getattr(opts, name) is None:
            setattr(opts, name, value)


def main(opts: argparse.Namespace) -> int:
    if opts.secure or opts.secure_only:
        print("--c1m runs with ACLs and TLS off (--secure is for the default mode)", file=sys.stderr)
        return 2
    apply_defaults(opts)
    report = run(opts)
    if opts.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    ops = report["ops"]
    measured = report["goals"]["all_placed"] and all(
        "s" in ops.get(op, {}) and "error" not in ops[op] for op in report["ops_run"]
    )
    return 0 if measured else 1
