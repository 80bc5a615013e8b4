"""A restarted server rejoins the servers it knew by itself (``serf_peers.json``), as Nomad's
does from ``serf/peers.json``: loopback, two one-server regions federated by a ``server join``,
no ``retry_join`` between them."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

from tests.integration.cluster import Agent, Cluster

REJOIN_S = 10.0  # well under the gossip's reconnect interval (30 s): the other side's retry of
# the failed member would bring it back too, but later, and only while it is remembered


def _alive(agent: Agent) -> set[str]:
    members: list[dict[str, Any]] = agent.api("GET", "/v1/agent/members")["Members"]
    return {m["Name"] for m in members if m["Status"] == "alive"}


def test_a_restarted_server_rejoins_the_servers_it_knew(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    try:
        east, west = (
            cluster.add_server(bootstrap_expect=1, name=region, extra={"region": region})
            for region in ("east", "west")
        )
        for s in (east, west):
            s.start()
        cluster.wait_for(lambda: cluster.leader_of([east]) and cluster.leader_of([west]), 40, "two leaders")
        west.api("PUT", "/v1/agent/join", params={"address": east.serf_addr})
        both = {east.member_name, west.member_name}
        cluster.wait_for(lambda: _alive(east) == both and _alive(west) == both, 20, "federated")
        peers = east.data_dir / "server" / "serf_peers.json"
        assert json.loads(peers.read_text()) == [west.serf_addr]

        east.kill(signal.SIGKILL)  # a crash: no leave, its peers file stays
        cluster.wait_for(lambda: _alive(west) == {west.member_name}, 30, "west sees east gone")
        east.start()
        east.wait_http()
        cluster.wait_for(lambda: _alive(east) == both, REJOIN_S, "east rejoined west by itself")
        # logged once the join returns, which may be just after the member table shows west
        line = "rejoined known servers joined=1 known=1"
        cluster.wait_for(lambda: line in east.output, 10, f"east logs {line!r}")
        cluster.wait_for(lambda: _alive(west) == both, REJOIN_S, "west sees east again")
    finally:
        cluster.close()
