"""The figures of ``scripts/bench schedule --c1m`` (scripts/bench_c1m.py): the per-tenth
rates from the leader's gauge samples, the goals of the C1M acceptance, the printed report."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

GOAL_PER_S = 3750.0  # Nomad's C1M: 1,000,000 containers in under 5 minutes (267 s at this rate)
RATIO_GOAL = 0.8  # last tenth / first tenth, and scheduler alone large / small
OPS_GOAL_S = 30.0
RSS_GOAL_MB = 2048.0
ANSWER_GOAL_S = 1.0


def tenth_durations(samples: Sequence[tuple[float, int]], expected: int, parts: int = 10) -> list[float]:
    """Seconds each successive ``1/parts`` of ``expected`` placements took, from
    ``(seconds since start, placements committed)`` samples in time order (the count at time 0
    is 0). A boundary's time is interpolated linearly between the samples around it; the parts
    not reached are left out."""
    if expected <= 0 or parts <= 0:
        return []
    marks = [expected * k / parts for k in range(1, parts + 1)]
    times: list[float] = []
    prev_t, prev_c = 0.0, 0
    for t, c in samples:
        while len(times) < parts and c >= marks[len(times)]:
            mark = marks[len(times)]
            frac = (mark - prev_c) / (c - prev_c) if c > prev_c else 1.0
            times.append(prev_t + frac * (t - prev_t))
        prev_t, prev_c = t, c
    return [round(b - a, 3) for a, b in zip([0.0, *times], times, strict=False)]


def tenth_cpu(samples: Sequence[tuple[int, float]], expected: int, parts: int = 10) -> list[float]:
    """CPU seconds per 10,000 placements in each successive ``1/parts`` of ``expected``, from
    ``(placements committed, CPU seconds)`` samples read at the same poll, in time order, the
    first taken at the start. A part runs from the first sample at or past its start mark to
    the first at or past its end mark (CPU and count are read together: no interpolation); a
    part within one poll takes that poll's rate. The parts not reached are left out."""
    if expected <= 0 or parts <= 0:
        return []
    firsts: list[int] = []  # per mark 0..parts, the index of the first sample at or past it
    for i, (c, _) in enumerate(samples):
        while len(firsts) <= parts and c >= expected * len(firsts) / parts:
            firsts.append(i)
    out = []
    for i, j in itertools.pairwise(firsts):
        i = min(i, max(0, j - 1))  # both marks passed at one poll: the rate from the poll before
        (c0, cpu0), (c1, cpu1) = samples[i], samples[j]
        out.append(round((cpu1 - cpu0) * 10_000 / (c1 - c0), 3) if c1 > c0 else 0.0)
    return out


def tenth_ratio(durations: Sequence[float], parts: int = 10) -> float | None:
    """The rate of the last part over the rate of the first (None unless all were reached)."""
    if len(durations) < parts or durations[-1] <= 0:
        return None
    return round(durations[0] / durations[-1], 3)


def goals(report: dict[str, Any]) -> dict[str, bool]:
    """Each goal of the C1M acceptance: met or not (not measured counts as not met)."""
    run = report.get("run", {})
    expected = int(run.get("expected") or 0)
    all_placed = expected > 0 and int(run.get("placed", 0)) >= expected
    ratio = run.get("last_first_ratio")
    run_probes = report.get("leader_probes", {}).get("run", {}).values()
    rss = [r["peak"] for by in report.get("rss_mb", {}).values() for r in by.values()]
    alone = report.get("scheduler_alone", {})
    out = {
        "all_placed": all_placed,
        "placements_per_s": all_placed and float(run.get("elapsed_s", 0)) <= expected / GOAL_PER_S,
        "last_first_tenth": ratio is not None and ratio >= RATIO_GOAL,
        "no_failed_register": all_placed and run.get("failed_registers", {}).get("count", 1) == 0,
        "no_leader_change": all_placed
        and not any(c["window"] == "run" for c in report.get("leader_changes", [])),
        "leader_answers_within_1s": bool(run_probes)
        and all(p["slow"] == 0 and p["failed"] == 0 and p["no_leader"] == 0 for p in run_probes),
        "rss_per_server": bool(rss) and max(rss) <= RSS_GOAL_MB,
    }
    if not report.get("skipped_alone"):
        out["scheduler_alone_ratio"] = float(alone.get("ratio", 0)) >= RATIO_GOAL
    every = () if report.get("skipped_ops") else ("snapshot_save", "catch_up", "restart", "snapshot_restore")
    for op in report.get("ops_run", every):
        rec = report.get("ops", {}).get(op, {})
        out[op] = "s" in rec and "error" not in rec and float(rec["s"]) <= OPS_GOAL_S
    return out


