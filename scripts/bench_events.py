#!/usr/bin/env python3
"""Job register rate with no event stream, with a stalled one, and with a reading one, same run.

One ``-dev`` agent (``event_buffer_size`` at Nomad's 100). Each round registers ``--jobs`` jobs no
node can run (tests/integration/event_load.py: evaluated, then blocked; no task starts) with
``--inflight`` concurrent ``PUT /v1/jobs``, three times: with no subscriber; with one subscriber
that never reads (a socket with a 4 KiB receive buffer) — the server must cut it off and keep
its rate; with one subscriber reading every event (another process that counts them without
parsing, so the figure is the server's cost and not the reader's). The phases rotate over ``--rounds`` rounds
(default 3) so a slow machine moment does not land on one phase; the median per phase is the
figure, and the ratios to "no stream" are what docs/events.md promises (within 10 %). The rate
moves with whatever else the machine runs; the agent's CPU time per register (user + system,
/proc) is printed beside it as the steadier measure of what the stream costs the server.
Usage: scripts/bench_events.py [--jobs 1000] [--inflight 8] [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import DevAgent  # noqa: E402
from tests.integration.event_load import StalledStream, register_jobs, start_counter  # noqa: E402

PHASES = ("none", "stalled", "reading")


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _phase(agent: DevAgent, phase: str, ids: list[str], inflight: int) -> tuple[float, float, str]:
    reader = stalled = None
    if phase == "reading":
        reader = start_counter(agent.port, len(ids))
    elif phase == "stalled":
        stalled = StalledStream(agent.port)
        time.sleep(0.3)  # subscribed before the first register
    cpu = _cpu_s(agent.agent.proc.pid)
    _, seconds = register_jobs(agent.port, ids, inflight)
    cpu_ms = (_cpu_s(agent.agent.proc.pid) - cpu) * 1000 / len(ids)
    note = ""
    if reader is not None:
        try:
            out, _ = reader.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            reader.kill()
            out, _ = reader.communicate()
        jobs, nbytes = (int(x) for x in (out.split() or ["0", "0"]))
        note = f"read {jobs} Job events, {nbytes / 1e6:.1f} MB"
    if stalled is not None:
        cut, tail = stalled.cut_off()
        note = "cut off" if cut else "NOT cut off"
        if b'"Error"' in tail:
            note += " with the error line"
    return len(ids) / seconds, cpu_ms, note


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--inflight", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rates: dict[str, list[float]] = {p: [] for p in PHASES}
    cpus: dict[str, list[float]] = {p: [] for p in PHASES}
    with tempfile.TemporaryDirectory(prefix="bench-events-") as tmp, DevAgent.running(Path(tmp)) as agent:
        register_jobs(agent.port, [f"warm-{i}" for i in range(50)], args.inflight)
        for r in range(args.rounds):
            order = PHASES[r % 3 :] + PHASES[: r % 3]
            for phase in order:
                ids = [f"r{r}-{phase}-{i}" for i in range(args.jobs)]
                rate, cpu_ms, note = _phase(agent, phase, ids, args.inflight)
                rates[phase].append(rate)
                cpus[phase].append(cpu_ms)
                line = f"round {r + 1} {phase:8} {rate:8.1f} registers/s {cpu_ms:6.2f} agent CPU ms each"
                print(f"{line}  {note}", file=sys.stderr)
    med = {p: statistics.median(v) for p, v in rates.items()}
    cpu_med = {p: statistics.median(v) for p, v in cpus.items()}
    result = {
        "registers_per_s": med,
        "agent_cpu_ms_per_register": cpu_med,
        "stalled_cpu_vs_none": cpu_med["stalled"] / cpu_med["none"],
        "reading_cpu_vs_none": cpu_med["reading"] / cpu_med["none"],
        "stalled_vs_none": med["stalled"] / med["none"],
        "reading_vs_none": med["reading"] / med["none"],
        "jobs": args.jobs,
        "inflight": args.inflight,
        "rounds": args.rounds,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"job registers/s, median of {args.rounds} rounds of {args.jobs} ({args.inflight} in flight):")
        for p in PHASES:
            print(
                f"  {p:8} stream: {med[p]:8.1f}/s  ({med[p] / med['none']:.2f} of no stream)"
                f"   agent CPU {cpu_med[p]:5.2f} ms per register ({cpu_med[p] / cpu_med['none']:.2f})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
