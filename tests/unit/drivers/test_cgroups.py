from __future__ import annotations

import os
from pathlib import Path

import pytest

from nomadd.drivers import cgroups


def fake_v1(root: Path) -> None:
    for c in ("memory", "cpu"):
        (root / c).mkdir(parents=True)


def fake_v2(root: Path, controllers: str = "cpuset cpu io memory pids") -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cgroup.controllers").write_text(controllers + "\n")


def test_detect(tmp_path: Path) -> None:
    assert cgroups.detect(str(tmp_path / "none")) == "none"
    fake_v1(tmp_path / "v1")
    assert cgroups.detect(str(tmp_path / "v1")) == "v1"
    fake_v2(tmp_path / "v2")
    assert cgroups.detect(str(tmp_path / "v2")) == "v2"
    # A cgroup2 mount without controllers (hybrid hosts' /sys/fs/cgroup/unified) is useless.
    fake_v2(tmp_path / "empty", "")
    assert cgroups.detect(str(tmp_path / "empty")) == "none"


def test_create_v1_writes_limits(tmp_path: Path) -> None:
    fake_v1(tmp_path)
    plan = cgroups.create("a1.web", cpu_mhz=500, memory_mb=64, root=str(tmp_path))
    assert plan.version == "v1"
    mem, cpu = plan.dirs
    assert Path(mem, "memory.limit_in_bytes").read_text() == str(64 * 1024 * 1024)
    assert Path(cpu, "cpu.shares").read_text() == "500"
    assert plan.procs_files == (os.path.join(mem, "cgroup.procs"), os.path.join(cpu, "cgroup.procs"))


def test_create_v2_writes_limits(tmp_path: Path) -> None:
    fake_v2(tmp_path)
    plan = cgroups.create("a1.web", cpu_mhz=1024, memory_mb=128, root=str(tmp_path))
    assert plan.version == "v2"
    (d,) = plan.dirs
    assert d.endswith("nomad.slice/a1.web.scope")
    assert Path(d, "memory.max").read_text() == str(128 * 1024 * 1024)
    assert Path(d, "cpu.weight").read_text() == str(cgroups.cpu_weight(1024))


@pytest.mark.parametrize(("shares", "weight"), [(2, 1), (1024, 39), (262144, 10000), (0, 1)])
def test_cpu_weight(shares: int, weight: int) -> None:
    assert cgroups.cpu_weight(shares) == weight


def test_create_none(tmp_path: Path) -> None:
    assert cgroups.create("x", 100, 100, root=str(tmp_path)).version == "none"


def test_create_failure_removes_what_it_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_v1(tmp_path)

    def refuse(path: str, value: str) -> None:
        raise PermissionError(13, "refused", path)

    monkeypatch.setattr(cgroups, "_write", refuse)
    with pytest.raises(PermissionError, match="refused"):
        cgroups.create("x", 100, 0, root=str(tmp_path))
    assert not (tmp_path / "memory" / "nomad" / "x").exists()
    assert not (tmp_path / "cpu" / "nomad" / "x").exists()
