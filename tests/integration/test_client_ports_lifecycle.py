"""Issue 16 with real agent processes (1 server + 1 client): ports and the client alloc endpoints.

* two allocations asking a dynamic port on one node get different ports, inside the client's
  ``min_dynamic_port``..``max_dynamic_port``, and their tasks see ``NOMAD_PORT_<label>``,
  ``NOMAD_ADDR_<label>``, ``NOMAD_HOST_PORT_<label>``, ``NOMAD_IP_<label>``; the allocation
  shows ``AllocatedResources.Shared.Ports`` and ``Resources.Networks``;
* a static port already held on the node keeps a second allocation off it (it stays queued with
  the collision as the reason);
* ``/v1/client/allocation/:id/stats``, ``alloc restart`` (restarts the task in place),
  ``alloc stop`` (replaced), ``/v1/client/allocation/:id/gc`` and ``/v1/client/gc``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.integration.cluster import Agent, Cluster, HTTPError
from tests.integration.test_client_fs_exec import RAW_EXEC, _job, _running, _task

pytestmark = pytest.mark.slow

ENV_SCRIPT = (
    'echo "port=$NOMAD_PORT_http host=$NOMAD_HOST_PORT_http addr=$NOMAD_ADDR_http ip=$NOMAD_IP_http"; '
    "exec sleep 600"
)


def _with_ports(job: dict[str, Any], **network: Any) -> dict[str, Any]:
    for tg in job["Job"]["TaskGroups"]:
        tg["Networks"] = [network]
    return job


def _logs(client: Agent, alloc_id: str) -> str:
    out = client.cli("alloc", "logs", alloc_id, "t")
    return out.stdout


def test_ports_and_client_alloc_endpoints(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    try:
        server = cluster.add_server(bootstrap_expect=1).start()
        cluster.wait_leader([server])
        extra = {**RAW_EXEC, "client": {"min_dynamic_port": 31000, "max_dynamic_port": 31010}}
        client = cluster.add_client(servers=[server], extra=extra).start()
        cluster.wait_for(
            lambda: [n["Status"] for n in server.api("GET", "/v1/nodes")] == ["ready"], 30, "client"
        )

        job = _job("dyn", {"g": _task("raw_exec", ENV_SCRIPT)})
        job["Job"]["TaskGroups"][0]["Count"] = 2
        server.api("PUT", "/v1/jobs", _with_ports(job, DynamicPorts=[{"Label": "http"}]))
        allocs = _running(cluster, server, "dyn", 2)
        seen = {}
        for a in allocs:
            full = server.api("GET", f"/v1/allocation/{a['ID']}")
            (port,) = full["AllocatedResources"]["Shared"]["Ports"]
            assert port["Label"] == "http" and 31000 <= port["Value"] <= 31010
            assert full["Resources"]["Networks"][0]["DynamicPorts"][0]["Value"] == port["Value"]
            line = cluster.wait_for(
                lambda a=a: re.search(r"port=\S+.*", _logs(client, a["ID"])), 15, "env line"
            )
            ip = port["HostIP"]
            want = f"port={port['Value']} host={port['Value']} addr={ip}:{port['Value']} ip={ip}"
            assert line.group(0) == want
            seen[a["ID"]] = port["Value"]
        assert len(set(seen.values())) == 2, seen
        status = client.cli("alloc", "status", allocs[0]["ID"])
        port = seen[allocs[0]["ID"]]
        assert re.search(rf"^\*http\s+yes\s+\S+:{port}$", status.stdout, re.M), status.stdout

        # a static port held on the (only) node keeps a second holder off it
        first = _job("static1", {"g": _task("raw_exec", "exec sleep 600")})
        server.api("PUT", "/v1/jobs", _with_ports(first, ReservedPorts=[{"Label": "web", "Value": 18080}]))
        _running(cluster, server, "static1", 1)
        second = _job("static2", {"g": _task("raw_exec", "exec sleep 600")})
        server.api("PUT", "/v1/jobs", _with_ports(second, ReservedPorts=[{"Label": "web", "Value": 18080}]))

        def blocked() -> dict[str, Any] | None:
            evals = server.api("GET", "/v1/job/static2/evaluations")
            failed = [e["FailedTGAllocs"]["g"] for e in evals if (e.get("FailedTGAllocs") or {}).get("g")]
            return failed[0] if failed else None

        metric = cluster.wait_for(blocked, 20, "static2 not placed")
        assert metric["DimensionExhausted"] == {"network: reserved port collision": 1}
        assert server.api("GET", "/v1/job/static2/allocations") == []

        # stats, restart in place, gc of a stopped allocation, client gc
        alloc_id = allocs[0]["ID"]
        stats = client.api("GET", f"/v1/client/allocation/{alloc_id}/stats")
        assert stats["Tasks"]["t"]["ResourceUsage"]["MemoryStats"]["RSS"] > 0
        assert stats["ResourceUsage"]["CpuStats"]["Measured"]
        restart = client.cli("alloc", "restart", alloc_id[:8])
        assert restart.returncode == 0, restart

        def restarted() -> bool:
            state = server.api("GET", f"/v1/allocation/{alloc_id}")["TaskStates"]["t"]
            return state["Restarts"] == 1 and state["State"] == "running"

        cluster.wait_for(restarted, 20, "task restarted in place")
        with pytest.raises(HTTPError) as err:
            client.api("PUT", f"/v1/client/allocation/{alloc_id}/restart", {"TaskName": "nope"})
        assert err.value.status == 404
        with pytest.raises(HTTPError) as err:
            client.api("GET", f"/v1/client/allocation/{alloc_id}/gc")
        assert err.value.status == 400 and "still running" in err.value.body
        stop = client.cli("alloc", "stop", "-detach", alloc_id[:8])
        assert stop.returncode == 0 and stop.stdout.strip(), stop
        cluster.wait_for(
            lambda: server.api("GET", f"/v1/allocation/{alloc_id}")["ClientStatus"] == "complete",
            20,
            "stopped",
        )
        cluster.wait_for(
            lambda: (
                sum(a["ClientStatus"] == "running" for a in server.api("GET", "/v1/job/dyn/allocations")) == 2
            ),
            30,
            "the stopped allocation replaced",
        )
        # following a file of a finished allocation prints it and ends
        followed = client.cli("alloc", "fs", "-f", alloc_id, "alloc/logs/t.stdout.0", timeout=20)
        assert followed.returncode == 0 and "port=" in followed.stdout, followed
        client.api("GET", f"/v1/client/allocation/{alloc_id}/gc")
        with pytest.raises(HTTPError) as err:
            client.api("GET", f"/v1/client/fs/ls/{alloc_id}")
        assert err.value.status == 404
        assert client.api("PUT", "/v1/client/gc") is None
    finally:
        cluster.close()
