"""Issue 5 acceptance 1 and 2 with real agents and a real dnsmasq.

1. 3 servers with ``bootstrap_expect=3`` whose only join entry is a ``dns+srv://`` name elect a
   leader; a client whose only server entry is a ``dns+srv://`` name registers.
2. The records change (a 4th server added, one removed) and dnsmasq restarts; the client's
   servers all die; the client finds the new server through DNS and registers there, without
   a restart.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from tests.dnsmasq import Dnsmasq, Srv
from tests.integration.cluster import Agent, Cluster

pytestmark = pytest.mark.slow

SERF_NAME = "_nomad-serf._tcp.service.consul"
HTTP_NAME = "_nomad-http._tcp.service.consul"
# Short heartbeats so the client notices dead servers quickly.
SERVER_EXTRA = {"server": {"min_heartbeat_ttl": "1s", "heartbeat_grace": "1s"}}


def _host(agent: Agent) -> str:
    return f"{agent.name}.node.consul"


def _records(servers: list[Agent]) -> list[Srv]:
    out = [Srv(SERF_NAME, _host(s), s.serf_port, 0, 10) for s in servers]
    return out + [Srv(HTTP_NAME, _host(s), s.http_port, 0, 10) for s in servers]


def _use_dns(agent: Agent, dns: Dnsmasq) -> None:
    agent.config["discovery"] = {"dns_resolvers": [dns.address]}


def _nodes(agent: Agent) -> dict[str, str]:
    return {n["Name"]: n["Status"] for n in agent.api("GET", "/v1/nodes", timeout=3.0)}


def _logs(agents: list[Agent], dns: Dnsmasq) -> str:
    out = "\n".join(f"--- {a.name}\n{a.output[-3000:]}" for a in agents)
    return f"{out}\n--- dnsmasq\n{dns.log()[-2000:]}"


def _start_servers(cluster: Cluster, dns: Dnsmasq, servers: list[Agent]) -> Agent:
    for s in servers:
        _use_dns(s, dns)
        s.config["server"]["server_join"] = {
            "retry_join": [f"dns+srv://{SERF_NAME}"],
            "retry_interval": "1s",
        }
        s.start()
    try:
        return cluster.wait_leader(servers, timeout=40)
    except AssertionError as err:
        raise AssertionError(f"{err}\n{_logs(servers, dns)}") from None


def test_servers_bootstrap_and_client_registers_from_srv_records(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    (tmp_path / "dns").mkdir()
    dns: Dnsmasq | None = None
    try:
        servers = [cluster.add_server(bootstrap_expect=3) for _ in range(3)]
        hosts = {_host(s): [s.ip] for s in servers}
        dns = Dnsmasq(tmp_path / "dns", srv=_records(servers), hosts=hosts)
        dns.start()
        leader = _start_servers(cluster, dns, servers)
        cluster.wait_for(lambda: all(len(cluster.peers(s)) == 3 for s in servers), 20, what="3 raft peers")
        assert any("retry join completed" in s.output for s in servers)

        client = cluster.add_client(extra={"client": {"servers": [f"dns+srv://{HTTP_NAME}"]}})
        _use_dns(client, dns)
        client.start()
        cluster.wait_for(lambda: _nodes(leader).get(client.name) == "ready", 30, "client ready")
        log = dns.log()
        assert f"query[SRV] {SERF_NAME}" in log
        assert f"query[SRV] {HTTP_NAME}" in log
    finally:
        cluster.close()
        if dns is not None:
            dns.stop()


def test_client_follows_changed_records_after_losing_its_servers(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    (tmp_path / "dns").mkdir()
    dns: Dnsmasq | None = None
    try:
        servers = [cluster.add_server(bootstrap_expect=3, extra=SERVER_EXTRA) for _ in range(3)]
        # The 4th server forms its own one-server cluster later (same region).
        fourth = cluster.add_server(bootstrap_expect=1, extra=SERVER_EXTRA)
        hosts = {_host(s): [s.ip] for s in [*servers, fourth]}
        dns = Dnsmasq(tmp_path / "dns", srv=_records(servers), hosts=hosts)
        dns.start()
        leader = _start_servers(cluster, dns, servers)
        client = cluster.add_client(extra={"client": {"servers": [f"dns+srv://{HTTP_NAME}"]}})
        _use_dns(client, dns)
        client.start()
        cluster.wait_for(lambda: _nodes(leader).get(client.name) == "ready", 30, "client ready")

        # Records: server 1 removed, server 4 added. Then the old servers all go away.
        dns.restart(srv=_records([*servers[1:], fourth]))
        _use_dns(fourth, dns)
        fourth.start()
        fourth.wait_http()
        cluster.wait_leader([fourth], timeout=30)
        seen = len(dns.log())
        for s in servers:
            s.kill(signal.SIGKILL)

        def registered_on_fourth() -> Any:
            return _nodes(fourth).get(client.name) == "ready"

        try:
            cluster.wait_for(registered_on_fourth, 40, "client registered on the new server")
        except AssertionError as err:
            raise AssertionError(f"{err}\n{_logs([client, fourth], dns)}") from None
        assert client.running()
        assert len(client.runs) == 1  # the same process: no restart
        assert f"query[SRV] {HTTP_NAME}" in dns.log()[seen:]  # found through DNS again
    finally:
        cluster.close()
        if dns is not None:
            dns.stop()
