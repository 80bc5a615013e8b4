"""Issue 3 acceptance 1, 2, 3 and 5 with real processes: 1 server + 3 clients.

Three clients register and turn ``ready`` with attributes and resources (``node status``);
SIGKILL one with ``min_heartbeat_ttl=2s heartbeat_grace=1s``: it is ``down`` within its TTL +
grace (+1 s), the others stay ready; restarted it is ``ready`` again with the same node ID. A
graceful leave (``leave_on_terminate``) marks its node down within 1 s and exits 0. With
``node_gc_threshold=5s`` a down node disappears after the threshold; ``system gc`` removes one at
once.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.cluster import Agent, Cluster

pytestmark = pytest.mark.slow

SERVER_EXTRA = {
    "server": {
        "min_heartbeat_ttl": "2s",
        "heartbeat_grace": "1s",
        "node_gc_threshold": "5s",
        "node_gc_interval": "500ms",
    }
}


RAW_EXEC = {"plugin": {"raw_exec": {"config": {"enabled": True}}}}


def nodes(agent: Agent) -> dict[str, dict[str, Any]]:
    return {n["Name"]: n for n in agent.api("GET", "/v1/nodes", timeout=3.0)}


def status_of(agent: Agent, name: str) -> str:
    n = nodes(agent).get(name)
    return n["Status"] if n else "<gone>"


def client_ttl(client: Agent) -> float:
    stats = client.api("GET", "/v1/agent/self", timeout=3.0)["stats"]["client"]
    return float(stats["heartbeat_ttl"].rstrip("s"))


def test_register_heartbeat_down_leave_gc(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    try:
        server = cluster.add_server(bootstrap_expect=1, extra=SERVER_EXTRA).start()
        cluster.wait_leader([server])  # clients back off 15-30 s (Nomad) when no server answers
        clients = [
            cluster.add_client(servers=[server], extra={"leave_on_terminate": i == 2, **RAW_EXEC})
            for i in range(3)
        ]
        for c in clients:
            c.start()
        names = [c.name for c in clients]

        # 1. three ready nodes with attributes and resources
        def all_ready() -> bool:
            found = nodes(server)
            return all(found.get(n, {}).get("Status") == "ready" for n in names)

        cluster.wait_for(all_ready, 30, "3 ready nodes")

        out = server.cli("node", "status")
        assert out.returncode == 0, out.stderr
        lines = out.stdout.strip().splitlines()
        assert lines[0].split() == [
            "ID",
            "Node",
            "Pool",
            "DC",
            "Name",
            "Class",
            "Drain",
            "Eligibility",
            "Status",
        ]
        assert len(lines) == 4
        assert all(line.split()[-1] == "ready" and len(line.split()[0]) == 8 for line in lines[1:])
        ids = {name: n["ID"] for name, n in nodes(server).items()}
        full = server.api("GET", f"/v1/node/{ids[names[0]]}")
        assert full["SecretID"] == ""
        assert full["Attributes"]["kernel.name"] == "linux"
        assert "cpu.arch" in full["Attributes"]
        assert full["NodeResources"]["Memory"]["MemoryMB"] > 0
        assert full["NodeResources"]["Cpu"]["CpuShares"] > 0
        assert full["Drivers"]["raw_exec"]["Detected"] is True
        single = server.cli("node", "status", ids[names[0]][:8])
        assert single.returncode == 0, single.stderr
        assert "Node registered" in single.stdout
        health = clients[0].api("GET", "/v1/agent/health")
        assert health == {"client": {"ok": True, "message": "ok"}}
        assert clients[0].api("GET", "/v1/agent/servers") == [server.http_addr]

        # 2. SIGKILL -> down within TTL + grace + 1 s; others stay ready; restart -> same ID, ready
        victim = clients[0]
        ttl = client_ttl(victim)
        assert 2.0 <= ttl < 4.0
        victim.kill(signal.SIGKILL)
        t0 = time.monotonic()
        cluster.wait_for(lambda: status_of(server, victim.name) == "down", ttl + 1.0 + 3.0, "victim down")
        took = time.monotonic() - t0
        assert took <= ttl + 1.0 + 1.0, f"down after {took:.2f}s, ttl={ttl:.2f}s"
        event = server.api("GET", f"/v1/node/{ids[victim.name]}")["Events"][-1]["Message"]
        assert event == "Node heartbeat missed"
        assert all(status_of(server, c.name) == "ready" for c in clients[1:])
        victim.start()
        cluster.wait_for(lambda: status_of(server, victim.name) == "ready", 30, "victim ready again")
        assert nodes(server)[victim.name]["ID"] == ids[victim.name]
        assert len(nodes(server)) == 3
        events = [e["Message"] for e in server.api("GET", f"/v1/node/{ids[victim.name]}")["Events"]]
        assert events[-1] in ("Node re-registered", "Node reregistered by heartbeat")

        # 3. graceful leave: down within 1 s, exit 0
        leaver = clients[2]
        leaver.kill(signal.SIGTERM)
        t0 = time.monotonic()
        cluster.wait_for(lambda: status_of(server, leaver.name) == "down", 3.0, "leaver down")
        took = time.monotonic() - t0
        assert took <= 1.0, f"leave took {took:.2f}s"
        assert leaver.wait_exit(10) == 0
        events = [e["Message"] for e in server.api("GET", f"/v1/node/{ids[leaver.name]}")["Events"]]
        assert events[-1] == "Node left"

        # 5a. node_gc_threshold=5s: the down node disappears after (not before) the threshold
        time.sleep(0.5)
        assert status_of(server, leaver.name) == "down"
        cluster.wait_for(lambda: status_of(server, leaver.name) == "<gone>", 10, "leaver collected")
        gone_after = time.monotonic() - t0
        assert gone_after >= 5.0 - 0.2, f"collected after {gone_after:.2f}s"

        # 5b. `system gc` removes a down node at once
        other = clients[1]
        other.kill(signal.SIGKILL)
        cluster.wait_for(lambda: status_of(server, other.name) == "down", 10, "other down")
        out = server.cli("system", "gc")
        assert out.returncode == 0, out.stderr
        assert status_of(server, other.name) == "<gone>"
    finally:
        cluster.close()
