"""A snapshot restore into a running 3-server cluster, measured (``scripts/bench_snapshot.py
--running N``): the cluster is filled, its state saved with the CLI, then restored into the
same running cluster ``N`` times (the hardest case: the restored state and the state it
replaces, both full size, are alive at once). Each round reports the restore's time, every
server's peak RSS while it ran, the leader changes seen (each server's ``/v1/status/leader``
every 0.25 s, and the Raft term before and after) and the slowest ``/v1/status/leader`` answer
(issue 15: a restore of a large state within 30 s, without an election).
"""

from __future__ import annotations

import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.integration.cluster import Agent, Cluster
from tests.integration.snapshot_workload import fill, start_servers, state_tables

__all__ = ["run_running"]

SAMPLE_INTERVAL_S = 0.25  # how often every server's /v1/status/leader and RSS are sampled
PROBE_TIMEOUT_S = 10.0  # an answer slower than this counts as a failed probe


def _rss_kb(pid: int) -> int:
    import psutil

    try:
        return int(psutil.Process(pid).memory_info().rss) // 1024
    except psutil.Error:
        return 0


class _Sampler:
    """Every server's ``/v1/status/leader`` (one thread per server: a slow answer delays only
    its own server's next probe) and VmRSS, every :data:`SAMPLE_INTERVAL_S`."""

    def __init__(self, servers: list[Agent]) -> None:
        self.servers = servers
        self.slowest_s = 0.0
        self.failed = 0
        self.changes = 0  # a server answering another leader than its previous answer
        self.peak_rss_kb: dict[str, int] = {s.name: 0 for s in servers}
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(s,), daemon=True) for s in servers]

    def __enter__(self) -> _Sampler:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(PROBE_TIMEOUT_S + 1)

    def _run(self, server: Agent) -> None:
        last = ""
        while not self._stop.is_set():
            t0 = time.monotonic()
            self.peak_rss_kb[server.name] = max(self.peak_rss_kb[server.name], _rss_kb(server.proc.proc.pid))
            try:
                with urllib.request.urlopen(f"{server.url}/v1/status/leader", timeout=PROBE_TIMEOUT_S) as r:
                    answer = r.read().decode().strip('"\n')
            except OSError:
                answer = ""
                self.failed += 1
            took = time.monotonic() - t0
            self.slowest_s = max(self.slowest_s, took)
            if answer and last and answer != last:
                self.changes += 1
            last = answer or last
            self._stop.wait(max(0.0, SAMPLE_INTERVAL_S - took))


def _term(server: Agent) -> int:
    return int(server.api("GET", "/v1/agent/self", timeout=30)["stats"]["raft"]["term"])


def run_running(
    tmp: Path, *, nodes: int, jobs: int, count: int, rounds: int, timeout: float = 900
) -> dict[str, Any]:
    """Fill a cluster, save it, restore the archive into it ``rounds`` times; returns the figures."""
    cluster = Cluster(tmp / "a")
    try:
        servers = start_servers(cluster)
        leader = cluster.wait_leader(servers, timeout=60)
        reader = next(s for s in servers if s is not leader)
        t0 = time.monotonic()
        fill(leader, reader, nodes=nodes, jobs=jobs, count=count, timeout=timeout)
        filled_s = round(time.monotonic() - t0, 2)
        snap = tmp / "backup.snap"
        out = reader.cli("operator", "snapshot", "save", str(snap), timeout=600)
        assert out.returncode == 0, out.stderr
        want = state_tables(snap.read_bytes())
        results: list[dict[str, Any]] = []
        for i in range(rounds):
            follower = next(s for s in servers if s is not cluster.wait_leader(servers, timeout=60))
            term0 = max(_term(s) for s in servers)
            with _Sampler(servers) as sampler:
                t0 = time.monotonic()
                out = follower.cli("operator", "snapshot", "restore", str(snap), timeout=900)
                took = time.monotonic() - t0
            assert out.returncode == 0 and "Snapshot Restored" in out.stdout, out.stderr
            term1 = max(_term(s) for s in servers)
            results.append(
                {
                    "round": i,
                    "restore_s": round(took, 2),
                    "peak_rss_mb": {k: round(v / 1024) for k, v in sampler.peak_rss_kb.items()},
                    "leader_changes_seen": sampler.changes,
                    "term_increase": term1 - term0,
                    "slowest_leader_answer_s": round(sampler.slowest_s, 3),
                    "failed_probes": sampler.failed,
                }
            )
            print(f"round {i}: {results[-1]}", flush=True)
        check = tmp / "check.snap"
        out = servers[0].cli("operator", "snapshot", "save", "-stale", str(check), timeout=600)
        assert out.returncode == 0, out.stderr
        got = state_tables(check.read_bytes())
        differ = [
            t for t in ("jobs", "job_versions", "allocs", "nodes", "variables") if got.get(t) != want.get(t)
        ]
        return {
            "allocs": len(want["allocs"]),
            "nodes": len(want["nodes"]),
            "archive_bytes": snap.stat().st_size,
            "fill_s": filled_s,
            "rounds": results,
            "tables_differ": differ,  # the restored tables a server holds after the last round
        }
    finally:
        cluster.close()
