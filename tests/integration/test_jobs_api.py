"""Jobs through real server processes with simulated nodes (registered over the internal RPC,
heartbeating from the test; no client agent, no tasks): register → eval → placements, CLI
monitor and views, validation errors, placement failure → blocked → unblocked by a new node,
node down → lost and replaced, leader failover restores the broker."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from nomadd.scheduler.testing import mock_node
from nomadd.structs.node import NodeCpuResources, NodeStatus
from nomadd.structs.requests import Method, Req
from nomadd.structs.requests.node import (
    NODE_REGISTER,
    NODE_UPDATE_STATUS,
    NodeRegisterRequest,
    NodeUpdateStatusRequest,
)
from tests.helpers import wait_for
from tests.integration.cluster import Agent, Cluster, HTTPError
from tests.integration.internal_rpc import call_internal

pytestmark = pytest.mark.slow


def rpc(agent: Agent, method: Method[Req, Any], request: Req, timeout: float = 10.0) -> Any:
    """Call a node's internal RPC as that node (its ID and SecretID, from the request); returns
    the reply's wire form; raises RuntimeError on an error reply."""
    node = request.node if isinstance(request, NodeRegisterRequest) else None
    ident = (
        (node.id, node.secret_id)
        if node
        else (getattr(request, "node_id", ""), getattr(request, "secret_id", ""))
    )
    _status, reply = call_internal(agent, method, request, node=ident, timeout=timeout)
    if "error" in reply:
        raise RuntimeError(f"{method}: {reply['error']}")
    return reply["ok"]


def sim_node(agent: Agent, *, cpu: int = 4000, name: str = "") -> dict[str, str]:
    """Register a ready simulated node; returns {"ID", "SecretID"}."""
    node = mock_node(str(uuid.uuid4()))
    res = node.node_resources
    node = dataclasses.replace(
        node,
        name=name or node.name,
        status=NodeStatus.INITIALIZING,
        node_resources=dataclasses.replace(res, cpu=NodeCpuResources(cpu_shares=cpu, total_cpu_cores=4)),
    )
    rpc(agent, NODE_REGISTER, NodeRegisterRequest(node=node))
    heartbeat(agent, {"ID": node.id, "SecretID": node.secret_id})
    return {"ID": node.id, "SecretID": node.secret_id}


def heartbeat(agent: Agent, node: dict[str, str]) -> None:
    ready = NodeUpdateStatusRequest(node_id=node["ID"], secret_id=node["SecretID"], status=NodeStatus.READY)
    rpc(agent, NODE_UPDATE_STATUS, ready)


def job(job_id: str = "web", *, count: int = 3, cpu: int = 100, job_type: str = "service") -> dict[str, Any]:
    return {
        "ID": job_id,
        "Type": job_type,
        "Datacenters": ["dc1"],
        "TaskGroups": [
            {
                "Name": "g",
                "Count": count,
                "Tasks": [
                    {
                        "Name": "t",
                        "Driver": "raw_exec",
                        "Config": {"command": "/bin/sleep", "args": ["1000"]},
                        "Resources": {"CPU": cpu, "MemoryMB": 64},
                    }
                ],
            }
        ],
    }


def live_allocs(agent: Agent, job_id: str) -> list[dict[str, Any]]:
    allocs = agent.api("GET", f"/v1/job/{job_id}/allocations")
    return [
        a
        for a in allocs
        if a["DesiredStatus"] == "run" and a["ClientStatus"] not in ("lost", "failed", "complete")
    ]


@pytest.fixture
def one_server(tmp_path: Path) -> Any:
    cluster = Cluster(tmp_path)
    try:
        server = cluster.add_server(bootstrap_expect=1).start()
        server.wait_http()
        cluster.wait_leader([server])
        yield cluster, server
    finally:
        cluster.close()


