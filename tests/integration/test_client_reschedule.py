"""Issue 4 acceptance 2 and 3 with real client processes: 3 servers + 2 clients.

A count-4 service job spreads over both clients. SIGKILL one client agent (its tasks keep
running): its allocations become ``lost`` and replacements run on the other client within
TTL + grace + 2 s; restarted, the killed client stops the replaced allocations' tasks. Then a
graceful leave of the other client: replacements run elsewhere within 2 s (figure printed).
"""

from __future__ import annotations

import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.integration.cluster import Agent, Cluster
from tests.integration.test_client_allocs import RAW_EXEC, alive, destroy, handles, job

pytestmark = pytest.mark.slow

SERVER_EXTRA = {"server": {"min_heartbeat_ttl": "2s", "heartbeat_grace": "1s"}}


def allocs(server: Agent) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = server.api("GET", "/v1/job/spread/allocations", timeout=5.0)
    return found


def live_on(server: Agent, node_id: str) -> list[dict[str, Any]]:
    return [
        a
        for a in allocs(server)
        if a["NodeID"] == node_id and a["DesiredStatus"] == "run" and a["ClientStatus"] == "running"
    ]


def test_lost_and_replaced_then_stopped_on_return(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    started: list[dict[str, Any]] = []
    try:
        servers = [cluster.add_server(bootstrap_expect=3, extra=SERVER_EXTRA) for _ in range(3)]
        cluster.link(servers)
        for s in servers:
            s.start()
        leader = cluster.wait_leader(servers, timeout=40)
        clients = [
            cluster.add_client(servers=servers, extra={"leave_on_terminate": True, **RAW_EXEC}).start()
            for _ in range(2)
        ]

        def node_ids() -> dict[str, str]:
            found = leader.api("GET", "/v1/nodes", timeout=3.0)
            return {n["Name"]: n["ID"] for n in found if n["Status"] == "ready"}

        ids = cluster.wait_for(lambda: len(node_ids()) == 2 and node_ids(), 30, "2 ready clients")
        leader.api("PUT", "/v1/jobs", job("spread", 4))
        a, b = clients
        cluster.wait_for(
            lambda: len(live_on(leader, ids[a.name])) == 2 and len(live_on(leader, ids[b.name])) == 2,
            30,
            "2 running allocations on each client",
        )
        cluster.wait_for(lambda: len(handles(a)) == 2 and len(handles(b)) == 2, 10, "handles stored")
        a_tasks = list(handles(a).values())
        started = a_tasks + list(handles(b).values())
        ttl = float(a.api("GET", "/v1/agent/self")["stats"]["client"]["heartbeat_ttl"].rstrip("s"))

        # an allocation's logs asked of the other client's agent: forwarded to the node that runs it
        on_b = live_on(leader, ids[b.name])[0]["ID"]
        url = f"{a.url}/v1/client/fs/logs/{on_b}?task=t&type=stdout&plain=true"
        text = cluster.wait_for(
            lambda: "tick" in (t := urllib.request.urlopen(url, timeout=5).read().decode()) and t, 10, "logs"
        )
        assert text.startswith("tick 0")

        # SIGKILL client a: its allocations are lost and replaced on b
        a.kill(signal.SIGKILL)
        t0 = time.monotonic()
        cluster.wait_for(lambda: len(live_on(leader, ids[b.name])) == 4, ttl + 1.0 + 6.0, "replacements on b")
        took = time.monotonic() - t0
        print(f"replacements running after SIGKILL in {took:.2f}s (ttl {ttl:.2f}s + grace 1s)")
        assert took <= ttl + 1.0 + 2.0
        lost = [x for x in allocs(leader) if x["NodeID"] == ids[a.name]]
        assert len(lost) == 2
        assert all(x["ClientStatus"] == "lost" and x["DesiredStatus"] == "stop" for x in lost)
        started += list(handles(b).values())
        assert all(alive(h) for h in a_tasks)  # the agent died, not its tasks

        # restart a: it recovers its tasks, learns they were replaced, stops them
        a.start()
        cluster.wait_for(lambda: not any(alive(h) for h in a_tasks), 30, "replaced tasks stopped on a")
        cluster.wait_for(lambda: a.name in node_ids(), 30, "a ready again")

        # graceful leave of b: replacements run elsewhere (on a) within 2 s
        b.kill(signal.SIGTERM)
        t0 = time.monotonic()
        cluster.wait_for(lambda: len(live_on(leader, ids[a.name])) == 4, 10, "replacements on a")
        took = time.monotonic() - t0
        print(f"replacements running after graceful leave in {took:.2f}s")
        assert took <= 2.0
        assert b.wait_exit(10) == 0
        started += list(handles(a).values())
    finally:
        cluster.close()
        if started:
            destroy(started)
