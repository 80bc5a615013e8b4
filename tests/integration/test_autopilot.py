"""Issue 8 acceptance 7: autopilot removes a server killed for good once its replacement is
healthy, and the cluster then survives another failure. Also the autopilot CLI/API shapes and
``operator raft transfer-leadership``.

Three servers with ``min_quorum = 3`` and a short ``server_stabilization_time``; one is
SIGKILLed; a replacement joins; the dead one leaves the peer set only after
``last_contact_threshold + server_stabilization_time`` and once the replacement is stable; then
the leader is SIGKILLed and the two left elect a leader and accept writes.
"""

from __future__ import annotations

import datetime
import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.cluster import Agent, Cluster, HTTPError

pytestmark = pytest.mark.slow

STABILIZATION_S = 8.0
AUTOPILOT = {
    "autopilot": {
        "last_contact_threshold": "200ms",
        "server_stabilization_time": f"{int(STABILIZATION_S)}s",
        "min_quorum": 3,
    }
}


def _health(agent: Agent) -> dict[str, Any]:
    """``/v1/operator/autopilot/health``: 200 when healthy, 429 (same body) when not."""
    try:
        return dict(agent.api("GET", "/v1/operator/autopilot/health"))
    except HTTPError as err:
        if err.status != 429:
            raise
        return dict(json.loads(err.body))


def _unix(rfc3339: str) -> float:
    t = datetime.datetime.strptime(rfc3339, "%Y-%m-%dT%H:%M:%S.%fZ")
    return t.replace(tzinfo=datetime.UTC).timestamp()


def test_dead_server_is_replaced_and_cluster_survives_another_failure(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    try:
        servers = [cluster.add_server(bootstrap_expect=3, extra=AUTOPILOT) for _ in range(3)]
        cluster.link(servers)
        for s in servers:
            s.start()
        leader = cluster.wait_leader(servers, timeout=40)

        conf = leader.api("GET", "/v1/operator/autopilot/configuration")
        assert conf["CleanupDeadServers"] is True and conf["LastContactThreshold"] == "200ms"
        assert conf["ServerStabilizationTime"] == "8s" and conf["MaxTrailingLogs"] == 250
        assert conf["MinQuorum"] == 3 and conf["ModifyIndex"] > 0
        out = servers[0].cli("operator", "autopilot", "get-config")
        assert out.returncode == 0 and "CleanupDeadServers = true" in out.stdout, out.stderr
        health = cluster.wait_for(
            lambda: (h := _health(leader))["Healthy"] and h,
            timeout=30,
            what="healthy cluster",
        )
        assert health["FailureTolerance"] == 1 and len(health["Servers"]) == 3
        # set-config changes only what it is given (check-and-set on ModifyIndex)
        out = servers[2].cli("operator", "autopilot", "set-config", "-max-trailing-logs=300")
        assert out.returncode == 0 and "Configuration updated!" in out.stdout, out.stderr
        conf2 = leader.api("GET", "/v1/operator/autopilot/configuration")
        assert conf2["MaxTrailingLogs"] == 300 and conf2["ModifyIndex"] > conf["ModifyIndex"]
        assert conf2["ServerStabilizationTime"] == "8s" and conf2["MinQuorum"] == 3
        bad = servers[2].cli("operator", "autopilot", "set-config", "-last-contact-threshold=soon")
        assert bad.returncode == 1 and "Error parsing -last-contact-threshold" in bad.stderr
        out = servers[1].cli("operator", "autopilot", "health")
        assert out.returncode == 0 and "Healthy: true" in out.stdout, out.stderr

        # transfer leadership to a named follower
        target = next(s for s in servers if s is not leader)
        out = servers[0].cli("operator", "raft", "transfer-leadership", f"-peer-address={target.raft_addr}")
        assert out.returncode == 0, out.stderr
        leader = cluster.wait_for(lambda: cluster.leader_of(servers) is target and target, timeout=20)

        # a follower dies for good; a replacement joins
        dead = next(s for s in servers if s is not leader)
        dead.kill(signal.SIGKILL)
        killed_at = time.monotonic()
        live = [s for s in servers if s is not dead]
        new = cluster.add_server(bootstrap_expect=3, extra=AUTOPILOT)
        new.config["server"]["server_join"] = {
            "retry_join": [s.serf_addr for s in live],
            "retry_interval": "1s",
        }
        new.start()
        cluster.wait_for(
            lambda: new.raft_addr in cluster.peers(leader), timeout=60, what="replacement is a peer"
        )
        joined_at = time.monotonic()
        cluster.wait_for(
            lambda: dead.raft_addr not in cluster.peers(leader), timeout=90, what="dead server removed"
        )
        removed_at = time.monotonic()
        # at that moment the replacement had been healthy for the stabilization time
        report = _health(leader)
        entry = next(s for s in report["Servers"] if s["Address"] == new.raft_addr)
        stable_for = time.time() - _unix(entry["StableSince"])
        logs = "\n".join(
            ln for a in cluster.agents for ln in a.output.splitlines() if "autopilot" in ln or "peer" in ln
        )
        assert entry["Healthy"] and stable_for >= STABILIZATION_S - 0.5, (entry, stable_for, logs[-6000:])
        assert removed_at - killed_at >= 0.2 + STABILIZATION_S
        group = [*live, new]
        assert cluster.peers(leader) == sorted(s.raft_addr for s in group)
        health = cluster.wait_for(
            lambda: (h := _health(leader))["Healthy"] and h,
            timeout=30,
            what="healthy again",
        )
        assert {s["Address"] for s in health["Servers"]} == {s.raft_addr for s in group}

        # another server fails (the leader): the two left still hold a quorum
        leader.api("PUT", "/v1/var/before", {"Items": {"v": "1"}})
        leader.kill(signal.SIGKILL)
        rest = [s for s in group if s is not leader]
        new_leader = cluster.wait_leader(rest, timeout=40)
        new_leader.api("PUT", "/v1/var/after", {"Items": {"v": "1"}})
        for s in rest:
            cluster.wait_for(
                lambda s=s: (
                    {v["Path"] for v in s.api("GET", "/v1/vars", params={"stale": "true"})}
                    >= {"before", "after"}
                ),
                timeout=20,
                what=f"writes on {s.name}",
            )
        print(
            f"autopilot: removed {removed_at - killed_at:.1f}s after the kill, "
            f"{removed_at - joined_at:.1f}s after the replacement joined (stable for {stable_for:.1f}s)"
        )
    finally:
        cluster.close()
