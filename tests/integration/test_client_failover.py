"""Issue 3 acceptance 4: 3 servers + 2 clients; SIGKILL the leader. No client is marked down
by the election (the new leader gives every node the failover TTL) and the clients' heartbeats
reach the new leader. Clients know only one server at start and learn the rest from replies."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest

from nomadd.structs.requests.node import NODE_HEARTBEAT_STATS, HeartbeatStatsRequest
from tests.integration.cluster import Agent, Cluster
from tests.integration.internal_rpc import call_internal

pytestmark = pytest.mark.slow

SERVER_EXTRA = {"server": {"min_heartbeat_ttl": "2s", "heartbeat_grace": "1s"}}


def heartbeat_stats(server: Agent) -> dict[str, Any]:
    _status, reply = call_internal(
        server, NODE_HEARTBEAT_STATS, HeartbeatStatsRequest(), as_server=True, timeout=3
    )
    ok: dict[str, Any] = reply["ok"]
    return ok


def test_leader_loss_marks_no_client_down(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    try:
        servers = [cluster.add_server(bootstrap_expect=3, extra=SERVER_EXTRA) for _ in range(3)]
        cluster.link(servers)
        for s in servers:
            s.start()
        leader = cluster.wait_leader(servers, timeout=40)
        # each client is configured with one (different) follower only
        followers = [s for s in servers if s is not leader]
        clients = [cluster.add_client(servers=[f]).start() for f in followers]

        def statuses(via: Agent) -> dict[str, str]:
            return {n["Name"]: n["Status"] for n in via.api("GET", "/v1/nodes", timeout=3.0)}

        cluster.wait_for(lambda: statuses(leader) == {c.name: "ready" for c in clients}, 30, "clients ready")
        cluster.wait_for(
            lambda: all(len(c.api("GET", "/v1/agent/servers")) == 3 for c in clients),
            15,
            "clients learned all servers",
        )
        leader.kill(signal.SIGKILL)
        new_leader = cluster.wait_leader(followers, timeout=30)
        before = cluster.wait_for(
            lambda: (st := heartbeat_stats(new_leader))["enabled"] and st, 15, "timers on the new leader"
        )
        assert before["active_timers"] == 2  # failover timers for both live nodes
        # heartbeats now reach the new leader (TTL 2-4 s)
        cluster.wait_for(
            lambda: heartbeat_stats(new_leader)["heartbeats"] >= before["heartbeats"] + 4,
            20,
            "heartbeats at the new leader",
        )
        # nobody went down, for longer than a TTL + grace after the election
        deadline = time.monotonic() + 6.0
        while time.monotonic() < deadline:
            assert statuses(new_leader) == {c.name: "ready" for c in clients}
            time.sleep(0.5)
        for c in clients:
            node = next(n for n in new_leader.api("GET", "/v1/nodes") if n["Name"] == c.name)
            events = [e["Message"] for e in new_leader.api("GET", f"/v1/node/{node['ID']}")["Events"]]
            assert "Node heartbeat missed" not in events
    finally:
        cluster.close()
