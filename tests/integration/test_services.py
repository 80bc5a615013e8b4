"""nomadd's service catalog with real agent processes (1 server + 1 raw_exec client):
a group service is registered with the allocation's assigned port and the node's address, its
http check passes while a tcp check on a port nobody listens on fails, the results show on
``/v1/client/allocation/:id/checks``, and stopping the job deregisters the services."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.cluster import Cluster
from tests.integration.test_client_fs_exec import RAW_EXEC, _job, _running, _task

pytestmark = pytest.mark.slow

SERVE = f"exec {shlex.quote(sys.executable)} -m http.server $NOMAD_PORT_http --bind $NOMAD_IP_http"


def _check(kind: str, **kw: Any) -> dict[str, Any]:
    return {"Type": kind, "Interval": 1_000_000_000, "Timeout": 1_000_000_000, **kw}


def test_service_registered_checked_and_deregistered(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    try:
        server = cluster.add_server(bootstrap_expect=1).start()
        cluster.wait_leader([server])
        client = cluster.add_client(servers=[server], extra=RAW_EXEC).start()
        cluster.wait_for(
            lambda: [n["Status"] for n in server.api("GET", "/v1/nodes")] == ["ready"], 30, "client"
        )
        job = _job("svc", {"g": _task("raw_exec", SERVE)})
        group = job["Job"]["TaskGroups"][0]
        group["Networks"] = [{"DynamicPorts": [{"Label": "http"}, {"Label": "idle"}]}]
        group["Services"] = [
            {
                "Name": "web",
                "Provider": "nomad",
                "PortLabel": "http",
                "Tags": ["v1"],
                "Checks": [_check("http", Name="root", Path="/")],
            },
            {"Name": "idle", "PortLabel": "idle", "Checks": [_check("tcp", Name="closed")]},
        ]
        reply = server.api("PUT", "/v1/jobs", job)
        assert "no Consul integration" in reply["Warnings"]  # "idle" has the default provider
        (alloc,) = _running(cluster, server, "svc", 1)
        full = server.api("GET", f"/v1/allocation/{alloc['ID']}")
        ports = {p["Label"]: p for p in full["AllocatedResources"]["Shared"]["Ports"]}

        regs = cluster.wait_for(lambda: server.api("GET", "/v1/service/web"), 20, "web registered")
        (web,) = regs
        assert (web["Port"], web["Address"]) == (ports["http"]["Value"], ports["http"]["HostIP"])
        assert (web["AllocID"], web["JobID"], web["Namespace"], web["Tags"]) == (
            alloc["ID"],
            "svc",
            "default",
            ["v1"],
        )
        assert web["NodeID"] == alloc["NodeID"] and web["Datacenter"] == "dc1"
        listed = server.api("GET", "/v1/services")
        assert listed == [
            {
                "Namespace": "default",
                "Services": [{"ServiceName": "idle", "Tags": []}, {"ServiceName": "web", "Tags": ["v1"]}],
            }
        ]
        by_alloc = server.api("GET", f"/v1/allocation/{alloc['ID']}/services")
        assert sorted(r["ServiceName"] for r in by_alloc) == ["idle", "web"]

        def checks() -> dict[str, str]:
            found = client.api("GET", f"/v1/client/allocation/{alloc['ID']}/checks")
            return {r["Check"]: r["Status"] for r in found.values()}

        # the first run may come before the server listens: the http check passes within seconds
        want = {"root": "success", "closed": "failure"}
        cluster.wait_for(lambda: checks() == want, 20, f"check results {want}")
        assert checks() == want

        out = server.cli("service", "list").stdout
        assert re.search(r"^web\s+\[v1\]$", out, re.M) and re.search(r"^idle\s+\[\]$", out, re.M), out
        out = server.cli("service", "info", "web").stdout
        assert f"{web['Address']}:{web['Port']}" in out and alloc["ID"][:8] in out, out

        server.api("DELETE", "/v1/job/svc")
        cluster.wait_for(lambda: server.api("GET", "/v1/services") == [], 30, "services deregistered")
        assert server.api("GET", "/v1/service/web") == []
    finally:
        cluster.close()
