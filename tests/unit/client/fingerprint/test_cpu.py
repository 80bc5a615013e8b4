from __future__ import annotations

import asyncio
import logging
import os
from collections import namedtuple

import psutil
import pytest

from nomadd.client.fingerprint import cpu
from nomadd.client.fingerprint.base import FingerprintConfig, FingerprintRequest

Freq = namedtuple("Freq", "current min max")

CPUINFO = """processor\t: 0
model name\t: AMD EPYC 7B13
cpu MHz\t\t: 2450.000
processor\t: 1
model name\t: AMD EPYC 7B13
cpu MHz\t\t: 2600.500
"""


def run(cfg: FingerprintConfig) -> dict[str, str]:
    resp = asyncio.run(cpu.CPUFingerprint().fingerprint(FingerprintRequest(config=cfg)))
    assert resp.cpu_mhz == int(resp.attributes["cpu.totalcompute"])
    assert resp.cores == int(resp.attributes["cpu.numcores"])
    return dict(resp.attributes)


def test_go_arch_names() -> None:
    assert cpu.go_arch("x86_64") == "amd64"
    assert cpu.go_arch("aarch64") == "arm64"
    assert cpu.go_arch("mips") == "mips"


def test_no_frequency_anywhere_uses_fallback_and_warns(
    bare_host: object, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1, 2})
    with caplog.at_level(logging.WARNING):
        attrs = run(FingerprintConfig())
    assert attrs["cpu.frequency"] == str(cpu.FALLBACK_CPU_MHZ)
    assert attrs["cpu.numcores"] == "3"
    assert attrs["cpu.totalcompute"] == str(3 * cpu.FALLBACK_CPU_MHZ)
    assert "cpu.modelname" not in attrs
    assert "cpu frequency unknown" in caplog.text


def test_zero_psutil_frequency_falls_back_to_cpuinfo(
    bare_host: object, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    info = bare_host / "cpuinfo"  # type: ignore[operator]
    info.write_text(CPUINFO)
    monkeypatch.setattr(cpu, "CPUINFO_PATH", str(info))
    monkeypatch.setattr(psutil, "cpu_freq", lambda *a, **k: Freq(0.0, 0.0, 0.0))
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1})
    attrs = run(FingerprintConfig())
    assert attrs["cpu.frequency"] == "2600"
    assert attrs["cpu.totalcompute"] == "5200"
    assert attrs["cpu.modelname"] == "AMD EPYC 7B13"


def test_psutil_max_used_when_current_is_zero(bare_host: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(psutil, "cpu_freq", lambda *a, **k: Freq(0.0, 800.0, 3000.0))
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0})
    assert run(FingerprintConfig())["cpu.frequency"] == "3000"


def test_total_compute_override(bare_host: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1, 2, 3})
    attrs = run(FingerprintConfig(cpu_total_compute=8000))
    assert attrs["cpu.totalcompute"] == "8000"
    assert attrs["cpu.frequency"] == "2000"  # derived, no fallback


def test_affinity_failure_falls_back_to_one_core(bare_host: object, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(_pid: int) -> set[int]:
        raise OSError("nope")

    monkeypatch.setattr(os, "sched_getaffinity", fail)
    assert run(FingerprintConfig())["cpu.numcores"] == "1"


def test_real_host() -> None:
    attrs = run(FingerprintConfig())
    assert int(attrs["cpu.numcores"]) >= 1
    assert int(attrs["cpu.frequency"]) > 0
    assert attrs["cpu.arch"]
