"""Scheduling workers on followers (server/follower_workers.py): in a 3-server cluster whose
followers run workers, the followers place allocations (their ``follower_placements``
counter), and a follower SIGKILLed while it holds evals loses none: the leader's broker nacks
them after ``eval_nack_timeout`` and redelivers them, and every job ends up fully placed.

Simulated nodes register through the internal RPC as a client would (no client agents).
"""

from __future__ import annotations

import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from nomadd.server.follower_workers import FOLLOWER_PLACEMENTS_METRIC
from tests.helpers import wait_for
from tests.integration.cluster import Agent, Cluster
from tests.integration.internal_rpc import join
from tests.integration.test_jobs_api import job

pytestmark = pytest.mark.slow

NODES = 40
COUNT = 5  # allocations per job
NACK_TIMEOUT_S = 3
FOLLOWER_WORKERS = 8
SERVER = {
    "leader_schedulers": 0,  # the leader only applies plans: every eval goes to a follower
    "follower_schedulers": FOLLOWER_WORKERS,
    "eval_nack_timeout": f"{NACK_TIMEOUT_S}s",
    # simulated nodes never heartbeat again: keep them ready throughout
    "min_heartbeat_ttl": "3600s",
    "heartbeat_grace": "600s",
    "failover_heartbeat_ttl": "3600s",
}


def _follower_placements(agent: Agent) -> float:
    metrics: dict[str, Any] = agent.api("GET", "/v1/metrics", timeout=5)
    return sum(float(c["Sum"]) for c in metrics["Counters"] if c["Name"] == FOLLOWER_PLACEMENTS_METRIC)


def _register(leader: Agent, prefix: str, n: int, count: int = COUNT, threads: int = 1) -> list[str]:
    """Register ``n`` jobs, from ``threads`` threads at once (a backlog of evals)."""
    ids = [f"{prefix}-{i}" for i in range(n)]
    with ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(lambda j: leader.api("PUT", "/v1/jobs", {"Job": job(j, count=count, cpu=20)}), ids):
            pass
    return ids


def _unacked(leader: Agent) -> float:
    metrics: dict[str, Any] = leader.api("GET", "/v1/metrics", timeout=5)
    return next(
        (g["Value"] for g in metrics["Gauges"] if g["Name"] == "nomad.nomad.broker.total_unacked"), 0.0
    )


def _unplaced(leader: Agent, ids: list[str], count: int = COUNT) -> list[str]:
    """Jobs without all their allocations, or with an eval not complete."""
    out = []
    for job_id in ids:
        allocs = leader.api("GET", f"/v1/job/{job_id}/allocations")
        evals = leader.api("GET", f"/v1/job/{job_id}/evaluations")
        if len(allocs) != count or any(e["Status"] != "complete" for e in evals):
            out.append(job_id)
    return out


def test_followers_place_and_a_killed_followers_evals_are_redelivered(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    try:
        servers = [cluster.add_server(bootstrap_expect=3, extra={"server": SERVER}) for _ in range(3)]
        cluster.link(servers)
        for s in servers:
            s.start()
        leader = cluster.wait_leader(servers)
        followers = [s for s in servers if s is not leader]
        for _ in range(NODES):
            join(leader)

        # 1. both followers' workers place allocations
        first = _register(leader, "a", 30)
        wait_for(lambda: not _unplaced(leader, first), timeout=60, interval=1, what="the first jobs placed")
        by_follower = {f.name: _follower_placements(f) for f in followers}
        assert all(n > 0 for n in by_follower.values()), by_follower
        assert _follower_placements(leader) == 0  # the leader's own workers do not count there

        # 2. a follower SIGKILLed while its workers hold evals: none is lost. A follower holds
        # at most one eval per worker, so with more than FOLLOWER_WORKERS unacked at the leader
        # the victim holds some (jobs registered from many threads: a backlog).
        victim, survivor = followers
        wave: list[list[str]] = []
        loader = threading.Thread(target=lambda: wave.append(_register(leader, "b", 150, 10, threads=8)))
        loader.start()
        wait_for(lambda: _unacked(leader) > FOLLOWER_WORKERS + 1, timeout=60, interval=0.01, what="a backlog")
        victim.kill(signal.SIGKILL)
        loader.join(120)
        second = wave[0]
        wait_for(
            lambda: not _unplaced(leader, second, 10),
            timeout=120,
            interval=1,
            what="every job placed after the kill",
        )
        assert "eval nack timeout reached" in leader.output, "the victim held no eval when killed"
        assert leader.api("GET", "/v1/status/leader")  # still a cluster
        assert survivor.running()
    finally:
        cluster.close()