def test_run_monitor_status_views_and_read_your_writes(one_server: Any, tmp_path: Path) -> None:
    _, server = one_server
    nodes = [sim_node(server) for _ in range(2)]
    path = tmp_path / "web.json"
    path.write_text(json.dumps({"Job": job(count=3)}))
    out = server.cli("job", "run", str(path))
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith('==> Monitoring evaluation "') and len(lines[0].split('"')[1]) == 8
    assert '    Evaluation triggered by job "web"' in lines
    created = [ln for ln in lines if ln.startswith('    Allocation "') and 'group "g"' in ln]
    assert len(created) == 3
    assert any(f'node "{nodes[0]["ID"][:8]}"' in ln or f'node "{nodes[1]["ID"][:8]}"' in ln for ln in created)
    assert '    Evaluation status changed: "pending" -> "complete"' in lines
    assert lines[-1].endswith('finished with status "complete"')
    status = server.cli("job", "status", "we")  # a unique prefix works, as in Nomad
    assert status.returncode == 0
    assert "Status        = running" in status.stdout and "\nSummary\n" in status.stdout
    assert "Allocations" in status.stdout
    alloc_id = created[0].split('"')[1]
    shown = server.cli("alloc", "status", alloc_id)
    assert shown.returncode == 0 and "Job ID              = web" in shown.stdout
    eval_id = lines[0].split('"')[1]
    shown = server.cli("eval", "status", eval_id)
    assert shown.returncode == 0 and "Status             = complete" in shown.stdout
    stubs = server.api("GET", "/v1/job/web/allocations")
    listed = server.api("GET", "/v1/allocations", params={"prefix": alloc_id})
    assert listed == [a for a in stubs if a["ID"].startswith(alloc_id)] and len(listed) == 1
    on_node = server.api("GET", f"/v1/node/{listed[0]['NodeID']}/allocations")
    # whole allocations (their Job included), as Nomad's Node.GetAllocs; the stub's keys agree
    mine = next(a for a in on_node if a["ID"] == listed[0]["ID"])
    assert mine["Job"]["ID"] == "web" and all(a["NodeID"] == listed[0]["NodeID"] for a in on_node)
    assert {k: mine[k] for k in ("EvalID", "Name", "TaskGroup", "ClientStatus")} == {
        k: listed[0][k] for k in ("EvalID", "Name", "TaskGroup", "ClientStatus")
    }
    full = server.api("GET", f"/v1/allocation/{listed[0]['ID']}")
    assert full["Job"]["ID"] == "web" and full["EvalID"] == listed[0]["EvalID"]
    assert eval_id in {e["ID"][:8] for e in server.api("GET", "/v1/evaluations")}
    placed = server.api("GET", f"/v1/evaluation/{listed[0]['EvalID']}/allocations")
    assert sorted(a["ID"] for a in placed) == sorted(a["ID"] for a in stubs)
    stopped, headers = server.api_meta("PUT", f"/v1/allocation/{listed[0]['ID']}/stop")
    assert set(stopped) == {"EvalID", "Index"} and int(headers["X-Nomad-Index"]) == stopped["Index"]
    assert server.api("GET", f"/v1/evaluation/{stopped['EvalID']}")["TriggeredBy"] == "alloc-stop"
    wait_for(
        lambda: server.api("GET", f"/v1/allocation/{listed[0]['ID']}")["NextAllocation"], 10, what="replaced"
    )

    # read-your-writes: the allocations of a fresh register, read at the register's index
    reply, headers = server.api_meta("PUT", "/v1/jobs", {"Job": job("api", count=4)})
    assert int(headers["X-Nomad-Index"]) == reply["Index"] == reply["EvalCreateIndex"]
    allocs, meta = server.api_meta("GET", "/v1/job/api/allocations", params={"index": str(reply["Index"])})
    assert len(allocs) == 4 and int(meta["X-Nomad-Index"]) > reply["Index"]

    hcl = tmp_path / "batch.nomad.hcl"
    hcl.write_text(
        'job "hcl" {\n  datacenters = ["dc1"]\n  type = "batch"\n  group "g" {\n    count = 2\n'
        '    task "t" {\n      driver = "raw_exec"\n      config { command = "/bin/true" }\n'
        "      resources {\n        cpu = 100\n        memory = 64\n      }\n    }\n  }\n}\n"
    )
    detached = server.cli("job", "run", "-detach", str(hcl))
    assert detached.returncode == 0, detached.stdout + detached.stderr
    assert detached.stdout.startswith("Job registration successful\nEvaluation ID: ")
    wait_for(lambda: len(live_allocs(server, "hcl")) == 2, 10, what="HCL batch job placed")
    assert server.api("GET", "/v1/job/hcl")["Type"] == "batch"

    versions = server.api("GET", "/v1/job/api/versions")["Versions"]
    server.api("PUT", "/v1/jobs", {"Job": job("api", count=4)})  # identical: no new version
    assert len(server.api("GET", "/v1/job/api/versions")["Versions"]) == len(versions) == 1

    stop = server.cli("job", "stop", "web")
    assert stop.returncode == 0, stop.stdout + stop.stderr
    wait_for(lambda: server.api("GET", "/v1/job/web")["Status"] == "dead", 10, what="stopped job dead")
    assert live_allocs(server, "web") == []
    purge = server.cli("job", "stop", "-purge", "-detach", "api")
    assert purge.returncode == 0
    with pytest.raises(HTTPError) as err:
        server.api("GET", "/v1/job/api")
    assert err.value.status == 404


def test_invalid_specs_are_400_naming_the_field(one_server: Any, tmp_path: Path) -> None:
    _, server = one_server
    bad = job()
    bad["TaskGroups"][0]["Count"] = -1
    bad["TaskGroups"][0]["Tasks"][0]["Driver"] = "nope"
    with pytest.raises(HTTPError) as err:
        server.api("PUT", "/v1/jobs", {"Job": bad})
    assert err.value.status == 400
    assert (
        "Job.TaskGroups[0].Count" in err.value.body and "Job.TaskGroups[0].Tasks[0].Driver" in err.value.body
    )
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"Job": bad}))
    out = server.cli("job", "run", str(path))
    assert out.returncode == 1
    assert "Error submitting job" in out.stderr and "Job.TaskGroups[0].Count" in out.stderr
    typo = job()
    typo["TaskGroups"][0]["Tasks"][0]["Drivr"] = "raw_exec"
    path.write_text(json.dumps({"Job": typo}))
    out = server.cli("job", "run", str(path))
    assert out.returncode == 1 and "Job.TaskGroups[0].Tasks[0].Drivr: unknown key" in out.stderr


