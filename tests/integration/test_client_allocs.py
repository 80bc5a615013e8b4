"""Issue 4, client side, with real processes: 1 server + 1 client running raw_exec tasks.

* a count-2 service job runs; ``alloc logs`` shows the tasks' output;
* SIGKILL the client agent, start it again: the same task PIDs are still running and
  reattached, no task restarted, the logs continue (issue 4 acceptance 4);
* graceful leave (``leave_on_terminate``): the node is down within 1 s, the agent exits 0 and
  its tasks are untouched (issue 3 acceptance 3);
* ``job stop`` of a job on a running client stops its processes.
"""

from __future__ import annotations

import asyncio
import json
import pwd
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from nomadd.drivers import proc
from nomadd.drivers.base import DriverConfig, TaskHandle
from nomadd.drivers.exec import ExecDriver
from nomadd.drivers.raw_exec import RawExecDriver
from tests.helpers import AgentProcess, agent_env, dev_ports_config, is_root, need, run_nomadd, wait_for
from tests.integration.cluster import Agent, Cluster

pytestmark = pytest.mark.slow

RAW_EXEC = {"plugin": {"raw_exec": {"config": {"enabled": True}}}}
TICKER = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done"


def job(job_id: str, count: int, script: str = TICKER) -> dict[str, Any]:
    return {
        "Job": {
            "ID": job_id,
            "Name": job_id,
            "Type": "service",
            "Datacenters": ["dc1"],
            "TaskGroups": [
                {
                    "Name": "g",
                    "Count": count,
                    "Tasks": [
                        {
                            "Name": "t",
                            "Driver": "raw_exec",
                            "Config": {"command": "/bin/sh", "args": ["-c", script]},
                            "Resources": {"CPU": 50, "MemoryMB": 32},
                            "KillTimeout": 1_000_000_000,
                        }
                    ],
                }
            ],
        }
    }


