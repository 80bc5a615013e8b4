"""scripts/bench_c1m_report.py: the per-tenth figures of ``scripts/bench schedule --c1m`` from
the leader's gauge samples, and the goals read from a report."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "scripts"))

from bench_c1m_report import goals, tenth_cpu, tenth_durations, tenth_ratio


def test_steady_rate_gives_equal_tenths() -> None:
    samples = [(float(t), t * 100) for t in range(1, 11)]  # 100 per second, polled each second
    assert tenth_durations(samples, 1000) == [1.0] * 10
    assert tenth_ratio(tenth_durations(samples, 1000)) == 1.0


def test_boundaries_are_interpolated_between_polls() -> None:
    # 0 -> 300 in the first 3 s (the 100 and 200 marks fall inside), then 300 -> 1000 in 1 s
    samples = [(3.0, 300), (4.0, 1000)]
    durations = tenth_durations(samples, 1000)
    assert durations[:3] == [1.0, 1.0, 1.0]
    assert durations[3:] == pytest.approx([1 / 7] * 7, abs=1e-3)
    assert tenth_ratio(durations) == pytest.approx(7.0, rel=1e-2)  # the last tenth 7x as fast


def test_a_slowing_run_has_a_ratio_below_one() -> None:
    samples = [(1.0, 500), (11.0, 1000)]  # the second half ten times slower
    durations = tenth_durations(samples, 1000)
    assert durations[0] == pytest.approx(0.2)
    assert durations[-1] == pytest.approx(2.0)
    assert tenth_ratio(durations) == pytest.approx(0.1)


def test_parts_not_reached_are_left_out_and_give_no_ratio() -> None:
    samples = [(1.0, 250), (2.0, 250), (3.0, 450)]
    durations = tenth_durations(samples, 1000)
    assert len(durations) == 4
    assert tenth_ratio(durations) is None
    assert tenth_durations([], 1000) == []
    assert tenth_durations(samples, 0) == []


def test_a_flat_stretch_keeps_the_time_it_took() -> None:
    # the count stays at 100 from 1 s to 5 s: the second tenth ends at 6 s
    samples = [(1.0, 100), (5.0, 100), (6.0, 200), (7.0, 1000)]
    durations = tenth_durations(samples, 1000)
    assert durations[:2] == [1.0, 5.0]
    assert sum(durations) == pytest.approx(7.0)


def _report(**run: object) -> dict[str, object]:
    base: dict[str, object] = {
        "expected": 1000,
        "placed": 1000,
        "elapsed_s": 0.2,
        "last_first_ratio": 0.9,
        "failed_registers": {"count": 0, "first": []},
    }
    base.update(run)
    probe = {"samples": 3, "slow": 0, "failed": 0, "no_leader": 0, "max_s": 0.1}
    ops = {op: {"s": 1.0} for op in ("snapshot_save", "snapshot_restore", "catch_up", "restart")}
    return {
        "run": base,
        "leader_probes": {"run": {"server1": probe}},
        "leader_changes": [],
        "rss_mb": {"run": {"server1": {"peak": 100.0, "last": 90.0}}},
        "scheduler_alone": {"ratio": 0.9},
        "ops": ops,
    }


def test_goals_all_met_and_each_one_missed() -> None:
    assert all(goals(_report()).values())
    assert not goals(_report(placed=999))["all_placed"]
    assert not goals(_report(elapsed_s=0.3))["placements_per_s"]  # 1000 / 3750 = 0.27 s
    assert not goals(_report(last_first_ratio=0.7))["last_first_tenth"]
    assert not goals(_report(failed_registers={"count": 1, "first": ["x"]}))["no_failed_register"]
    changed = _report()
    changed["leader_changes"] = [{"at": 1.0, "window": "run", "server": "s", "from": "a", "to": "b"}]
    assert not goals(changed)["no_leader_change"]
    slow = _report()
    slow["leader_probes"] = {
        "run": {"s": {"samples": 3, "slow": 1, "failed": 0, "no_leader": 0, "max_s": 1.2}}
    }
    assert not goals(slow)["leader_answers_within_1s"]
    big = _report()
    big["rss_mb"] = {"after": {"s": {"peak": 2100.0, "last": 2000.0}}}
    assert not goals(big)["rss_per_server"]
    failed_op = _report()
    failed_op["ops"] = {"snapshot_save": {"error": "boom"}}
    assert not goals(failed_op)["snapshot_save"]
    assert not goals(failed_op)["restart"]  # not run: not met


def test_cpu_per_tenth_per_10k_placements() -> None:
    # (placements, CPU s) per poll: 0.5 s per 1,000 in the first half, 1 s per 1,000 after;
    # the polls fall on no mark but the first and last
    samples = [(0, 0.0), (1000, 0.5), (2500, 1.25), (4000, 2.0), (5000, 2.5), (7000, 4.5), (10000, 7.5)]
    per = tenth_cpu(samples, 10000)
    assert len(per) == 10
    # a part spans from the first poll at or past its start to the first at or past its end
    assert per[0] == pytest.approx(5.0)  # 0 -> 1000: 0.5 s per 1,000 = 5 s per 10,000
    assert per[4] == pytest.approx(5.0)  # 4000 -> 5000
    assert per[5] == pytest.approx(10.0)  # 5000 -> 7000
    assert per[9] == pytest.approx(10.0)  # 7000 -> 10000: 3 s per 3,000
    assert tenth_cpu(samples[:4], 10000) == per[:4]  # parts not reached are left out
    assert tenth_cpu([], 10000) == []
    # several marks passed at one poll: each part takes that poll's rate
    assert tenth_cpu([(0, 0.0), (10000, 4.0)], 10000) == [4.0] * 10


def test_goals_left_out_when_their_part_is_skipped() -> None:
    r = _report()
    r["ops"] = {}
    del r["scheduler_alone"]
    r["skipped_ops"] = r["skipped_alone"] = True
    g = goals(r)
    assert all(g.values())
    assert "snapshot_save" not in g and "scheduler_alone_ratio" not in g
