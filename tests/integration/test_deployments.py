"""Issue 13 acceptance 1 and 2 with real agents: one server, one client running raw_exec tasks.

1. A count-6 service with ``update { max_parallel = 2, min_healthy_time = "2s" }`` gets a new
   version through ``nomadd job run``: a sampler reads the allocations every 100 ms and never
   sees more than 2 old allocations stopped whose replacement is not healthy yet; the
   deployment ends ``successful`` (the version is marked stable) and ``job run`` printed its
   progress per group.
2. A new version whose task fails: with ``auto_revert`` the deployment fails and the job goes
   back to the last stable version (``job run`` exits 1); with ``canary = 1`` the canary runs
   beside the old allocations until ``nomadd deployment promote``, then the rest rolls.

And on three servers: an ``auto_promote`` canary rollout, with every server's view the same.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.cluster import Agent, Cluster, agent_env
from tests.integration.test_client_allocs import RAW_EXEC, destroy, handles

pytestmark = pytest.mark.slow

S = 1_000_000_000


def spec(job_id: str, count: int, version: str, *, fail: bool = False, **update: Any) -> dict[str, Any]:
    script = "exit 3" if fail else "sleep 120"
    return {
        "Job": {
            "ID": job_id,
            "Type": "service",
            "Datacenters": ["dc1"],
            "TaskGroups": [
                {
                    "Name": "web",
                    "Count": count,
                    "Update": {
                        "MaxParallel": 2,
                        "HealthCheck": "task_states",
                        "MinHealthyTime": 2 * S,
                        "HealthyDeadline": 30 * S,
                        "ProgressDeadline": 60 * S,
                        **update,
                    },
                    "RestartPolicy": {"Attempts": 0, "Mode": "fail", "Interval": 60 * S, "Delay": S},
                    "ReschedulePolicy": {"Attempts": 0, "Unlimited": False},
                    "Tasks": [
                        {
                            "Name": "t",
                            "Driver": "raw_exec",
                            "Config": {"command": "/bin/sh", "args": ["-c", script]},
                            "Env": {"VERSION": version},
                            "Resources": {"CPU": 20, "MemoryMB": 16},
                            "KillTimeout": S,
                        }
                    ],
                }
            ],
        }
    }


def allocs(server: Agent, job_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = server.api("GET", f"/v1/job/{job_id}/allocations", timeout=5.0)
    return found


def latest(server: Agent, job_id: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = server.api("GET", f"/v1/job/{job_id}/deployment", timeout=5.0)
    return found


def healthy(a: dict[str, Any] | None) -> bool:
    return a is not None and bool((a.get("DeploymentStatus") or {}).get("Healthy"))


def unsafe_stops(found: list[dict[str, Any]], old_version: int) -> int:
    """Old allocations the servers stopped whose replacement is not healthy (yet)."""
    by_id = {a["ID"]: a for a in found}
    return sum(
        1
        for a in found
        if a["JobVersion"] == old_version
        and a["DesiredStatus"] != "run"
        and not healthy(by_id.get(a.get("NextAllocation") or ""))
    )


def start(tmp_path: Path) -> tuple[Cluster, Agent, Agent]:
    cluster = Cluster(tmp_path)
    server = cluster.add_server(bootstrap_expect=1).start()
    cluster.wait_leader([server])
    client = cluster.add_client(servers=[server], extra={"leave_on_terminate": True, **RAW_EXEC}).start()
    cluster.wait_for(lambda: [n["Status"] for n in server.api("GET", "/v1/nodes")] == ["ready"], 30, "client")
    return cluster, server, client


def run_cli(server: Agent, *args: str, timeout: float = 90.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nomadd", *args],
        capture_output=True,
        text=True,
        env=agent_env(NOMAD_ADDR=server.url),
        timeout=timeout,
    )


def write(tmp_path: Path, name: str, body: dict[str, Any]) -> str:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(body))
    return str(path)


def wait_status(
    cluster: Cluster, server: Agent, job_id: str, status: str, timeout: float = 40.0
) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        d = latest(server, job_id)
        return d if d is not None and d["Status"] == status else None

    try:
        found: dict[str, Any] = cluster.wait_for(done, timeout, f"deployment of {job_id} {status}")
    except AssertionError:
        for a in allocs(server, job_id):
            print(
                a["ID"][:8],
                a["Name"],
                a["JobVersion"],
                a["DesiredStatus"],
                a["ClientStatus"],
                a["DeploymentStatus"],
            )
        for d in server.api("GET", f"/v1/job/{job_id}/deployments"):
            print(d["ID"][:8], d["JobVersion"], d["Status"], d["StatusDescription"], d["TaskGroups"])
        raise
    return found


def cleanup(cluster: Cluster, server: Agent, client: Agent, job_ids: list[str]) -> None:
    left = list(handles(client).values()) if client.data_dir.exists() else []
    for job_id in job_ids:
        try:
            server.api("DELETE", f"/v1/job/{job_id}?purge=true", timeout=5.0)
        except Exception:
            pass
    cluster.close()
    destroy(left)


def test_rolling_update_keeps_max_parallel_and_succeeds(tmp_path: Path) -> None:
    cluster, server, client = start(tmp_path)
    try:
        server.api("PUT", "/v1/jobs", spec("roll", 6, "1"))
        first = wait_status(cluster, server, "roll", "successful")
        assert first["JobVersion"] == 0
        assert first["TaskGroups"]["web"]["HealthyAllocs"] == 6
        assert server.api("GET", "/v1/job/roll")["Stable"] is True

        samples: list[int] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                try:
                    samples.append(unsafe_stops(allocs(server, "roll"), 0))
                except Exception:
                    pass
                time.sleep(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            out = run_cli(server, "job", "run", write(tmp_path, "v2", spec("roll", 6, "2")))
        finally:
            stop.set()
            sampler.join(5)
        print(out.stdout)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "==> Monitoring deployment" in out.stdout
        assert "Task Group  Desired  Placed  Healthy  Unhealthy  Progress Deadline" in out.stdout
        assert "successful" in out.stdout
        print(f"samples={len(samples)} max unsafe stops={max(samples)}")
        assert max(samples) <= 2, f"more than max_parallel old allocations down: {max(samples)}"
        assert len(samples) > 20
        assert max(samples) >= 1  # the sampler did see the rollout
        second = latest(server, "roll")
        assert second is not None and second["Status"] == "successful" and second["JobVersion"] == 1
        assert second["TaskGroups"]["web"]["HealthyAllocs"] == 6
        live = [a for a in allocs(server, "roll") if a["DesiredStatus"] == "run"]
        assert len(live) == 6 and {a["JobVersion"] for a in live} == {1}
        listed = server.api("GET", "/v1/job/roll/deployments")
        assert [d["ID"] for d in listed] == [second["ID"], first["ID"]]
        # job run followed the deployment its evaluation recorded (eval.DeploymentID)
        assert f'==> Monitoring deployment "{second["ID"][:8]}"' in out.stdout
        evals = server.api("GET", "/v1/job/roll/evaluations")
        assert second["ID"] in {e.get("DeploymentID") for e in evals}
        # a forced GC takes the terminal deployment nothing runs under; the live one stays
        server.api("PUT", "/v1/system/gc")
        assert [d["ID"] for d in server.api("GET", "/v1/job/roll/deployments")] == [second["ID"]]
    finally:
        cleanup(cluster, server, client, ["roll"])


def test_auto_revert_and_canary_promotion(tmp_path: Path) -> None:
    cluster, server, client = start(tmp_path)
    try:
        # auto_revert: a failing version is rolled back to the stable one
        server.api("PUT", "/v1/jobs", spec("rev", 3, "1", AutoRevert=True))
        wait_status(cluster, server, "rev", "successful")
        out = run_cli(
            server, "job", "run", write(tmp_path, "bad", spec("rev", 3, "2", fail=True, AutoRevert=True))
        )
        print(out.stdout, out.stderr)
        assert out.returncode == 1, out.stdout + out.stderr
        deployments = server.api("GET", "/v1/job/rev/deployments")
        failed = next(d for d in deployments if d["JobVersion"] == 1)
        assert failed["Status"] == "failed"
        assert "rolling back to job version 0" in failed["StatusDescription"]
        job = cluster.wait_for(
            lambda: (j := server.api("GET", "/v1/job/rev"))["Version"] == 2 and j, 20, "revert"
        )
        assert job["TaskGroups"][0]["Tasks"][0]["Env"] == {"VERSION": "1"}  # version 0's spec again
        wait_status(cluster, server, "rev", "successful")

        # canary: runs beside the old version until promoted
        server.api("PUT", "/v1/jobs", spec("can", 3, "1", Canary=1))
        wait_status(cluster, server, "can", "successful")
        reply = server.api("PUT", "/v1/jobs", spec("can", 3, "2", Canary=1))
        assert reply["EvalID"]

        def canary_healthy() -> dict[str, Any] | None:
            d = latest(server, "can")
            if d is None or d["JobVersion"] != 1:
                return None
            return d if d["TaskGroups"]["web"]["HealthyAllocs"] >= 1 else None

        d = cluster.wait_for(canary_healthy, 30, "healthy canary")
        assert d["Status"] == "running" and d["TaskGroups"]["web"]["DesiredCanaries"] == 1
        time.sleep(1.0)  # nothing else moves while unpromoted
        running = [a for a in allocs(server, "can") if a["DesiredStatus"] == "run"]
        assert sorted(a["JobVersion"] for a in running) == [0, 0, 0, 1]
        canary = next(a for a in running if a["JobVersion"] == 1)
        assert canary["DeploymentStatus"]["Canary"] is True
        status = run_cli(server, "deployment", "status", d["ID"][:8])
        assert status.returncode == 0 and "Canaries" in status.stdout, status.stdout + status.stderr
        job_status = run_cli(server, "job", "status", "can")
        assert "Latest Deployment" in job_status.stdout and d["ID"][:8] in job_status.stdout, (
            job_status.stdout
        )
        promoted = run_cli(server, "deployment", "promote", d["ID"][:8])
        print(promoted.stdout, promoted.stderr)
        assert promoted.returncode == 0, promoted.stdout + promoted.stderr
        done = wait_status(cluster, server, "can", "successful")
        assert done["ID"] == d["ID"] and done["TaskGroups"]["web"]["Promoted"] is True
        live = [a for a in allocs(server, "can") if a["DesiredStatus"] == "run"]
        assert len(live) == 3 and {a["JobVersion"] for a in live} == {1}
        listing = run_cli(server, "deployment", "list")
        assert listing.returncode == 0 and d["ID"][:8] in listing.stdout
    finally:
        cleanup(cluster, server, client, ["rev", "can"])


def test_three_servers_agree_on_an_auto_promoted_canary(tmp_path: Path) -> None:
    """Followers decode every deployment entry the leader applied (a divergence or an FSM
    fatal error would show here); ``auto_promote`` promotes a healthy canary by itself."""
    cluster = Cluster(tmp_path)
    client: Agent | None = None
    servers: list[Agent] = []
    try:
        servers = [cluster.add_server(bootstrap_expect=3) for _ in range(3)]
        cluster.link(servers)
        for s in servers:
            s.start()
        leader = cluster.wait_leader(servers, timeout=40)
        client = cluster.add_client(servers=servers, extra={"leave_on_terminate": True, **RAW_EXEC}).start()
        cluster.wait_for(
            lambda: [n["Status"] for n in leader.api("GET", "/v1/nodes")] == ["ready"], 30, "client"
        )
        leader.api("PUT", "/v1/jobs", spec("auto", 3, "1", Canary=1, AutoPromote=True))
        wait_status(cluster, leader, "auto", "successful")
        leader.api("PUT", "/v1/jobs", spec("auto", 3, "2", Canary=1, AutoPromote=True))

        def promoted() -> dict[str, Any] | None:
            d = latest(leader, "auto")
            return d if d is not None and d["JobVersion"] == 1 and d["Status"] == "successful" else None

        done = cluster.wait_for(promoted, 60, "canary auto-promoted and the rollout done")
        assert done["TaskGroups"]["web"]["Promoted"] is True
        views = cluster.wait_for(
            lambda: (v := [latest(s, "auto") for s in servers]) and all(x == done for x in v) and v,
            10,
            "every server's view of the deployment",
        )
        assert len(views) == 3
        assert all(s.running() for s in servers)
    finally:
        if client is not None and servers:
            cleanup(cluster, servers[0], client, ["auto"])
        else:
            cluster.close()
