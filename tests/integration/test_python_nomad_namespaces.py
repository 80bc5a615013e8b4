"""Issue 12: python-nomad (unmodified) and the CLI against one -dev agent for namespaces, node
pools, search, ``/v1/jobs/parse`` and ``/v1/validate/job``.

The dev client sits in node pool ``edge`` (``client.node_pool``), a pool nobody created: it exists
from the node's registration, and a job naming it is placed on that node.
"""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nomad
import pytest
import requests

from tests.helpers import AgentProcess, agent_env, dev_ports_config, run_nomadd, wait_for

pytestmark = pytest.mark.slow

HCL = """
variable "count" {
  default = 1
}

job "pyparse" {
  datacenters = ["*"]
  node_pool   = "edge"
  type        = "batch"

  group "g" {
    count = var.count

    task "t" {
      driver = "raw_exec"

      config {
        command = "/bin/true"
      }

      resources {
        cpu    = 50
        memory = 32
      }
    }
  }
}
"""


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[nomad.Nomad, str, Path]]:
    tmp = tmp_path_factory.mktemp("pynomad-ns")
    cfg, http = dev_ports_config(Path(tmp))
    cfg.write_text(cfg.read_text() + '\n[client]\nnode_pool = "edge"\n')
    proc = AgentProcess(["-dev", "-config", str(cfg)])
    try:
        proc.wait_line("agent started!")
        n = nomad.Nomad(host="127.0.0.1", port=http, timeout=10)
        wait_for(lambda: n.status.leader.get_leader(), timeout=30, what="a leader")
        wait_for(
            lambda: [x for x in n.nodes.get_nodes() if x["Status"] == "ready"],
            timeout=30,
            what="the dev node to be ready",
        )
        yield n, f"http://127.0.0.1:{http}", Path(tmp)
    finally:
        proc.signal(signal.SIGINT)
        try:
            proc.wait(20)
        finally:
            proc.stop()


