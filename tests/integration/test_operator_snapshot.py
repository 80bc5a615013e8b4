"""Issue 8 acceptance 4, CI size: a 3-server cluster with 2,000 allocations is saved with
``nomadd operator snapshot save``, inspected, and restored into a fresh 3-server cluster; every
server there then holds the same job, allocation, node, variable and evaluation tables. A
corrupt and a truncated file are refused (by the CLI and by the agent) and change nothing.

The 100,000-allocation run is ``scripts/bench_snapshot.py`` (same code:
tests/integration/snapshot_workload.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.snapshot_workload import run

pytestmark = pytest.mark.slow


def test_snapshot_save_restore_into_fresh_cluster(tmp_path: Path) -> None:
    result = run(tmp_path, nodes=20, jobs=20, count=100)
    assert result["allocs"] == 2000 and result["nodes"] == 20
