"""Issue 5 acceptance 3 (root): servers and a client in network namespaces on one L2 segment.

Three servers with ``bootstrap_expect=3`` whose only join entry is ``mdns://`` elect a leader;
a client whose only server entry is ``mdns://`` registers; a server of another region, also
announcing on the segment, is ignored by both.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import agent_env, is_root, need
from tests.integration.cluster import Agent, Cluster
from tests.integration.netns import NetnsLab

pytestmark = [
    pytest.mark.slow,
    pytest.mark.root,
]


def _members(agent: Agent) -> set[str]:
    return {m["Name"] for m in agent.api("GET", "/v1/agent/members", timeout=3.0)["Members"]}


def _discover(lab: NetnsLab, host: int, *args: str) -> list[str]:
    """``nomadd operator discover`` run inside a namespace: the addresses it prints."""
    out = subprocess.run(
        [*lab.wrap(host), sys.executable, "-m", "nomadd", "operator", "discover", "-timeout=2s", *args],
        capture_output=True,
        text=True,
        timeout=20,
        env=agent_env(),
    )
    return out.stdout.split()


def _nodes(agent: Agent) -> dict[str, str]:
    return {n["Name"]: n["Status"] for n in agent.api("GET", "/v1/nodes", timeout=3.0)}


def test_servers_and_client_find_each_other_over_mdns(tmp_path: Path) -> None:
    need(is_root(), "needs root to create network namespaces")
    lab = NetnsLab(5)
    cluster = Cluster(tmp_path)
    try:
        join = {"server_join": {"retry_join": ["mdns://"], "retry_interval": "1s"}}
        servers = [
            cluster.add_server(bootstrap_expect=3, ip=lab.ips[i], wrap=lab.wrap(i), extra={"server": join})
            for i in range(3)
        ]
        other = cluster.add_server(
            bootstrap_expect=1, ip=lab.ips[3], wrap=lab.wrap(3), extra={"region": "elsewhere"}
        )
        client = cluster.add_client(
            ip=lab.ips[4], wrap=lab.wrap(4), extra={"client": {"servers": ["mdns://"]}}
        )
        for agent in (other, *servers):
            agent.start()
        # what the client's host sees on the segment: the 3 servers of its region, HTTP ports
        want = sorted(s.http_addr for s in servers)
        cluster.wait_for(
            lambda: sorted(_discover(lab, 4, "-port-kind=http", "mdns://")) == want,
            15,
            "the 3 servers announced on mDNS",
        )
        assert _discover(lab, 4, "-region=elsewhere", "-port-kind=serf", "mdns://") == [other.serf_addr]
        try:
            leader = cluster.wait_leader(servers, timeout=60)
        except AssertionError as err:
            logs = "\n".join(f"--- {a.name}\n{a.output[-3000:]}" for a in (*servers, other))
            raise AssertionError(f"{err}\n{logs}") from None
        names = {s.member_name for s in servers}
        cluster.wait_for(lambda: all(_members(s) == names for s in servers), 20, "3 members")
        assert other.member_name not in _members(leader)
        client.start()
        cluster.wait_for(lambda: _nodes(leader).get(client.name) == "ready", 40, "client ready")
        assert _nodes(other) == {}  # the other region's server never saw the client
    finally:
        cluster.close()
        lab.close()