def allocs(server: Agent, job_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = server.api("GET", f"/v1/job/{job_id}/allocations", timeout=5.0)
    return found


def handles(client: Agent) -> dict[str, dict[str, Any]]:
    """alloc_id -> stored task handle, read from the client's state db."""
    return handles_in(client.data_dir)


def handles_in(data_dir: Path) -> dict[str, dict[str, Any]]:
    db = sqlite3.connect(data_dir / "client" / "state.db")
    try:
        rows = db.execute("SELECT alloc_id, data FROM task_handles").fetchall()
    finally:
        db.close()
    return {a: json.loads(d) for a, d in rows}


def alive(h: dict[str, Any]) -> bool:
    return proc.is_alive(int(h["pid"]), int(h["start_time"]))


def destroy(hs: list[dict[str, Any]]) -> None:
    driver = RawExecDriver(DriverConfig(enabled=True))

    async def main() -> None:
        for h in hs:
            await driver.destroy_task(TaskHandle.from_dict(h))

    asyncio.run(main())


def ticks(text: str) -> list[int]:
    return [int(line.split()[1]) for line in text.splitlines() if line.startswith("tick ")]


def test_tasks_survive_client_restart_and_leave(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    started: list[dict[str, Any]] = []
    try:
        server = cluster.add_server(bootstrap_expect=1).start()
        cluster.wait_leader([server])
        client = cluster.add_client(servers=[server], extra={"leave_on_terminate": True, **RAW_EXEC}).start()
        cluster.wait_for(
            lambda: [n["Status"] for n in server.api("GET", "/v1/nodes")] == ["ready"], 30, "client ready"
        )
        server.api("PUT", "/v1/jobs", job("ticker", 2))

        def running() -> bool:
            found = allocs(server, "ticker")
            return len(found) == 2 and all(a["ClientStatus"] == "running" for a in found)

        cluster.wait_for(running, 30, "2 allocations running")
        cluster.wait_for(lambda: len(handles(client)) == 2, 10, "handles stored")
        before = handles(client)
        started = list(before.values())
        assert all(alive(h) for h in before.values())
        alloc_id = next(iter(before))
        out = cluster.wait_for(
            lambda: (
                (r := server.cli("alloc", "logs", alloc_id[:8])).returncode == 0 and ticks(r.stdout) and r
            ),
            10,
            "alloc logs",
        )
        first_ticks = ticks(out.stdout)
        env_line = server.api("GET", f"/v1/allocation/{alloc_id}")["TaskStates"]["t"]["State"]
        assert env_line == "running"

        # SIGKILL the agent, start it again: same PIDs, no restart, logs continue
        client.kill(signal.SIGKILL)
        assert all(alive(h) for h in before.values()), "tasks died with the agent"
        client.start()
        client.wait_http(30)
        cluster.wait_for(
            lambda: "task recovered" in client.output and client.output.count("task recovered") >= 2,
            20,
            "tasks recovered",
        )
        time.sleep(1.0)
        after = handles(client)
        assert {a: h["pid"] for a, h in after.items()} == {a: h["pid"] for a, h in before.items()}
        for a in allocs(server, "ticker"):
            st = a["TaskStates"]["t"]
            assert st["State"] == "running"
            assert st["Restarts"] == 0
            assert [e["Type"] for e in st["Events"]].count("Started") == 1
        out2 = server.cli("alloc", "logs", alloc_id)
        assert out2.returncode == 0, out2.stderr
        later = ticks(out2.stdout)
        assert later[: len(first_ticks)] == first_ticks
        assert later[-1] > first_ticks[-1]
        assert later == list(range(len(later))), "one uninterrupted task wrote the log"

        # graceful leave: down within 1 s, exit 0, tasks untouched
        client.kill(signal.SIGTERM)
        t0 = time.monotonic()
        cluster.wait_for(
            lambda: [n["Status"] for n in server.api("GET", "/v1/nodes")] == ["down"], 3, "node down"
        )
        took = time.monotonic() - t0
        assert took <= 1.0, f"leave took {took:.2f}s"
        assert client.wait_exit(10) == 0
        assert all(alive(h) for h in before.values()), "leave killed tasks"
    finally:
        cluster.close()
        if started:
            destroy(started)


def test_job_stop_stops_processes(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    started: list[dict[str, Any]] = []
    try:
        server = cluster.add_server(bootstrap_expect=1).start()
        cluster.wait_leader([server])
        client = cluster.add_client(servers=[server], extra=RAW_EXEC).start()
        cluster.wait_for(
            lambda: [n["Status"] for n in server.api("GET", "/v1/nodes")] == ["ready"], 30, "client ready"
        )
        server.api(
            "PUT",
            "/v1/jobs",
            job(
                "stopme",
                1,
                "trap 'echo usr1' USR1; trap 'echo bye; exit 0' INT; while true; do sleep 0.1; done",
            ),
        )
        cluster.wait_for(lambda: len(handles(client)) == 1, 30, "task started")
        started = list(handles(client).values())
        h = started[0]
        assert alive(h)
        # a signal through the server agent's HTTP API, forwarded to the client that runs it
        alloc_id = next(iter(handles(client)))
        server.api("POST", f"/v1/client/allocation/{alloc_id}/signal", {"Task": "t", "Signal": "SIGUSR1"})
        cluster.wait_for(lambda: "usr1" in server.cli("alloc", "logs", alloc_id).stdout, 10, "signal seen")
        out = server.cli("job", "stop", "stopme")
        assert out.returncode == 0, out.stderr
        cluster.wait_for(lambda: not alive(h), 10, "task stopped")
        cluster.wait_for(
            lambda: allocs(server, "stopme")[0]["ClientStatus"] == "complete", 10, "alloc complete"
        )
        st = allocs(server, "stopme")[0]["TaskStates"]["t"]
        assert [e["Type"] for e in st["Events"]][-2:] == ["Killing", "Killed"]
        logs = server.cli("alloc", "logs", allocs(server, "stopme")[0]["ID"])
        assert "bye" in logs.stdout  # KillSignal SIGINT reached the task's trap
    finally:
        cluster.close()
        if started:
            destroy(started)


def test_dev_agent_runs_jobs_and_destroys_allocs_at_exit(tmp_path: Path) -> None:
    """Issue 4 acceptance 1: ``-dev``: count 3 → 3 running processes with logs; the dev agent
    destroys its allocations when it exits (Nomad does)."""
    cfg, http = dev_ports_config(tmp_path)
    data = tmp_path / "data"
    agent = AgentProcess(["-dev", "-config", str(cfg), "-data-dir", str(data)])
    started: list[dict[str, Any]] = []
    env = {"NOMAD_ADDR": f"http://127.0.0.1:{http}"}
    try:
        agent.wait_line("node is ready", 30)
        job_file = tmp_path / "job.json"
        job_file.write_text(json.dumps(job("devjob", 3, "echo hello from $NOMAD_ALLOC_ID; sleep 1000")))
        out = run_nomadd(["job", "run", str(job_file)], env=agent_env(**env))
        assert out.returncode == 0, out.stdout + out.stderr
        wait_for(lambda: len(handles_in(data)) == 3, 30, what="3 tasks started")
        started = list(handles_in(data).values())
        assert all(alive(h) for h in started)
        for alloc_id in handles_in(data):
            logs = wait_for(
                lambda a=alloc_id: (
                    (r := run_nomadd(["alloc", "logs", a], env=agent_env(**env))).returncode == 0
                    and "hello from" in r.stdout
                    and r
                ),
                10,
                what="alloc logs",
            )
            assert f"hello from {alloc_id}" in logs.stdout
        agent.signal(signal.SIGINT)
        agent.wait(20)
        assert not any(alive(h) for h in started), "dev agent left its tasks running"
    finally:
        agent.stop()
        if started:
            destroy(started)


def test_exec_task_runs_as_nobody(tmp_path: Path) -> None:
    """The exec driver through the client (root only): the task runs as ``nobody`` with the
    NOMAD_* environment, and its output is readable with ``alloc logs``."""
    need(is_root(), "the exec driver needs root")
    cluster = Cluster(tmp_path)
    started: list[dict[str, Any]] = []
    try:
        server = cluster.add_server(bootstrap_expect=1).start()
        cluster.wait_leader([server])
        client = cluster.add_client(servers=[server]).start()
        cluster.wait_for(
            lambda: [n["Status"] for n in server.api("GET", "/v1/nodes")] == ["ready"], 30, "client ready"
        )
        node = server.api("GET", "/v1/nodes")[0]
        exec_info = node["Drivers"].get("exec") or {}
        need(
            bool(exec_info.get("Detected")), f"exec driver not detected: {exec_info.get('HealthDescription')}"
        )
        spec = job("execjob", 1, 'echo "uid=$(id -u) task=$NOMAD_TASK_NAME job=$NOMAD_JOB_NAME"; sleep 1000')
        spec["Job"]["TaskGroups"][0]["Tasks"][0]["Driver"] = "exec"
        server.api("PUT", "/v1/jobs", spec)
        cluster.wait_for(lambda: len(handles(client)) == 1, 30, "exec task started")
        started = list(handles(client).values())
        alloc_id = next(iter(handles(client)))
        out = cluster.wait_for(
            lambda: "uid=" in (r := server.cli("alloc", "logs", alloc_id)).stdout and r, 10, "exec logs"
        )
        nobody = pwd.getpwnam("nobody").pw_uid
        assert f"uid={nobody} task=t job=execjob" in out.stdout
        assert started[0]["driver"] == "exec"
    finally:
        cluster.close()
        if started:
            driver = ExecDriver()

            async def main() -> None:
                for h in started:
                    await driver.destroy_task(TaskHandle.from_dict(h))

            asyncio.run(main())
