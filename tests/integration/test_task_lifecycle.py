"""Task ``lifecycle {}`` with a real agent and raw_exec: 1 server + 1 client.

A service group: ``init`` (prestart, runs to completion), ``side`` (prestart sidecar), ``main``
(refuses to start unless init finished and side runs: it checks their marks in the shared
alloc dir) and ``bye`` (poststop). While main runs, init is dead (not failed), side runs and bye
is pending; after ``job stop`` bye has run, and wrote its mark after main was stopped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.cluster import Cluster
from tests.integration.test_client_allocs import RAW_EXEC

pytestmark = pytest.mark.slow


def _task(name: str, script: str, hook: str = "", sidecar: bool = False) -> dict[str, Any]:
    task: dict[str, Any] = {
        "Name": name,
        "Driver": "raw_exec",
        "Config": {"command": "/bin/sh", "args": ["-c", script]},
        "Resources": {"CPU": 50, "MemoryMB": 32},
        "KillTimeout": 1_000_000_000,
    }
    if hook:
        task["Lifecycle"] = {"Hook": hook, "Sidecar": sidecar}
    return task


MARK = 'echo {0} >> "$NOMAD_ALLOC_DIR/marks"'
JOB = {
    "Job": {
        "ID": "life",
        "Type": "service",
        "Datacenters": ["dc1"],
        "TaskGroups": [
            {
                "Name": "g",
                "Count": 1,
                "RestartPolicy": {"Attempts": 0, "Mode": "fail"},
                "Tasks": [
                    _task("init", f"sleep 1; {MARK.format('init')}", "prestart"),
                    _task("side", f"{MARK.format('side')}; exec sleep 1000", "prestart", sidecar=True),
                    _task(
                        "main",
                        'grep -q init "$NOMAD_ALLOC_DIR/marks" && grep -q side "$NOMAD_ALLOC_DIR/marks" '
                        f"|| exit 3; {MARK.format('main')}; exec sleep 1000",
                    ),
                    _task("bye", MARK.format("bye"), "poststop"),
                ],
            }
        ],
    }
}


def test_prestart_sidecar_main_poststop(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    try:
        server = cluster.add_server(bootstrap_expect=1).start()
        cluster.wait_leader([server])
        client = cluster.add_client(servers=[server], extra=RAW_EXEC).start()
        cluster.wait_for(
            lambda: [n["Status"] for n in server.api("GET", "/v1/nodes")] == ["ready"], 30, "ready"
        )
        server.api("PUT", "/v1/jobs", JOB)

        def alloc() -> dict[str, Any] | None:
            found = server.api("GET", "/v1/job/life/allocations")
            return server.api("GET", f"/v1/allocation/{found[0]['ID']}") if found else None

        def states(a: dict[str, Any]) -> dict[str, tuple[str, bool]]:
            return {k: (v["State"], v["Failed"]) for k, v in (a.get("TaskStates") or {}).items()}

        running = cluster.wait_for(
            lambda: (a := alloc()) is not None and states(a).get("main", ("",))[0] == "running" and a,
            30,
            "main running",
        )
        st = states(running)
        assert st["init"] == ("dead", False) and st["side"] == ("running", False)
        assert st["bye"] == ("pending", False)
        assert running["ClientStatus"] == "running"
        marks = client.data_dir / "alloc" / running["ID"] / "alloc" / "marks"
        assert marks.read_text().split()[:3] in (["init", "side", "main"], ["side", "init", "main"])

        server.api("DELETE", "/v1/job/life")
        done = cluster.wait_for(
            lambda: (a := alloc()) is not None and a["ClientStatus"] == "complete" and a, 30, "alloc complete"
        )
        assert states(done)["bye"] == ("dead", False)
        assert marks.read_text().split()[-1] == "bye"
        assert all(state == "dead" for state, _ in states(done).values())
    finally:
        cluster.close()
