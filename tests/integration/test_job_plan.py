"""Issue 13 acceptance 3 with real agent processes: ``job plan`` of a changed spec prints Nomad's
diff, annotations and dry run and exits 1 (0 when nothing would change); ``job run -check-index``
with a stale index is refused and changes nothing, with the current one it runs; versions with
diffs, ``job history -p``, ``job revert`` and ``job scale``; python-nomad's plan, stable and evaluate."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import nomad
import pytest

from tests.integration.cluster import Agent, Cluster
from tests.integration.test_client_allocs import RAW_EXEC

pytestmark = pytest.mark.slow

NS = 1_000_000_000


def spec(count: int, args: str = "while true; do sleep 0.2; done") -> dict[str, Any]:
    task = {
        "Name": "t",
        "Driver": "raw_exec",
        "Config": {"command": "/bin/sh", "args": ["-c", args]},
        "Resources": {"CPU": 20, "MemoryMB": 16},
        "KillTimeout": NS,
    }
    group = {"Name": "g", "Count": count, "Tasks": [task], "Scaling": {"Min": 1, "Max": 10}}
    return {"ID": "web", "Type": "service", "Datacenters": ["dc1"], "TaskGroups": [group]}


def write(path: Path, job: dict[str, Any]) -> str:
    path.write_text(json.dumps({"Job": job}))
    return str(path)


def running(server: Agent) -> list[dict[str, Any]]:
    allocs: list[dict[str, Any]] = server.api("GET", "/v1/job/web/allocations")
    return [a for a in allocs if a["ClientStatus"] == "running" and a["DesiredStatus"] == "run"]


def test_plan_check_index_versions_revert_and_scale(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    try:
        server = cluster.add_server(bootstrap_expect=1).start()
        cluster.wait_leader([server])
        cluster.add_client(servers=[server], extra=RAW_EXEC).start()
        cluster.wait_for(
            lambda: [n for n in server.api("GET", "/v1/nodes") if n["Status"] == "ready"], 30, "client ready"
        )
        first = write(tmp_path / "web.json", spec(2))
        ran = server.cli("job", "run", first, timeout=60)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        cluster.wait_for(lambda: len(running(server)) == 2, 30, "2 running")

        # nothing changes: exit 0, the groups' allocations are left alone
        same = server.cli("job", "plan", first)
        assert same.returncode == 0, same.stdout + same.stderr
        assert 'Job: "web"' in same.stdout and "(2 ignore)" in same.stdout

        # a changed spec: the diff with its annotations, the dry run, the index; exit 1
        changed = write(tmp_path / "web2.json", spec(3, "while true; do sleep 0.3; done"))
        plan = server.cli("job", "plan", changed)
        assert plan.returncode == 1, plan.stdout + plan.stderr
        out = plan.stdout
        assert '+/- Job: "web"' in out
        assert '+/- Task Group: "g" (1 create, 2 create/destroy update)' in out
        assert '+/- Count: "2" => "3" (forces create)' in out
        assert '+/- Task: "t" (forces create/destroy update)' in out
        assert '+/- args[1]: "while true; do sleep 0.2; done" => "while true; do sleep 0.3; done"' in out
        assert "Scheduler dry-run:\n- All tasks successfully allocated." in out
        match = re.search(r"Job Modify Index: (\d+)", out)
        assert match is not None, out
        index = int(match.group(1))
        assert f"nomadd job run -check-index {index} {changed}" in out
        assert len(running(server)) == 2  # a plan changes nothing

        # someone else updates the job in between: the planned index is stale and refused
        other = spec(2)
        other["Meta"] = {"owner": "someone-else"}
        current = server.api("PUT", "/v1/jobs", {"Job": other})["JobModifyIndex"]
        assert current > index
        stale = server.cli("job", "run", "-check-index", str(index), changed)
        assert stale.returncode == 1, stale.stdout + stale.stderr
        assert (
            f"Enforcing job modify index {index}: job exists with conflicting job modify index: {current}"
            in stale.stderr
        )
        assert "Job not updated" in stale.stderr
        job = server.api("GET", "/v1/job/web")
        assert job["TaskGroups"][0]["Count"] == 2 and job["JobModifyIndex"] == current

        # with the current index it runs
        fresh = server.cli("job", "run", "-check-index", str(current), changed, timeout=60)
        assert fresh.returncode == 0, fresh.stdout + fresh.stderr
        cluster.wait_for(lambda: len(running(server)) == 3, 30, "3 running")

        # versions with diffs, newest first; job history -p prints them
        versions = server.api("GET", "/v1/job/web/versions", params={"diffs": "true"})
        assert [v["Version"] for v in versions["Versions"]] == [2, 1, 0]
        assert len(versions["Diffs"]) == 2 and versions["Diffs"][1]["Fields"][0]["Name"] == "Meta[owner]"
        history = server.cli("job", "history", "-p", "web")
        assert history.returncode == 0, history.stderr
        assert "Version     = 2" in history.stdout and '+/- Count: "2" => "3"' in history.stdout

        # revert to version 0 (count 2, the first script), refused with a wrong prior version
        wrong = server.cli("job", "revert", "-check-version", "1", "web", "0")
        assert wrong.returncode == 1 and "Current job has version 2; enforcing version 1" in wrong.stderr
        reverted = server.cli("job", "revert", "-check-version", "2", "web", "0", timeout=60)
        assert reverted.returncode == 0, reverted.stdout + reverted.stderr
        job = server.api("GET", "/v1/job/web")
        assert job["Version"] == 3 and job["TaskGroups"][0]["Count"] == 2 and not job.get("Meta")
        cluster.wait_for(lambda: len(running(server)) == 2, 30, "2 running after revert")

        # scale the group to 1
        scaled = server.cli("job", "scale", "web", "g", "1", timeout=60)
        assert scaled.returncode == 0, scaled.stdout + scaled.stderr
        cluster.wait_for(lambda: len(running(server)) == 1, 30, "1 running after scale")
        status = server.api("GET", "/v1/job/web/scale")
        assert status["TaskGroups"]["g"]["Desired"] == 1

        # python-nomad's calls for the same routes
        host, port = server.http_addr.rsplit(":", 1)
        n = nomad.Nomad(host=host, port=int(port), timeout=10)
        planned = n.job.plan_job("web", {"Job": spec(4)}, diff=True)
        assert planned["Annotations"]["DesiredTGUpdates"]["g"]["Place"] == 3
        assert planned["Diff"]["TaskGroups"][0]["Fields"][0]["Annotations"] == ["forces create"]
        current_version = server.api("GET", "/v1/job/web")["Version"]
        n.job.stable_job("web", current_version, True)
        assert server.api("GET", "/v1/job/web")["Stable"] is True
        assert n.job.evaluate_job("web")["EvalID"]

        # the group's scaling {} block is a policy; it bounds job scale
        (stub,) = n.scaling.get_scaling_policies(job="web")
        assert stub["Target"] == {"Namespace": "default", "Job": "web", "Group": "g"} and stub["Enabled"]
        policy = n.scaling.get_scaling_policy(stub["ID"])
        assert (policy["Min"], policy["Max"]) == (1, 10)
        over = server.cli("job", "scale", "-detach", "web", "g", "11")
        assert over.returncode == 1 and "greater than scaling policy maximum: 11 > 10" in over.stderr

        # a spec with a bad field is an error (255), not a plan
        bad = copy.deepcopy(spec(2))
        bad["TaskGroups"][0]["Count"] = -1
        broken = server.cli("job", "plan", write(tmp_path / "bad.json", bad))
        assert broken.returncode == 255 and "Count" in broken.stderr
    finally:
        cluster.close()
