"""Issue 5 acceptance 1 (server side) with real agents: 3 servers with ``bootstrap_expect=3``
whose only join entry is a ``dns+srv://`` name served by a real dnsmasq elect a leader.

The client side (a client with only the same entry registers) waits for the client agent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dnsmasq import Dnsmasq, Srv
from tests.integration.cluster import Agent, Cluster

pytestmark = pytest.mark.slow

SERF_NAME = "_nomad-serf._tcp.service.consul"


def _records(servers: list[Agent]) -> tuple[list[Srv], dict[str, list[str]]]:
    srv = [Srv(SERF_NAME, f"{s.name}.node.consul", s.serf_port, 0, 10) for s in servers]
    hosts = {f"{s.name}.node.consul": [s.ip] for s in servers}
    return srv, hosts


def test_servers_bootstrap_from_srv_records(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    dns: Dnsmasq | None = None
    try:
        servers = [cluster.add_server(bootstrap_expect=3) for _ in range(3)]
        srv, hosts = _records(servers)
        dns = Dnsmasq(tmp_path / "dns", srv=srv, hosts=hosts)
        (tmp_path / "dns").mkdir()
        dns.start()
        entry = f"dns+srv://{SERF_NAME}"
        for s in servers:
            s.config["discovery"] = {"dns_resolvers": [dns.address]}
            s.config["server"]["server_join"] = {"retry_join": [entry], "retry_interval": "1s"}
            s.start()
        try:
            leader = cluster.wait_leader(servers, timeout=40)
        except AssertionError as err:
            logs = "\n".join(f"--- {s.name}\n{s.output[-3000:]}" for s in servers)
            raise AssertionError(f"{err}\n{logs}\n--- dnsmasq\n{dns.log()[-2000:]}") from None
        assert leader in servers
        cluster.wait_for(lambda: all(len(cluster.peers(s)) == 3 for s in servers), 20, what="3 raft peers")
        assert f"query[SRV] {SERF_NAME}" in dns.log()
        assert any("retry join completed" in s.output for s in servers)
    finally:
        cluster.close()
        if dns is not None:
            dns.stop()