def _ok(met: bool) -> str:
    return "ok" if met else "NOT MET"


def print_report(r: dict[str, Any]) -> None:
    g = r["goals"]
    run = r["run"]
    print(
        f"schedule --c1m: 3 servers, {r['nodes']} simulated nodes, {r['jobs']} jobs x {r['count']}, "
        f"{r['cpus']} CPUs, load average {r['load_average']}"
        + (" (INTERRUPTED)" if r.get("interrupted") else "")
    )
    a = r.get("scheduler_alone")
    if a:
        print(
            f"  scheduler alone ({a['jobs']} jobs x {a['count']}, best of rounds): {a['small_nodes']} nodes "
            f"{a['small_per_s']:,.0f}/s, {a['large_nodes']} nodes {a['large_per_s']:,.0f}/s "
            f"(per CPU s {a['small_per_cpu_s']:,.0f}, {a['large_per_cpu_s']:,.0f}: ratio {a['cpu_ratio']:.2f}): "
            f"ratio {a['ratio']:.2f} "
            f"(goal >= {RATIO_GOAL}) {_ok(g.get('scheduler_alone_ratio', False))}"
        )
    if "nodes_register_s" in run:
        print(
            f"  nodes registered in {run['nodes_register_s']} s ({run['failed_node_registers']['count']} failed, "
            f"{run.get('retried_node_registers', {}).get('count', 0)} tried again)"
        )
        retried = run.get("retried_node_registers", {"count": 0, "first": []})
        for e in run["failed_node_registers"]["first"] or retried["first"]:
            print(f"    {e}")
    if "expected" in run:
        goal_s = run["expected"] / GOAL_PER_S
        print(
            f"  placements: {run['placed']}/{run['expected']} committed in {run['elapsed_s']} s = "
            f"{run.get('placements_per_s', 0):,.0f}/s (goal >= {GOAL_PER_S:,.0f}/s: <= {goal_s:.1f} s) "
            f"{_ok(g['placements_per_s'])}"
            + (" NOT FINISHED" if run.get("timed_out") else "")
            + (f" (ended: {run['ended']})" if run.get("ended") else "")
        )
        print(f"  per tenth, s: {' '.join(f'{d:.1f}' for d in run.get('tenths_s', [])) or '-'}")
        for who, per in run.get("tenths_cpu_per_10k", {}).items():
            print(
                f"  per tenth, {who} CPU s per 10,000 placements: {' '.join(f'{x:.2f}' for x in per) or '-'}"
            )
        print(
            f"  per tenth, placements/s: {' '.join(f'{x:,.0f}' for x in run.get('tenths_per_s', [])) or '-'}"
        )
        ratio = run.get("last_first_ratio")
        print(
            f"  last tenth / first tenth: {'-' if ratio is None else f'{ratio:.2f}'} "
            f"(goal >= {RATIO_GOAL}) {_ok(g['last_first_tenth'])}"
        )
        fr = run["failed_registers"]
        print(f"  failed registers: {fr['count']} (goal 0) {_ok(g['no_failed_register'])}")
        for e in fr["first"]:
            print(f"    {e}")
        print(
            f"  registers took {run.get('submit_s', '-')} s; {run.get('raft_entries', '-')} Raft entries; "
            f"CPU s per server {run.get('cpu_s', '-')} (leader {r.get('leader', '-')}); followers applied the leader's index "
            f"{run.get('followers_applied_s', '-')} s later; gauge poll errors {run.get('gauge_poll_errors', 0)}"
        )
        print(
            f"  load generator CPU s {run.get('loadgen_cpu_s', '-')}; the machine's CPUs busy "
            f"{run.get('machine_busy', 0) * 100:.0f} % of the run (stolen {run.get('machine_steal', 0) * 100:.1f} %)"
        )
    if run.get("error"):
        print(f"  run stopped: {run['error']}")
    print(
        "  /v1/status/leader each second on every server (samples, slowest s, over 1 s, failed, no leader):"
    )
    for window, by in r.get("leader_probes", {}).items():
        per = "; ".join(
            f"{n} {p['samples']}, {p['max_s']:.2f}, {p['slow']}, {p['failed']}, {p['no_leader']}"
            for n, p in sorted(by.items())
        )
        print(f"    {window}: {per}")
    print(
        f"  every server answered within {ANSWER_GOAL_S:.0f} s during the run: {_ok(g['leader_answers_within_1s'])}"
    )
    changes = r.get("leader_changes", [])
    in_run = [ch for ch in changes if ch["window"] == "run"]
    print(
        f"  leader changes seen during the run: {len(in_run) or 'none'} (goal none) {_ok(g['no_leader_change'])}"
    )
    for ch in in_run:
        print(f"    at {ch['at']} s {ch['server']}: {ch['from']} -> {ch['to']}")
    later: dict[str, int] = {}
    for ch in changes:
        if ch["window"] != "run":
            later[ch["window"]] = later.get(ch["window"], 0) + 1
    if later:
        print(f"  leader changes the servers reported after the run, by step: {later}")
    print("  RSS MB per server (peak/last; its child processes' peak, e.g. a forked Raft dump):")
    for window, by in r.get("rss_mb", {}).items():
        per = ", ".join(
            f"{n} {x['peak']:,.0f}/{x['last']:,.0f}; {x.get('children_peak', 0):,.0f}"
            for n, x in sorted(by.items())
        )
        print(f"    {window}: {per}")
    print(f"  RSS per server <= {RSS_GOAL_MB:,.0f} MB: {_ok(g['rss_per_server'])}")
    for key, label in (
        ("save_state", "state saved (servers stopped, copied, started)"),
        ("cluster_restart", "whole cluster restarted from the saved state"),
    ):
        if key in r:
            print(f"  {label}: " + ", ".join(f"{k} {v}" for k, v in r[key].items()))
    ops = r.get("ops", {})
    labels = {  # in the order they run
        "snapshot_save": "snapshot save (operator snapshot save on the leader)",
        "catch_up": "follower catch-up (journal and dump wiped, until it has the leader's index)",
        "restart": "server restart from its data dir (until its applied index is back)",
        "snapshot_restore": "snapshot restore (operator snapshot restore, same cluster)",
    }
    for op, label in labels.items():
        rec = ops.get(op)
        if rec is None:
            if op in r.get("ops_run", () if r.get("skipped_ops") else labels):
                print(f"  {label}: not run")
            continue
        extra = ", ".join(f"{k} {v}" for k, v in rec.items() if k not in ("s", "error"))
        took = f"{rec['s']} s" if "s" in rec else "-"
        err = f" ERROR {rec['error']}" if "error" in rec else ""
        print(f"  {label}: {took} (goal <= {OPS_GOAL_S:.0f} s) {_ok(g.get(op, False))}{err}; {extra}")
    print(f"  load generator peak RSS {r['loadgen_peak_rss_mb']:,.0f} MB")
    missed = [k for k, v in g.items() if not v]
    print(
        f"  goals met: {len(g) - len(missed)} of {len(g)}"
        + (f"; not met: {', '.join(missed)}" if missed else "")
    )