def _get(base: str, path: str, **params: str) -> Any:
    resp = requests.get(base + path, params=params, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_namespaces(agent: tuple[nomad.Nomad, str, Path]) -> None:
    n, base, _ = agent
    assert [ns["Name"] for ns in n.namespaces.get_namespaces()] == ["default"]
    n.namespace.create_namespace({"Name": "team-a", "Description": "team A", "Meta": {"owner": "a"}})
    got = n.namespace.get_namespace("team-a")
    assert got["Description"] == "team A" and got["Meta"] == {"owner": "a"}
    assert [ns["Name"] for ns in n.namespaces.get_namespaces()] == ["default", "team-a"]
    job = n.jobs.parse(HCL, canonicalize=True)
    # a job into a namespace that does not exist fails with Nomad's words
    with pytest.raises(nomad.api.exceptions.BaseNomadException) as err:
        n.jobs.register_job({"Job": {**job, "Namespace": "nope"}})
    assert 'job "pyparse" is in nonexistent namespace "nope"' in err.value.nomad_resp.text
    team = nomad.Nomad(host="127.0.0.1", port=int(base.rsplit(":", 1)[1]), timeout=10, namespace="team-a")
    team.jobs.register_job({"Job": {**job, "Namespace": "team-a"}})
    n.jobs.register_job({"Job": job})
    everywhere = _get(base, "/v1/jobs", namespace="*")
    assert sorted((j["Namespace"], j["ID"]) for j in everywhere) == [
        ("default", "pyparse"),
        ("team-a", "pyparse"),
    ]
    assert [j["ID"] for j in _get(base, "/v1/jobs")] == ["pyparse"]
    assert {a["Namespace"] for a in _get(base, "/v1/allocations", namespace="*")} <= {"default", "team-a"}
    with pytest.raises(nomad.api.exceptions.BaseNomadException) as err:
        n.namespace.delete_namespace("default")
    assert "can not delete default namespace" in err.value.nomad_resp.text
    team.job.deregister_job("pyparse", purge=True)
    n.namespace.delete_namespace("team-a")
    assert [ns["Name"] for ns in n.namespaces.get_namespaces()] == ["default"]


def test_node_pools(agent: tuple[nomad.Nomad, str, Path]) -> None:
    n, base, _ = agent
    node = n.nodes.get_nodes()[0]
    assert node["NodePool"] == "edge"
    assert [p["Name"] for p in _get(base, "/v1/node/pools")] == ["all", "default", "edge"]
    assert [x["ID"] for x in _get(base, "/v1/node/pool/edge/nodes")] == [node["ID"]]
    assert _get(base, "/v1/node/pool/default/nodes") == []
    resp = requests.put(base + "/v1/node/pool/gpu", json={"Name": "gpu", "Description": "GPUs"}, timeout=10)
    assert resp.status_code == 200, resp.text
    assert _get(base, "/v1/node/pool/gpu")["Description"] == "GPUs"
    resp = requests.delete(base + "/v1/node/pool/all", timeout=10)
    assert resp.status_code == 400 and 'deleting node pool "all" is not allowed' in resp.text
    # the parsed job names pool "edge": it is placed on the dev node
    n.jobs.register_job({"Job": n.jobs.parse(HCL)})
    allocs = wait_for(
        lambda: [a for a in n.job.get_allocations("pyparse") if a["NodeID"] == node["ID"]],
        timeout=30,
        what="the job placed in pool edge",
    )
    assert allocs
    assert [j["ID"] for j in _get(base, "/v1/node/pool/edge/jobs")] == ["pyparse"]
    assert requests.delete(base + "/v1/node/pool/gpu", timeout=10).status_code == 200


def test_search(agent: tuple[nomad.Nomad, str, Path]) -> None:
    n, _, _ = agent
    n.jobs.register_job({"Job": n.jobs.parse(HCL)})
    found = n.search.search("pypa", "jobs")
    assert found["Matches"]["jobs"] == ["pyparse"] and found["Truncations"]["jobs"] is False
    everything = n.search.search("", "all")
    assert {"jobs", "evals", "allocs", "nodes", "node_pools", "namespaces", "vars"} <= set(
        everything["Matches"]
    )
    assert everything["Matches"]["namespaces"] == ["default"]
    assert everything["Matches"]["deployment"] == []
    fuzzy = n.search.fuzzy_search("parse", "all")
    assert {"ID": "pyparse", "Scope": ["default", "pyparse"]} in fuzzy["Matches"]["jobs"]
    with pytest.raises(nomad.api.exceptions.BaseNomadException) as err:
        n.search.fuzzy_search("p", "all")
    assert "at least 2 characters" in err.value.nomad_resp.text


def test_parse_and_validate(agent: tuple[nomad.Nomad, str, Path]) -> None:
    n, base, _ = agent
    job = n.jobs.parse(HCL, canonicalize=True)
    assert job["ID"] == "pyparse" and job["NodePool"] == "edge"
    assert job["TaskGroups"][0]["Count"] == 1 and job["TaskGroups"][0]["Tasks"][0]["Driver"] == "raw_exec"
    with_vars = requests.put(
        base + "/v1/jobs/parse", json={"JobHCL": HCL, "Variables": "count = 3"}, timeout=10
    ).json()
    assert with_vars["TaskGroups"][0]["Count"] == 3
    bad = requests.put(base + "/v1/jobs/parse", json={"JobHCL": 'job "x" { grup "g" {} }'}, timeout=10)
    assert bad.status_code == 400 and "job.grup: unknown key" in bad.text
    assert requests.put(base + "/v1/jobs/parse", json={"JobHCL": ""}, timeout=10).text == "Job spec is empty"
    ok = n.validate.validate_job({"Job": job}).json()
    assert ok["ValidationErrors"] is None and ok["Error"] == "" and ok["DriverConfigValidated"] is False
    broken = {**job, "TaskGroups": [{**job["TaskGroups"][0], "Count": -1}], "NodePool": "nowhere"}
    errors = n.validate.validate_job({"Job": broken}).json()["ValidationErrors"]
    assert errors and any("Count" in e for e in errors), errors


def test_cli(agent: tuple[nomad.Nomad, str, Path], tmp_path: Path) -> None:
    _, base, _ = agent
    env = {**agent_env(), "NOMAD_ADDR": base}
    out = run_nomadd(["namespace", "apply", "-description", "from the CLI", "cli-ns"], env=env)
    assert out.returncode == 0 and 'Successfully applied namespace "cli-ns"!' in out.stdout, out.stderr
    out = run_nomadd(["namespace", "list"], env=env)
    assert out.returncode == 0 and re.search(r"^cli-ns +from the CLI$", out.stdout, re.M), out.stdout
    out = run_nomadd(["namespace", "status", "cli-"], env=env)  # a unique prefix names it
    assert re.search(r"^Description +=  ?from the CLI$", out.stdout, re.M), out.stdout
    assert run_nomadd(["namespace", "delete", "cli-ns"], env=env).returncode == 0
    pool = tmp_path / "pool.hcl"
    pool.write_text('node_pool "batch" {\n  description = "batch work"\n  meta {\n    team = "b"\n  }\n}\n')
    out = run_nomadd(["node", "pool", "apply", str(pool)], env=env)
    assert out.returncode == 0 and 'Successfully applied node pool "batch"!' in out.stdout, out.stderr
    out = run_nomadd(["node", "pool", "info", "batch"], env=env)
    assert re.search(r"^Description += batch work$", out.stdout, re.M) and "team = b" in out.stdout, (
        out.stdout
    )
    assert "edge" in run_nomadd(["node", "pool", "list"], env=env).stdout
    assert run_nomadd(["node", "pool", "info", "ed"], env=env).stdout.startswith("Name        = edge")
    pool.write_text('node_pool "batch-2" {}\n')
    assert run_nomadd(["node", "pool", "apply", str(pool)], env=env).returncode == 0
    many = run_nomadd(["node", "pool", "info", "bat"], env=env)
    assert many.returncode == 1 and "Prefix matched multiple node pools" in many.stderr, many.stderr
    assert run_nomadd(["node", "pool", "delete", "batch-2"], env=env).returncode == 0
    assert run_nomadd(["node", "pool", "delete", "batch"], env=env).returncode == 0
    # job init writes an example that validates (and job validate reads HCL variables)
    init = run_nomadd(["job", "init", str(tmp_path / "example.nomad.hcl")], env=env)
    assert init.returncode == 0 and "Example job file written to" in init.stdout, init.stderr
    out = run_nomadd(["job", "validate", str(tmp_path / "example.nomad.hcl")], env=env)
    assert out.returncode == 0 and "Job validation successful" in out.stdout, out.stderr
    spec = tmp_path / "v.hcl"
    spec.write_text(HCL.replace('"edge"', '"nowhere"'))
    out = run_nomadd(["job", "validate", "-var", "count=2", str(spec)], env=env)
    assert out.returncode == 1 and 'nonexistent node pool "nowhere"' in out.stderr, out.stderr
    again = run_nomadd(["job", "init", str(tmp_path / "example.nomad.hcl")], env=env)
    assert again.returncode == 1 and "already exists" in again.stderr
    # job inspect, and status routing through search
    spec.write_text(HCL)
    assert run_nomadd(["job", "run", "-detach", str(spec)], env=env).returncode == 0
    inspect = run_nomadd(["job", "inspect", "pyparse"], env=env)
    assert inspect.returncode == 0 and json.loads(inspect.stdout)["Job"]["ID"] == "pyparse"
    status = run_nomadd(["status", "pypar"], env=env)
    assert status.returncode == 0 and "pyparse" in status.stdout, status.stderr
    assert run_nomadd(["status", "edge"], env=env).stdout.startswith("Name")
    missing = run_nomadd(["status", "zzzz-nothing"], env=env)
    assert missing.returncode == 1 and "No matches returned" in missing.stderr
