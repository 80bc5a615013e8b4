"""Issue 4 acceptance 5 with real client processes: a batch job runs to completion (job
``dead``, allocation ``complete``); a failing batch task honours its restart policy (attempts,
then ``failed``); a system job runs on every ready client, including one that joins later."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.cluster import Agent, Cluster
from tests.integration.test_client_allocs import RAW_EXEC

pytestmark = pytest.mark.slow

NS = 1_000_000_000


def task(script: str) -> dict[str, Any]:
    return {
        "Name": "t",
        "Driver": "raw_exec",
        "Config": {"command": "/bin/sh", "args": ["-c", script]},
        "Resources": {"CPU": 20, "MemoryMB": 16},
        "KillTimeout": NS,
    }


def job(job_id: str, job_type: str, script: str, restart: dict[str, Any] | None = None) -> dict[str, Any]:
    group: dict[str, Any] = {"Name": "g", "Count": 1, "Tasks": [task(script)]}
    if restart is not None:
        group["RestartPolicy"] = restart
        group["ReschedulePolicy"] = {"Attempts": 0, "Unlimited": False}
    return {"Job": {"ID": job_id, "Type": job_type, "Datacenters": ["dc1"], "TaskGroups": [group]}}


def allocs(server: Agent, job_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = server.api("GET", f"/v1/job/{job_id}/allocations", timeout=5.0)
    return found


def test_batch_restart_policy_and_system_jobs(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    try:
        server = cluster.add_server(bootstrap_expect=1).start()
        cluster.wait_leader([server])
        a = cluster.add_client(servers=[server], extra=RAW_EXEC).start()

        def ready_nodes() -> list[str]:
            return [n["ID"] for n in server.api("GET", "/v1/nodes") if n["Status"] == "ready"]

        cluster.wait_for(lambda: len(ready_nodes()) == 1, 30, "client a ready")

        # batch success: alloc complete, job dead
        server.api("PUT", "/v1/jobs", job("once", "batch", "echo done"))
        cluster.wait_for(
            lambda: [x["ClientStatus"] for x in allocs(server, "once")] == ["complete"], 30, "batch complete"
        )
        cluster.wait_for(lambda: server.api("GET", "/v1/job/once")["Status"] == "dead", 15, "job dead")

        # failing batch task: 2 attempts (restarts) in the interval, then failed
        policy = {"Attempts": 2, "Interval": 60 * NS, "Delay": NS // 10, "Mode": "fail"}
        server.api("PUT", "/v1/jobs", job("fails", "batch", "echo try; exit 3", restart=policy))
        cluster.wait_for(
            lambda: [x["ClientStatus"] for x in allocs(server, "fails")] == ["failed"], 30, "batch failed"
        )
        st = allocs(server, "fails")[0]["TaskStates"]["t"]
        assert st["Restarts"] == 2
        assert st["Failed"] is True
        kinds = [e["Type"] for e in st["Events"]]
        assert kinds.count("Started") == 3
        assert kinds[-1] == "Not Restarting"

        # system job: one alloc per ready node, a node that joins later gets one too
        server.api("PUT", "/v1/jobs", job("everywhere", "system", "while true; do sleep 0.2; done"))

        def running_nodes() -> set[str]:
            return {
                x["NodeID"]
                for x in allocs(server, "everywhere")
                if x["ClientStatus"] == "running" and x["DesiredStatus"] == "run"
            }

        cluster.wait_for(lambda: running_nodes() == set(ready_nodes()), 30, "system alloc on a")
        b = cluster.add_client(servers=[server], extra=RAW_EXEC).start()
        cluster.wait_for(lambda: len(ready_nodes()) == 2, 30, "client b ready")
        cluster.wait_for(lambda: running_nodes() == set(ready_nodes()), 30, "system alloc on b too")
        # a destructive update under update { max_parallel = 1, stagger }: one node per
        # evaluation, the next after a rolling-update evaluation that waits the stagger
        v2 = job("everywhere", "system", "while true; do sleep 0.3; done")
        v2["Job"]["Update"] = {"MaxParallel": 1, "Stagger": NS}
        first = server.api("PUT", "/v1/jobs", v2)["EvalID"]
        done = cluster.wait_for(
            lambda: (e := server.api("GET", f"/v1/evaluation/{first}"))["Status"] == "complete" and e,
            30,
            "update eval complete",
        )
        assert done["NextEval"], f"the update went past max_parallel: {done}"
        follow = server.api("GET", f"/v1/evaluation/{done['NextEval']}")
        assert follow["TriggeredBy"] == "rolling-update" and follow["PreviousEval"] == first, follow
        cluster.wait_for(
            lambda: (
                {x["JobVersion"] for x in allocs(server, "everywhere") if x["DesiredStatus"] == "run"} == {1}
                and running_nodes() == set(ready_nodes())
            ),
            30,
            "both nodes on the new version",
        )
        server.api("DELETE", "/v1/job/everywhere")
        cluster.wait_for(lambda: not running_nodes(), 20, "system job stopped")
        assert a.running() and b.running()
    except AssertionError:
        print(server.output[-6000:])
        raise
    finally:
        cluster.close()
