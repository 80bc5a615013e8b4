"""``sysbatch`` with real agents: the job runs once on every client and completes (job ``dead``);
``job eval`` does not run it again; a new version of the job runs again on every client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.cluster import Agent, Cluster
from tests.integration.test_client_allocs import RAW_EXEC
from tests.integration.test_client_batch_system import job

pytestmark = pytest.mark.slow


def allocs(server: Agent) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = server.api("GET", "/v1/job/once-each/allocations", timeout=5.0)
    return found


def test_sysbatch_runs_to_completion_once_per_client(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    try:
        server = cluster.add_server(bootstrap_expect=1).start()
        cluster.wait_leader([server])
        for _ in range(2):
            cluster.add_client(servers=[server], extra=RAW_EXEC).start()
        cluster.wait_for(
            lambda: len([n for n in server.api("GET", "/v1/nodes") if n["Status"] == "ready"]) == 2,
            30,
            "2 clients ready",
        )
        spec = job("once-each", "sysbatch", "echo done")
        path = tmp_path / "sysbatch.json"
        path.write_text(json.dumps(spec))
        ran = server.cli("job", "run", str(path), timeout=60)
        assert ran.returncode == 0, ran.stdout + ran.stderr

        def complete_nodes() -> set[str]:
            return {a["NodeID"] for a in allocs(server) if a["ClientStatus"] == "complete"}

        cluster.wait_for(lambda: len(complete_nodes()) == 2, 30, "complete on both clients")
        cluster.wait_for(lambda: server.api("GET", "/v1/job/once-each")["Status"] == "dead", 15, "job dead")

        again = server.cli("job", "eval", "once-each", timeout=60)
        assert again.returncode == 0, again.stdout + again.stderr
        assert len(allocs(server)) == 2  # finished work is not run again

        spec["Job"]["Meta"] = {"v": "2"}
        path.write_text(json.dumps(spec))
        rerun = server.cli("job", "run", str(path), timeout=60)
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        cluster.wait_for(
            lambda: (
                len([a for a in allocs(server) if a["ClientStatus"] == "complete" and a["JobVersion"] == 1])
                == 2
            ),
            30,
            "version 1 complete on both clients",
        )
        assert len(allocs(server)) == 4
    finally:
        cluster.close()
