"""Issue 8 acceptance 6: the client agent is killed (SIGKILL) at every moment of a task start.

1 server + 1 client agent (real processes), raw_exec. For each delay from 0 to 200 ms: run a
new job, wait for the task's executor process to appear under the client, sleep the delay,
SIGKILL the client, start it again. Then exactly one copy of the task runs, the client tracks
that copy (its stored handle names its pid), the servers show the allocation ``running`` within
one heartbeat TTL of the client coming back, and ``job stop`` leaves no process behind.

Every delay is tried before the test fails, so the report lists all of them (duplicates seen,
allocations left pending, processes left behind).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from nomadd.drivers import adopt
from tests.integration.cluster import Agent, Cluster
from tests.integration.test_client_allocs import RAW_EXEC, allocs, handles, job

pytestmark = pytest.mark.slow

# Finer steps where the start happens (executor start-up and handshake, handle and state writes),
# then on to the first status report (batched every 200 ms).
DELAYS_MS = (*range(0, 40, 4), *range(40, 201, 20))
# The servers' minimum heartbeat TTL (their default): the client's status must be right by then.
HEARTBEAT_TTL_S = 10.0
SETTLE_S = 1.5  # how long the single copy is watched for a second one appearing


def task_copies(mark: str) -> list[int]:
    """The task's copies, by the session each leads (its shell forks before each ``sleep``, so
    counting shells would count that child too)."""
    procs = adopt.processes()
    return sorted({p.sid for p in procs if p.argv[:1] == ("/bin/sh",) and mark in " ".join(p.argv)})


def executors_under(root: Path) -> list[int]:
    procs = adopt.processes()
    return [
        p.pid
        for p in procs
        if adopt.EXECUTOR_MODULE in p.argv and any(a.startswith(str(root)) for a in p.argv)
    ]


def status_of(server: Agent, job_id: str) -> str:
    found = allocs(server, job_id)
    return str(found[0]["ClientStatus"]) if len(found) == 1 else f"{len(found)} allocs"


def one_round(cluster: Cluster, server: Agent, client: Agent, delay_ms: int) -> list[str]:
    """Run, crash and check one job; returns the problems seen (empty: all well)."""
    job_id, mark = f"crash{delay_ms}", f"crashmark{delay_ms}x{os.getpid()}"
    problems: list[str] = []
    alloc_root = client.data_dir / "alloc"
    server.api("PUT", "/v1/jobs", job(job_id, 1, f"MARK={mark}; while true; do sleep 0.1; done"))
    deadline = time.monotonic() + 30.0
    while not executors_under(alloc_root):  # a tight loop: the start takes tens of ms
        assert time.monotonic() < deadline, f"no executor for {job_id}"
    time.sleep(delay_ms / 1000)
    client.kill(signal.SIGKILL)
    client.start()
    client.wait_http(30)
    back = time.monotonic()
    # the servers hear the real status within one heartbeat TTL of the client coming back
    try:
        cluster.wait_for(lambda: status_of(server, job_id) == "running", HEARTBEAT_TTL_S, "running")
    except AssertionError:
        problems.append(f"status {status_of(server, job_id)!r} {HEARTBEAT_TTL_S:g}s after the restart")
    # exactly one copy runs, and it is the one the client tracks
    most = 0
    deadline = max(time.monotonic(), back + 3.0) + SETTLE_S
    while time.monotonic() < deadline:
        most = max(most, len(task_copies(mark)))
        time.sleep(0.05)
    copies = task_copies(mark)
    if most != 1 or len(copies) != 1:
        problems.append(f"{most} copies of the task ran at once ({len(copies)} at the end)")
    alloc_id = allocs(server, job_id)[0]["ID"]
    tracked = handles(client).get(alloc_id, {}).get("pid")
    if copies and tracked not in copies:
        problems.append(f"running copies {copies}, the client tracks pid {tracked}")
    # job stop leaves nothing behind
    server.api("DELETE", f"/v1/job/{job_id}")
    try:
        cluster.wait_for(lambda: not task_copies(mark) and not executors_under(alloc_root), 15, "stopped")
    except AssertionError:
        left = task_copies(mark)
        problems.append(f"after job stop {len(left)} copies still run")
        for pid in left:  # do not let them spoil the next rounds
            os.killpg(pid, signal.SIGKILL)
    return problems


def test_client_crash_at_every_moment_of_a_task_start(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    report: dict[int, list[str]] = {}
    try:
        server = cluster.add_server(bootstrap_expect=1).start()
        cluster.wait_leader([server])
        client = cluster.add_client(servers=[server], extra=RAW_EXEC).start()
        cluster.wait_for(
            lambda: [n["Status"] for n in server.api("GET", "/v1/nodes")] == ["ready"], 30, "client ready"
        )
        for delay_ms in DELAYS_MS:
            problems = one_round(cluster, server, client, delay_ms)
            if problems:
                report[delay_ms] = problems
        assert [n["Status"] for n in server.api("GET", "/v1/nodes")] == ["ready"]
    finally:
        cluster.close()
    assert not report, "\n".join(f"killed {d} ms after the executor appeared: {p}" for d, p in report.items())
