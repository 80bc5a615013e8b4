"""Issue 8 acceptance 4, CI size: a 3-server cluster with 2,000 allocations is saved with
``nomadd operator snapshot save``, inspected, and restored into a fresh 3-server cluster; every
server there then holds the same job, allocation, node, variable and evaluation tables. A
corrupt and a truncated file are refused (by the CLI and by the agent) and change nothing.

The 100,000-allocation run is ``scripts/bench_snapshot.py`` (same code:
tests/integration/snapshot_workload.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration.cluster import Cluster
from tests.integration.snapshot_workload import run

pytestmark = pytest.mark.slow


def test_snapshot_save_restore_into_fresh_cluster(tmp_path: Path) -> None:
    result = run(tmp_path, nodes=20, jobs=20, count=100)
    assert result["allocs"] == 2000 and result["nodes"] == 20


def test_scheduled_snapshots_are_written_and_pruned(tmp_path: Path) -> None:
    snaps = tmp_path / "snaps"
    cluster = Cluster(tmp_path)
    try:
        extra = {"server": {"snapshot": {"interval": "1s", "retain": 2, "path": str(snaps)}}}
        server = cluster.add_server(bootstrap_expect=1, extra=extra)
        server.start()
        cluster.wait_leader([server], timeout=30)
        server.api("PUT", "/v1/var/app/x", {"Items": {"v": "1"}})
        cluster.wait_for(
            lambda: len(list(snaps.glob("nomadd-*.snap"))) >= 2, timeout=30, what="two snapshots"
        )
        time.sleep(2.5)  # more intervals pass: still only the newest two
        files = sorted(snaps.glob("nomadd-*.snap"))
        assert len(files) == 2 and not list(snaps.glob("*.tmp"))
        out = server.cli("operator", "snapshot", "inspect", str(files[-1]))
        assert out.returncode == 0 and "variables" in out.stdout, out.stderr
    finally:
        cluster.close()
