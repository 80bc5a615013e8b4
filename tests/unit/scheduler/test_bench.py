from __future__ import annotations

from nomadd.scheduler.bench import bench_schedule, main


def test_bench_places_everything_on_a_small_cluster() -> None:
    result = bench_schedule(nodes=20, jobs=10, count=5, seed=1)
    assert result.placements == 50
    assert result.failed_placements == 0
    assert result.placements_per_s > 0
    assert result.placements_per_cpu_s > 0


def test_bench_reports_failures_when_full() -> None:
    # 1 node x 4000 MHz, 100 MHz per alloc: 40 fit out of 60
    result = bench_schedule(nodes=1, jobs=6, count=10)
    assert result.placements == 40
    assert result.failed_placements == 20


def test_main_prints(capsys: object) -> None:
    assert main(["3", "2", "2"]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "4 placements" in out
