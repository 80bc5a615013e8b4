from __future__ import annotations

import asyncio
import logging

import pytest

from nomadd.client.fingerprint import memory
from nomadd.client.fingerprint.base import FingerprintConfig, FingerprintRequest, FingerprintResponse


def run(cfg: FingerprintConfig) -> FingerprintResponse:
    return asyncio.run(memory.MemoryFingerprint().fingerprint(FingerprintRequest(config=cfg)))


def test_psutil_failure_reads_meminfo(bare_host: object, monkeypatch: pytest.MonkeyPatch) -> None:
    info = bare_host / "meminfo"  # type: ignore[operator]
    info.write_text("MemTotal:        2048000 kB\nMemFree: 1 kB\n")
    monkeypatch.setattr(memory, "MEMINFO_PATH", str(info))
    resp = run(FingerprintConfig())
    assert resp.attributes["memory.totalbytes"] == str(2048000 * 1024)
    assert resp.memory_mb == 2000


def test_nothing_known_gives_zero_and_warns(bare_host: object, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        resp = run(FingerprintConfig())
    assert resp.memory_mb == 0
    assert "memory.totalbytes" not in resp.attributes
    assert "memory size unknown" in caplog.text


def test_override(bare_host: object) -> None:
    resp = run(FingerprintConfig(memory_total_mb=512))
    assert resp.memory_mb == 512
    assert resp.attributes["memory.totalbytes"] == str(512 * 1024 * 1024)


def test_real_host() -> None:
    resp = run(FingerprintConfig())
    assert resp.memory_mb
    assert resp.memory_mb > 0