def test_placement_failure_exit_2_then_new_node_unblocks(one_server: Any, tmp_path: Path) -> None:
    _, server = one_server
    sim_node(server, cpu=1000)
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"Job": job("big", count=2, cpu=3000)}))
    out = server.cli("job", "run", str(path))
    assert out.returncode == 2, out.stdout + out.stderr
    assert 'finished with status "complete" but failed to place all allocations:' in out.stdout
    assert 'Task Group "g" (failed to place 2 allocations):' in out.stdout
    assert "waiting for additional capacity" in out.stdout
    assert live_allocs(server, "big") == []
    summary = server.api("GET", "/v1/job/big/summary")
    assert summary["Summary"]["g"]["Queued"] == 2
    start = time.monotonic()
    sim_node(server, cpu=8000)
    wait_for(lambda: len(live_allocs(server, "big")) == 2, 10, what="placed once capacity appeared")
    assert time.monotonic() - start < 5


def test_node_down_allocs_lost_and_replaced(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    try:
        extra = {"server": {"heartbeat_grace": "1s", "min_heartbeat_ttl": "1s"}}
        server = cluster.add_server(bootstrap_expect=1, extra=extra).start()
        server.wait_http()
        cluster.wait_leader([server])
        a = sim_node(server)
        server.api("PUT", "/v1/jobs", {"Job": job(count=2)})
        wait_for(lambda: len(live_allocs(server, "web")) == 2, 10, what="placed")
        b = sim_node(server)
        deadline = time.monotonic() + 20
        lost: list[dict[str, Any]] = []
        while time.monotonic() < deadline:  # b heartbeats, a does not: a goes down
            heartbeat(server, b)
            allocs = server.api("GET", "/v1/job/web/allocations")
            lost = [x for x in allocs if x["ClientStatus"] == "lost"]
            live = live_allocs(server, "web")
            if len(lost) == 2 and len(live) == 2 and all(x["NodeID"] == b["ID"] for x in live):
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"not replaced: {server.api('GET', '/v1/job/web/allocations')}")
        assert all(x["NodeID"] == a["ID"] and x["DesiredStatus"] == "stop" for x in lost)
        evals = server.api("GET", "/v1/job/web/evaluations")
        assert any(e["TriggeredBy"] == "node-update" and e["NodeID"] == a["ID"] for e in evals)
    finally:
        cluster.close()


def test_follower_forwards_and_new_leader_restores_blocked_evals(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    try:
        servers = [cluster.add_server(bootstrap_expect=3) for _ in range(3)]
        cluster.link(servers)
        for s in servers:
            s.start()
        leader = cluster.wait_leader(servers)
        follower = next(s for s in servers if s is not leader)
        sim_node(follower, cpu=500)
        reply = follower.api("PUT", "/v1/jobs", {"Job": job("wait", count=1, cpu=2000)})
        ev = wait_for(
            lambda: (
                (e := follower.api("GET", f"/v1/evaluation/{reply['EvalID']}"))["Status"] == "complete" and e
            ),
            10,
            what="eval complete",
        )
        assert ev["BlockedEval"]
        leader.kill()
        rest = [s for s in servers if s is not leader]
        new_leader = cluster.wait_leader(rest, timeout=30)
        sim_node(new_leader, cpu=4000)
        wait_for(
            lambda: len(live_allocs(new_leader, "wait")) == 1, 20, what="blocked eval restored and unblocked"
        )
    finally:
        cluster.close()


def test_node_drain_cli_migrates_and_completes(one_server: Any) -> None:
    _, server = one_server
    a = sim_node(server)
    server.api("PUT", "/v1/jobs", {"Job": job(count=2)})
    wait_for(lambda: len(live_allocs(server, "web")) == 2, 10, what="placed on a")
    b = sim_node(server)
    both = server.cli("node", "drain", "-enable", "-force", "-deadline", "1m", a["ID"][:8])
    assert both.returncode == 1 and "mutually exclusive" in both.stderr
    # simulated nodes never run their allocations (never healthy): -force moves them at once
    out = server.cli("node", "drain", "-enable", "-yes", "-force", a["ID"][:8], timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f'Node "{a["ID"]}" drain strategy set' in out.stdout
    assert f'==> Node "{a["ID"]}" drain complete' in out.stdout
    wait_for(
        lambda: [x["NodeID"] for x in live_allocs(server, "web")] == [b["ID"]] * 2, 10, what="moved to b"
    )
    node = server.api("GET", f"/v1/node/{a['ID']}")
    assert node["SchedulingEligibility"] == "ineligible" and node["LastDrain"]["Status"] == "complete"
    out = server.cli("node", "drain", "-disable", "-yes", a["ID"])
    assert out.returncode == 0 and "drain strategy unset" in out.stdout
    assert server.api("GET", f"/v1/node/{a['ID']}")["SchedulingEligibility"] == "eligible"
