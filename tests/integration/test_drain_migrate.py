"""Issue 13 acceptance 6 with real agents: 1 server + 3 clients.

A count-6 service with ``migrate { max_parallel = 1, min_healthy_time = 1s }`` lands on client
a (the only client at first). ``nomadd node drain -enable`` of a: a sampler reads
``/v1/job/:id/allocations`` every 100 ms and counts the allocations *migrating* — marked
``DesiredTransition.Migrate`` and without a healthy replacement (running, every task started at
least min_healthy_time ago) — and never sees more than 1, while all 6 move to b and c.

Then the one of b and c (both with ``drain_on_shutdown`` and ``leave_on_terminate``) that holds
more of them gets SIGTERM: before its agent exits, its allocations were moved to the other one
at a time (never fewer than count - 1 running), none runs on it any more, and all 6 run on the
other client (the drain completes once every replacement runs; Nomad's completes when the last
old allocation stopped, its replacement perhaps still starting).
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.cluster import Agent, Cluster, HTTPError
from tests.integration.test_client_allocs import RAW_EXEC, job

pytestmark = pytest.mark.slow

JOB = "mig"
MIN_HEALTHY_S = 1.0


def migrate_job() -> dict[str, Any]:
    spec = job(JOB, 6, "sleep 1000")
    spec["Job"]["TaskGroups"][0]["Migrate"] = {
        "MaxParallel": 1,
        "HealthCheck": "task_states",
        "MinHealthyTime": int(MIN_HEALTHY_S * 1e9),
        "HealthyDeadline": 60_000_000_000,
    }
    return spec


def allocs(server: Agent) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = server.api("GET", f"/v1/job/{JOB}/allocations", timeout=5.0)
    return found


def _epoch(rfc3339: str) -> float:
    from nomadd.structs.timeutil import parse_time

    return parse_time(rfc3339) / 1e9


def healthy(alloc: dict[str, Any], now: float) -> bool:
    states = (alloc.get("TaskStates") or {}).values()
    return (
        alloc["ClientStatus"] == "running"
        and bool(states)
        and all(s["State"] == "running" and now - _epoch(s["StartedAt"]) >= MIN_HEALTHY_S for s in states)
    )


def marked(alloc: dict[str, Any]) -> bool:
    return bool((alloc.get("DesiredTransition") or {}).get("Migrate"))


def migrating(found: list[dict[str, Any]], now: float) -> int:
    """Marked allocations whose replacement is not healthy yet (of a chain a → b → c moved
    twice, only the last mark counts)."""
    by_id = {a["ID"]: a for a in found}
    count = 0
    for a in found:
        if not marked(a):
            continue
        nxt = by_id.get(a.get("NextAllocation") or "")
        if nxt is None or (not marked(nxt) and not healthy(nxt, now)):
            count += 1
    return count


def running_on(found: list[dict[str, Any]], node_id: str) -> list[dict[str, Any]]:
    return [a for a in found if a["NodeID"] == node_id and a["ClientStatus"] == "running"]


class Sampler:
    """Every 100 ms: the number of migrating allocations (max kept) and running ones (min kept)."""

    def __init__(self, server: Agent) -> None:
        self.server = server
        self.max_migrating = 0
        self.min_running = 6
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            try:
                found = allocs(self.server)
            except (HTTPError, OSError):
                continue
            now = time.time()
            self.samples += 1
            self.max_migrating = max(self.max_migrating, migrating(found, now))
            live = [a for a in found if a["DesiredStatus"] == "run" and a["ClientStatus"] == "running"]
            self.min_running = min(self.min_running, len(live))


def test_drain_moves_one_at_a_time_and_drain_on_shutdown(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    try:
        server = cluster.add_server(bootstrap_expect=1).start()
        cluster.wait_leader([server])
        a = cluster.add_client(servers=[server], extra=RAW_EXEC).start()

        def node_ids() -> dict[str, str]:
            found = server.api("GET", "/v1/nodes", timeout=3.0)
            return {n["Name"]: n["ID"] for n in found if n["Status"] == "ready"}

        ids = cluster.wait_for(lambda: len(node_ids()) == 1 and node_ids(), 30, "client a ready")
        server.api("PUT", "/v1/jobs", migrate_job())
        cluster.wait_for(lambda: len(running_on(allocs(server), ids[a.name])) == 6, 40, "6 running on a")
        drain_conf = {"drain_on_shutdown": {"deadline": "2m"}}
        b, c = (
            cluster.add_client(
                servers=[server], extra={"leave_on_terminate": True, **RAW_EXEC, "client": drain_conf}
            ).start()
            for _ in range(2)
        )
        ids = cluster.wait_for(lambda: len(node_ids()) == 3 and node_ids(), 30, "3 clients ready")
        time.sleep(MIN_HEALTHY_S)  # a's allocations healthy: the drain may start at once

        with Sampler(server) as sampler:
            out = server.cli("node", "drain", "-enable", "-yes", "-deadline", "2m", ids[a.name], timeout=120)
            assert out.returncode == 0, out.stdout + out.stderr
        print(
            f"drain: samples={sampler.samples} max_migrating={sampler.max_migrating} min_running={sampler.min_running}"
        )
        assert sampler.max_migrating == 1, f"{sampler.max_migrating} migrating at once"
        assert sampler.samples > 20
        assert sampler.min_running >= 5
        assert running_on(allocs(server), ids[a.name]) == []

        def moved() -> list[dict[str, Any]]:
            found = allocs(server)
            return running_on(found, ids[b.name]) + running_on(found, ids[c.name])

        cluster.wait_for(lambda: len(moved()) == 6, 20, "6 running on b and c")
        found = allocs(server)

        # SIGTERM the client holding more of them: all must move to the other one
        if len(running_on(found, ids[b.name])) < len(running_on(found, ids[c.name])):
            b, c = c, b
        with Sampler(server) as sampler:
            b.kill(signal.SIGTERM)
            assert b.wait_exit(90) == 0, b.output[-3000:]
            at_exit = allocs(server)
        print(
            f"shutdown: samples={sampler.samples} max_migrating={sampler.max_migrating} min_running={sampler.min_running}"
        )
        assert running_on(at_exit, ids[b.name]) == [], "still running on the stopped client"
        # the drain completed only once every replacement ran (drain_batch.replacements_pending):
        # before the agent exited, all of its work was running on the other client
        assert len(running_on(at_exit, ids[c.name])) == 6, [(a["NodeID"], a["ClientStatus"]) for a in at_exit]
        assert "self-drain complete" in b.output
        assert sampler.max_migrating <= 1 and sampler.min_running >= 5
        node_b = server.api("GET", f"/v1/node/{ids[b.name]}")
        assert node_b["LastDrain"]["Status"] == "complete"
        assert node_b["LastDrain"]["Meta"] == {"message": "shutting down"}
    finally:
        cluster.close()
