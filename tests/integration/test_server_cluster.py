"""Issue 2 acceptance 1-2 and 4: real server processes on 127.0.0.1-4.

Elect a leader; SIGKILL it and time the first write through a survivor; the killed server turns
``failed``; ``server force-leave`` drops it from the peer set; a fresh server joins with
``server join`` and becomes a voter; every write is still there. Then a whole-cluster SIGKILL +
restart keeps every committed entry.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.integration.cluster import Agent, Cluster, HTTPError

pytestmark = pytest.mark.slow


def put_var(agent: Agent, path: str, value: str, timeout: float = 5.0) -> dict[str, object]:
    result: dict[str, object] = agent.api("PUT", f"/v1/var/{path}", {"Items": {"v": value}}, timeout=timeout)
    return result


def stale_paths(agent: Agent) -> set[str]:
    found = agent.api("GET", "/v1/vars", params={"stale": "true"}, timeout=3.0)
    return {v["Path"] for v in found}


def start_cluster(cluster: Cluster, n: int = 3) -> list[Agent]:
    servers = [cluster.add_server(bootstrap_expect=n) for _ in range(n)]
    cluster.link(servers)
    for s in servers:
        s.start()
    return servers


def test_elect_fail_over_force_leave_and_join(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    try:
        servers = start_cluster(cluster)
        leader = cluster.wait_leader(servers, timeout=40)

        # acceptance 1: members and peers as the CLI shows them
        out = servers[0].cli("server", "members")
        assert out.returncode == 0, out.stderr
        lines = out.stdout.strip().splitlines()
        assert lines[0].split()[:5] == ["Name", "Address", "Port", "Status", "Leader"]
        assert len(lines) == 4
        assert sum(" alive " in line for line in lines[1:]) == 3
        assert sum(line.split()[4] == "true" for line in lines[1:]) == 1
        peers = servers[1].cli("operator", "raft", "list-peers")
        assert peers.returncode == 0, peers.stderr
        rows = peers.stdout.strip().splitlines()[1:]
        assert len(rows) == 3
        assert all(r.split()[4] == "true" for r in rows)
        assert sum(r.split()[3] == "leader" for r in rows) == 1

        written = set()
        for i in range(5):
            put_var(servers[i % 3], f"before/{i}", str(i))  # followers forward to the leader
            written.add(f"before/{i}")

        # acceptance 2: SIGKILL the leader, time the first write accepted by a survivor
        survivors = [s for s in servers if s is not leader]
        leader.kill(signal.SIGKILL)
        t0 = time.monotonic()

        def write_ok() -> bool:
            try:
                put_var(survivors[0], "after/kill", "1", timeout=3.0)
            except (HTTPError, OSError):
                return False
            return True

        cluster.wait_for(write_ok, 30, "a write after the leader was killed")
        failover = time.monotonic() - t0
        print(f"\nfailover: new leader accepted a write {failover:.2f}s after SIGKILL")
        written.add("after/kill")
        assert failover < 10.0

        cluster.wait_for(
            lambda: cluster.members(survivors[0]).get(leader.member_name) == "failed",
            40,
            "killed leader shown as failed",
        )
        fl = survivors[0].cli("server", "force-leave", leader.member_name)
        assert fl.returncode == 0, fl.stdout + fl.stderr
        cluster.wait_for(
            lambda: (
                leader.raft_addr not in cluster.peers(survivors[0]) and len(cluster.peers(survivors[0])) == 2
            ),
            20,
            "killed leader removed from the peer set",
        )
        cluster.wait_for(  # the force-leave reaches the other survivor by gossip, not at once
            lambda: cluster.members(survivors[1]).get(leader.member_name) in ("left", None),
            10,
            "the other survivor sees the killed leader as left",
        )
        put_var(survivors[1], "after/force-leave", "1")
        written.add("after/force-leave")

        # a fresh 4th server joins with `server join` and becomes a voter
        fourth = cluster.add_server(bootstrap_expect=3)
        fourth.start()
        fourth.wait_http()
        joined = fourth.cli("server", "join", survivors[0].serf_addr)
        assert joined.returncode == 0, joined.stdout + joined.stderr
        assert "Joined 1 servers successfully" in joined.stdout
        cluster.wait_for(
            lambda: fourth.raft_addr in cluster.peers(survivors[0]) and len(cluster.peers(fourth)) == 3,
            30,
            "4th server in the peer set",
        )
        members = [*survivors, fourth]
        new_leader = cluster.wait_leader(members)
        conf = new_leader.api("GET", "/v1/operator/raft/configuration")
        assert {s["Address"] for s in conf["Servers"]} == {m.raft_addr for m in members}
        assert all(s["Voter"] for s in conf["Servers"])
        put_var(fourth, "after/join", "1")
        written.add("after/join")
        for m in members:
            cluster.wait_for(lambda m=m: stale_paths(m) == written, 15, f"all writes on {m.name}")
    finally:
        cluster.close()


def test_whole_cluster_restart_keeps_every_entry(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    try:
        servers = start_cluster(cluster)
        cluster.wait_leader(servers, timeout=40)
        written = {f"k/{i}" for i in range(20)}
        for i in range(20):
            put_var(servers[i % 3], f"k/{i}", str(i))
        for s in servers:
            s.kill(signal.SIGKILL)
        for s in servers:
            s.start()
        leader = cluster.wait_leader(servers, timeout=40)
        for s in servers:
            cluster.wait_for(lambda s=s: stale_paths(s) == written, 20, f"entries on {s.name}")
        var = leader.api("GET", "/v1/var/k/7")
        assert var["Items"] == {"v": "7"}
        put_var(servers[0], "k/after", "x")
    finally:
        cluster.close()
