"""docs/architecture.md §HTTP API: an existing Nomad API client (the python-nomad package) works unmodified.

One -dev agent (server + client in one process); python-nomad talks to it exactly as it would
talk to HashiCorp Nomad.
"""

from __future__ import annotations

import base64
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nomad
import pytest

from tests.helpers import AgentProcess, dev_ports_config, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dev_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[nomad.Nomad]:
    tmp = tmp_path_factory.mktemp("pynomad")
    cfg, http = dev_ports_config(Path(tmp))
    agent = AgentProcess(["-dev", "-config", str(cfg)])
    try:
        agent.wait_line("agent started!")
        n = nomad.Nomad(host="127.0.0.1", port=http, timeout=10)
        wait_for(lambda: n.status.leader.get_leader(), timeout=30, what="a leader")
        yield n
    finally:
        agent.signal(signal.SIGINT)
        try:
            agent.wait(20)
        finally:
            agent.stop()


def test_agent_status_regions_and_operator(dev_agent: nomad.Nomad) -> None:
    n = dev_agent
    me = n.agent.get_agent()
    assert me["config"]["Region"] == "global"
    assert n.status.leader.get_leader().endswith(":" + str(me["config"]["Ports"]["Raft"]))
    assert n.status.peers.get_peers() == [n.status.leader.get_leader()]
    assert n.regions.get_regions() == ["global"]
    members = n.agent.get_members()
    assert members["Members"][0]["Status"] == "alive"
    assert members["Members"][0]["Tags"]["region"] == "global"
    raft = n.operator.get_configuration()
    assert len(raft["Servers"]) == 1
    assert raft["Servers"][0]["Leader"] is True
    assert raft["Servers"][0]["Voter"] is True


def test_nodes_node_and_eligibility(dev_agent: nomad.Nomad) -> None:
    n = dev_agent
    nodes = wait_for(
        lambda: [x for x in n.nodes.get_nodes() if x["Status"] == "ready"],
        timeout=30,
        what="the dev client's node to be ready",
    )
    assert len(nodes) == 1
    stub = nodes[0]
    for key in ("ID", "Name", "Datacenter", "NodePool", "SchedulingEligibility", "Status", "Drivers"):
        assert key in stub
    node = n.node.get_node(stub["ID"])
    assert node["SecretID"] == ""  # sanitized, as Nomad does
    assert node["Attributes"]["kernel.name"] == "linux"
    assert node["NodeResources"]["Memory"]["MemoryMB"] > 0
    n.node.eligible_node(stub["ID"], ineligible=True)
    assert n.node.get_node(stub["ID"])["SchedulingEligibility"] == "ineligible"
    n.node.eligible_node(stub["ID"], eligible=True)
    assert n.node.get_node(stub["ID"])["SchedulingEligibility"] == "eligible"


def test_variables_round_trip(dev_agent: nomad.Nomad) -> None:
    n = dev_agent
    n.variable.create_variable("app/config", {"Items": {"user": "admin"}})
    assert n.variable.get_variable("app/config")["Items"] == {"user": "admin"}
    assert [v["Path"] for v in n.variables.get_variables(prefix="app")] == ["app/config"]


def batch_job(job_id: str, marker: Path) -> dict[str, Any]:
    """A raw_exec batch job (API JSON) that writes "hi" to ``marker``."""
    return {
        "Job": {
            "ID": job_id,
            "Name": job_id,
            "Type": "batch",
            "Datacenters": ["dc1"],
            "TaskGroups": [
                {
                    "Name": "g",
                    "Count": 1,
                    "Tasks": [
                        {
                            "Name": "t",
                            "Driver": "raw_exec",
                            "Config": {"command": "/bin/sh", "args": ["-c", f"echo hi > {marker}"]},
                            "Resources": {"CPU": 50, "MemoryMB": 32},
                        }
                    ],
                }
            ],
        }
    }


def test_job_register_allocations_and_deregister(dev_agent: nomad.Nomad, tmp_path: Path) -> None:
    n = dev_agent
    marker = tmp_path / "ran"
    job = batch_job("pynomad", marker)
    reply = n.job.register_job("pynomad", job)
    assert reply["EvalID"]
    assert n.job.get_job("pynomad")["ID"] == "pynomad"
    allocs = wait_for(
        lambda: [a for a in n.job.get_allocations("pynomad") if a["ClientStatus"] == "complete"],
        timeout=30,
        what="the batch allocation to complete",
    )
    assert allocs[0]["TaskGroup"] == "g"
    assert marker.read_text().strip() == "hi"
    assert n.evaluation.get_evaluation(reply["EvalID"])["Status"] in ("complete", "pending")
    assert n.allocation.get_allocation(allocs[0]["ID"])["JobID"] == "pynomad"
    n.job.deregister_job("pynomad", purge=True)
    wait_for(
        lambda: not any(j["ID"] == "pynomad" for j in n.jobs.get_jobs()),
        timeout=10,
        what="the purged job to disappear",
    )


