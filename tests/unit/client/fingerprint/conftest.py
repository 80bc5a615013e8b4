from __future__ import annotations

import psutil
import pytest

from nomadd.client.fingerprint import cpu, host, memory, network, storage


@pytest.fixture
def bare_host(monkeypatch: pytest.MonkeyPatch, tmp_path):  # type: ignore[no-untyped-def]
    """A host where psutil answers None/0/raises, /proc files are missing and pyroute2 fails."""
    missing = str(tmp_path / "missing")

    def boom(*_a: object, **_k: object) -> object:
        raise OSError("no netlink here")

    monkeypatch.setattr(psutil, "cpu_freq", lambda *a, **k: None)
    monkeypatch.setattr(psutil, "cpu_count", lambda *a, **k: None)
    monkeypatch.setattr(psutil, "net_if_addrs", boom)
    monkeypatch.setattr(psutil, "net_if_stats", boom)
    monkeypatch.setattr(psutil, "virtual_memory", boom)
    monkeypatch.setattr(cpu, "CPUINFO_PATH", missing)
    monkeypatch.setattr(memory, "MEMINFO_PATH", missing)
    monkeypatch.setattr(host, "OS_RELEASE_PATHS", (missing,))
    monkeypatch.setattr(network, "PROC_NET_ROUTE", missing)
    monkeypatch.setattr(network, "pyroute2_route", boom)
    monkeypatch.setattr(storage, "MOUNTS_PATH", missing)
    return tmp_path
