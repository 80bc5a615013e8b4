from __future__ import annotations

import asyncio
import os

import pytest

from nomadd.client.fingerprint import storage
from nomadd.client.fingerprint.base import FingerprintConfig, FingerprintRequest, FingerprintResponse

MOUNTS = """/dev/vda / ext4 rw 0 0
proc /proc proc rw 0 0
/dev/vdb /var/lib/nomad ext4 rw 0 0
/dev/vdc /var/lib/nomadx ext4 rw 0 0
"""


def run(cfg: FingerprintConfig) -> FingerprintResponse:
    return asyncio.run(storage.StorageFingerprint().fingerprint(FingerprintRequest(config=cfg)))


def test_mount_device_longest_prefix() -> None:
    assert storage.mount_device("/var/lib/nomad/alloc", MOUNTS) == "/dev/vdb"
    assert storage.mount_device("/var/lib/nomad", MOUNTS) == "/dev/vdb"
    assert storage.mount_device("/var/lib", MOUNTS) == "/dev/vda"
    assert storage.mount_device("/x", None) == ""


def test_missing_alloc_dir_measures_parent(tmp_path: object) -> None:
    resp = run(FingerprintConfig(alloc_dir=os.path.join(str(tmp_path), "a", "b", "alloc")))
    st = os.statvfs(str(tmp_path))
    assert resp.attributes["unique.storage.bytestotal"] == str(st.f_blocks * st.f_frsize)
    assert resp.disk_mb is not None
    assert resp.disk_mb > 0
    assert resp.attributes["unique.storage.volume"]


def test_statvfs_failure_degrades(bare_host: object, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(_p: str) -> os.statvfs_result:
        raise OSError("EIO")

    monkeypatch.setattr(os, "statvfs", fail)
    resp = run(FingerprintConfig(alloc_dir=str(bare_host)))
    assert resp.disk_mb == 0
    assert "unique.storage.bytestotal" not in resp.attributes


def test_disk_override(tmp_path: object) -> None:
    assert run(FingerprintConfig(alloc_dir=str(tmp_path), disk_total_mb=1234)).disk_mb == 1234