def test_dispatch_and_periodic_force(dev_agent: nomad.Nomad, tmp_path: Path) -> None:
    """Issue 13: python-nomad's dispatch_job and periodic_job against nomadd."""
    n = dev_agent
    marker = tmp_path / "payload-seen"
    job = batch_job("pyparam", marker)
    task = job["Job"]["TaskGroups"][0]["Tasks"][0]
    task["Config"]["args"] = ["-c", f'cat "$NOMAD_TASK_DIR/in.txt" > {marker}']
    task["DispatchPayload"] = {"File": "in.txt"}
    job["Job"]["ParameterizedJob"] = {"Payload": "required", "MetaOptional": ["who"]}
    assert n.job.register_job("pyparam", job)["EvalID"] == ""
    payload = base64.b64encode(b"from python-nomad").decode()
    first = n.job.dispatch_job("pyparam", payload=payload, meta={"who": "py"}, idempotency_token="k")
    # the shell creates the file before cat writes to it: wait for content, not for the name
    wait_for(
        lambda: marker.exists() and marker.stat().st_size > 0,
        timeout=30,
        what="the dispatched task to read its payload",
    )
    assert marker.read_text() == "from python-nomad"
    again = n.job.dispatch_job("pyparam", payload=payload, idempotency_token="k")
    assert again["DispatchedJobID"] == first["DispatchedJobID"]

    periodic = batch_job("pyperiodic", tmp_path / "unused")
    periodic["Job"]["Periodic"] = {"Spec": "0 0 1 1 *", "SpecType": "cron", "Enabled": True}
    n.job.register_job("pyperiodic", periodic)
    forced = n.job.periodic_job("pyperiodic")
    assert forced["EvalID"]
    kids = [j for j in n.jobs.get_jobs(prefix="pyperiodic/") if j["ParentID"] == "pyperiodic"]
    assert len(kids) == 1 and kids[0]["ID"].startswith("pyperiodic/periodic-")
    assert n.job.get_job("pyperiodic")["Periodic"]["Spec"] == "0 0 1 1 *"


def test_client_fs_and_stats(dev_agent: nomad.Nomad, tmp_path: Path) -> None:
    """python-nomad's client.* calls: ls, stat, cat, readat, stream, logs, stats, gc."""
    n = dev_agent
    job = batch_job("pyfs", tmp_path / "ran")
    task = job["Job"]["TaskGroups"][0]["Tasks"][0]
    task["Config"]["args"] = ["-c", 'echo hello-fs > "$NOMAD_TASK_DIR/out.txt"; echo logged']
    n.job.register_job("pyfs", job)
    (alloc,) = wait_for(
        lambda: [a for a in n.job.get_allocations("pyfs") if a["ClientStatus"] == "complete"],
        timeout=30,
        what="the batch allocation to complete",
    )
    alloc_id = alloc["ID"]
    names = {f["Name"]: f for f in n.client.ls.list_files(alloc_id, "/t/local")}
    assert names["out.txt"]["Size"] == len("hello-fs\n") and not names["out.txt"]["IsDir"]
    assert n.client.stat.stat_file(alloc_id, "t/local/out.txt")["Name"] == "out.txt"
    assert n.client.cat.read_file(alloc_id, "t/local/out.txt") == "hello-fs\n"
    assert n.client.read_at.read_file_offset(alloc_id, 6, 2, "t/local/out.txt") == "fs"
    frames = n.client.stream_file.stream(alloc_id, 0, "start", "t/local/out.txt")
    assert '"File"' in frames and "aGVsbG8tZnMK" in frames  # base64 of "hello-fs\n"
    assert n.client.stream_logs.stream(alloc_id, "t", "stdout", plain=True) == "logged\n"
    with pytest.raises(nomad.api.exceptions.BaseNomadException):
        n.client.cat.read_file(alloc_id, "../../../etc/passwd")
    assert "Memory" in n.client.stats.read_stats()
    assert n.client.allocation.read_allocation_stats(alloc_id)["Tasks"] == {}  # nothing runs
    n.client.gc_allocation.garbage_collect(alloc_id)
    n.client.gc_all_allocations.garbage_collect()
    n.job.deregister_job("pyfs", purge=True)
