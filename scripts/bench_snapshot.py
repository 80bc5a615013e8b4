#!/usr/bin/env python3
"""Issue 8 acceptance 4 at full size: snapshot a 3-server cluster holding 100,000 allocations,
restore it into a fresh 3-server cluster, compare the tables, refuse a corrupt file; prints the
time of each step (tests/integration/snapshot_workload.py, which the CI test runs small).

``--running N``: restore the saved state into the same running cluster N times instead, and
print each restore's time, the servers' peak RSS meanwhile, the leader changes and the slowest
``/v1/status/leader`` answer (tests/integration/snapshot_running.py; issue 15: a large state
restored within 30 s without an election). ``--c1m``: the C1M cluster shape (5,000 nodes,
jobs of 10 allocations; ``--jobs 20000`` is 200,000 allocations).

Usage: scripts/bench_snapshot.py [--nodes 1000] [--jobs 1000] [--count 100] [--c1m] [--running N] [--json]
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
    ap.add_argument("--nodes", type=int, default=None)
    ap.add_argument("--jobs", type=int, default=None)
    ap.add_argument("--count", type=int, default=None)
    ap.add_argument("--c1m", action="store_true", help="5,000 nodes, jobs of 10 (default 100,000 jobs)")
    ap.add_argument(
        "--running", type=int, default=0, metavar="N", help="restore into the running cluster N times"
    )
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--json", action="store_true")
    opts = ap.parse_args()
    shape = (5000, 100_000, 10) if opts.c1m else (1000, 1000, 100)
    nodes, jobs, count = (
        given if given is not None else d
        for given, d in zip((opts.nodes, opts.jobs, opts.count), shape, strict=True)
    )
    with tempfile.TemporaryDirectory(prefix="bench-snapshot-") as tmp:
        if opts.running:
            from tests.integration.snapshot_running import run_running

            result = run_running(
                Path(tmp), nodes=nodes, jobs=jobs, count=count, rounds=opts.running, timeout=opts.timeout
            )
        else:
            from tests.integration.snapshot_workload import run

            result = run(Path(tmp), nodes=nodes, jobs=jobs, count=count, timeout=opts.timeout)
    if opts.json or opts.running:
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
