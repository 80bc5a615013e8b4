#!/usr/bin/env python3
"""Issue 8 acceptance 4 at full size: snapshot a 3-server cluster holding 100,000 allocations,
restore it into a fresh 3-server cluster, compare the tables, refuse a corrupt file; prints the
time of each step (tests/integration/snapshot_workload.py, which the CI test runs small).

Usage: scripts/bench_snapshot.py [--nodes 1000] [--jobs 1000] [--count 100] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--json", action="store_true")
    opts = ap.parse_args()
    from tests.integration.snapshot_workload import run

    with tempfile.TemporaryDirectory(prefix="bench-snapshot-") as tmp:
        result = run(Path(tmp), nodes=opts.nodes, jobs=opts.jobs, count=opts.count, timeout=opts.timeout)
    if opts.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"allocations {result['allocs']}  nodes {result['nodes']}  archive {result['archive_bytes']} bytes"
        )
        for step, secs in result["times"].items():
            print(f"  {step:<22} {secs:8.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
