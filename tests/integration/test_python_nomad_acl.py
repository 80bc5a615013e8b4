"""docs/acl.md: python-nomad, unmodified, against ``nomadd agent -dev -acl-enabled``.

Bootstrap, policies and tokens through python-nomad's ACL API, then its job, node and allocation
calls with the bootstrap token; without a token, or with a read-only one, the same calls are
refused with Nomad's 403.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import nomad
import pytest
from nomad.api import exceptions

from tests.helpers import AgentProcess, dev_ports_config, wait_for
from tests.integration.test_python_nomad import batch_job

pytestmark = pytest.mark.slow

READONLY = 'namespace "default" { policy = "read" }\nnode { policy = "read" }'


@pytest.fixture(scope="module")
def dev_acl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    tmp = tmp_path_factory.mktemp("pynomad-acl")
    cfg, http = dev_ports_config(Path(tmp))
    agent = AgentProcess(["-dev", "-acl-enabled", "-config", str(cfg)])
    try:
        agent.wait_line("agent started!")
        anon = nomad.Nomad(host="127.0.0.1", port=http, timeout=10)
        wait_for(lambda: anon.status.leader.get_leader(), timeout=30, what="a leader")
        yield http
    finally:
        agent.signal(signal.SIGINT)
        try:
            agent.wait(20)
        finally:
            agent.stop()


def test_bootstrap_tokens_policies_then_jobs_nodes_allocations(dev_acl: int, tmp_path: Path) -> None:
    anon = nomad.Nomad(host="127.0.0.1", port=dev_acl, timeout=10)
    with pytest.raises(exceptions.URLNotAuthorizedNomadException):
        anon.jobs.get_jobs()
    boot = anon.acl.generate_bootstrap()
    assert boot["Type"] == "management" and boot["Name"] == "Bootstrap Token"
    with pytest.raises(exceptions.BaseNomadException):
        anon.acl.generate_bootstrap()  # once per cluster

    n = nomad.Nomad(host="127.0.0.1", port=dev_acl, timeout=10, token=boot["SecretID"])
    assert n.acl.get_self_token()["AccessorID"] == boot["AccessorID"]
    # policies
    n.acl.create_policy("readonly", {"Name": "readonly", "Description": "read", "Rules": READONLY})
    assert [p["Name"] for p in n.acl.get_policies()] == ["readonly"]
    assert n.acl.get_policy("readonly")["Rules"] == READONLY
    n.acl.update_policy("readonly", {"Name": "readonly", "Description": "read only", "Rules": READONLY})
    assert n.acl.get_policy("readonly")["Description"] == "read only"
    # tokens
    created = n.acl.create_token({"Name": "ro", "Type": "client", "Policies": ["readonly"], "Global": False})
    assert created["Policies"] == ["readonly"] and created["SecretID"]
    assert {t["AccessorID"] for t in n.acl.get_tokens()} == {boot["AccessorID"], created["AccessorID"]}
    assert n.acl.get_token(created["AccessorID"])["Name"] == "ro"
    updated = n.acl.update_token(
        created["AccessorID"],
        {"AccessorID": created["AccessorID"], "Name": "reader", "Type": "client", "Policies": ["readonly"]},
    )
    assert updated["Name"] == "reader" and updated["SecretID"] == created["SecretID"]
    ro = nomad.Nomad(host="127.0.0.1", port=dev_acl, timeout=10, token=created["SecretID"])
    assert ro.acl.get_self_token()["Name"] == "reader"
    with pytest.raises(exceptions.URLNotAuthorizedNomadException):
        ro.acl.get_tokens()

    # jobs, nodes and allocations with the bootstrap token
    nodes = wait_for(
        lambda: [x for x in n.nodes.get_nodes() if x["Status"] == "ready"], timeout=30, what="a ready node"
    )
    assert n.node.get_node(nodes[0]["ID"])["ID"] == nodes[0]["ID"]
    assert ro.nodes.get_nodes()[0]["ID"] == nodes[0]["ID"]  # node:read
    marker = tmp_path / "ran"
    job = batch_job("acljob", marker)
    with pytest.raises(exceptions.URLNotAuthorizedNomadException):
        ro.job.register_job("acljob", job)  # read-only: no submit-job
    reply = n.job.register_job("acljob", job)
    assert reply["EvalID"]
    allocs = wait_for(
        lambda: [a for a in n.job.get_allocations("acljob") if a["ClientStatus"] == "complete"],
        timeout=30,
        what="the batch allocation to complete",
    )
    assert marker.read_text().strip() == "hi"
    assert n.allocation.get_allocation(allocs[0]["ID"])["JobID"] == "acljob"
    assert [a["ID"] for a in n.allocations.get_allocations()] == [allocs[0]["ID"]]
    assert n.evaluation.get_evaluation(reply["EvalID"])["JobID"] == "acljob"
    assert ro.job.get_job("acljob")["ID"] == "acljob"  # read-job
    with pytest.raises(exceptions.URLNotAuthorizedNomadException):
        anon.job.get_job("acljob")
    n.job.deregister_job("acljob", purge=True)

    # clean up through python-nomad too
    assert n.acl.delete_token(created["AccessorID"])
    with pytest.raises(exceptions.URLNotAuthorizedNomadException):
        ro.jobs.get_jobs()  # ACL token not found
    assert n.acl.delete_policy("readonly")
    assert n.acl.get_policies() == []
