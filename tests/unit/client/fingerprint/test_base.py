from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import ClassVar

import pytest

from nomadd.client import fingerprint as fp_pkg
from nomadd.client.fingerprint import node as fp_node
from nomadd.client.fingerprint.base import (
    REGISTRY,
    FingerprintConfig,
    FingerprintRequest,
    FingerprintResponse,
    NodeFingerprint,
)
from nomadd.client.fingerprint.node import fingerprint_node, refingerprint_node
from nomadd.structs.node import (
    DriverInfo,
    NodeCpuResources,
    NodeMemoryResources,
    NodeReservedCpuResources,
    NodeReservedResources,
    NodeResources,
)

REQUIRED = {
    "cpu.arch",
    "cpu.numcores",
    "cpu.frequency",
    "cpu.totalcompute",
    "cpu.usablecompute",
    "memory.totalbytes",
    "kernel.name",
    "kernel.version",
    "kernel.arch",
    "os.name",
    "unique.hostname",
    "unique.network.ip-address",
    "unique.storage.bytestotal",
    "nomad.version",
    "nomad.revision",
}


def test_exports() -> None:
    for name in fp_pkg.__all__:
        assert hasattr(fp_pkg, name), name
    assert {"cpu", "memory", "host", "network", "storage", "nomad"} <= set(REGISTRY)


def test_real_node_is_complete_and_fast(tmp_path: object) -> None:
    cfg = FingerprintConfig(alloc_dir=str(tmp_path), reserved_cpu_mhz=100, reserved_memory_mb=64)
    asyncio.run(fingerprint_node(cfg))  # warm imports (psutil) as the agent would at start-up
    start = time.perf_counter()
    node = asyncio.run(fingerprint_node(cfg))
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"fingerprint took {elapsed:.3f}s"  # ~25 ms here; margin for CI load
    assert set(node.attributes) >= REQUIRED, REQUIRED - set(node.attributes)
    assert node.attributes["kernel.name"] == "linux"
    assert node.total.cpu.cpu_shares == int(node.attributes["cpu.totalcompute"])
    assert node.attributes["cpu.usablecompute"] == str(node.total.cpu.cpu_shares - 100)
    assert node.reserved == NodeReservedResources(
        cpu=NodeReservedCpuResources(cpu_shares=100), memory=NodeMemoryResources(memory_mb=64)
    )
    assert node.total.memory.memory_mb > 64 and node.total.disk.disk_mb > 0
    assert set(node.drivers) == {"raw_exec", "exec"}


def test_raw_exec_attribute_only_when_enabled(tmp_path: object) -> None:
    off = asyncio.run(fingerprint_node(FingerprintConfig(alloc_dir=str(tmp_path))))
    assert "driver.raw_exec" not in off.attributes
    assert off.drivers["raw_exec"].detected is False
    assert off.drivers["raw_exec"].health_description == "disabled"
    on = asyncio.run(fingerprint_node(FingerprintConfig(alloc_dir=str(tmp_path), raw_exec_enabled=True)))
    assert on.attributes["driver.raw_exec"] == "true"
    assert on.drivers["raw_exec"].healthy is True
    assert on != off


def test_bare_host_never_crashes(bare_host: object) -> None:
    node = asyncio.run(
        fingerprint_node(FingerprintConfig(alloc_dir=str(bare_host), drivers=("mock", "nope")))
    )
    assert node.attributes["unique.network.ip-address"] == "127.0.0.1"
    assert node.attributes["os.name"] == "linux"
    assert node.total.memory.memory_mb == 0
    assert node.total.cpu.cpu_shares > 0  # fallback frequency
    assert node.drivers["mock"].detected is True
    assert node.drivers["nope"].detected is False


def test_reserved_larger_than_total_clamps_usable_cpu_to_zero(bare_host: object) -> None:
    node = asyncio.run(
        fingerprint_node(
            FingerprintConfig(alloc_dir=str(bare_host), cpu_total_compute=100, reserved_cpu_mhz=500)
        )
    )
    assert node.attributes["cpu.usablecompute"] == "0"


def _node(**attrs: str) -> NodeFingerprint:
    return NodeFingerprint(
        attributes={"cpu.arch": "amd64", **attrs},
        total=NodeResources(cpu=NodeCpuResources(cpu_shares=1000)),
        drivers={"raw_exec": DriverInfo(detected=True, healthy=True, health_description="Healthy")},
    )


def test_equality_ignores_volatile_values() -> None:
    a = _node(**{"unique.storage.bytesfree": "1"})
    b = _node(**{"unique.storage.bytesfree": "2"})
    assert a == b
    c = dataclasses.replace(
        b,
        drivers={
            "raw_exec": DriverInfo(
                detected=True, healthy=True, health_description="Healthy", update_time="1970-01-01T00:01:39Z"
            )
        },
    )
    assert a == c
    assert a != _node(**{"os.version": "12"})
    assert a != dataclasses.replace(a, total=NodeResources(cpu=NodeCpuResources(cpu_shares=999)))
    unhealthy = DriverInfo(detected=True, healthy=False, health_description="broken")
    assert a != dataclasses.replace(a, drivers={"raw_exec": unhealthy})


class _Boom:
    name: ClassVar[str] = "zz_boom"
    periodic: ClassVar[float | None] = None

    async def fingerprint(self, req: FingerprintRequest) -> FingerprintResponse:
        raise RuntimeError("bug")


def test_failing_fingerprinter_is_contained(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(REGISTRY, "zz_boom", _Boom)
    with caplog.at_level(logging.ERROR):
        node = asyncio.run(fingerprint_node(FingerprintConfig(alloc_dir=str(tmp_path))))
    assert "fingerprinter failed name=zz_boom" in caplog.text
    assert "cpu.arch" in node.attributes


class _Counter:
    name: ClassVar[str] = "zz_counter"
    periodic: ClassVar[float | None] = 5.0
    calls = 0

    async def fingerprint(self, req: FingerprintRequest) -> FingerprintResponse:
        type(self).calls += 1
        return FingerprintResponse(attributes={"zz.value": str(type(self).calls)})


def test_refingerprint_reruns_only_periodic(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(REGISTRY, "zz_counter", _Counter)
    cfg = FingerprintConfig(alloc_dir=str(tmp_path))
    first = asyncio.run(fingerprint_node(cfg))
    assert first.attributes["zz.value"] == "1"
    # Non-periodic facts are kept: fake a changed previous value and see it survive.
    prev = dataclasses.replace(first, attributes={**first.attributes, "os.name": "kept"})
    again = asyncio.run(refingerprint_node(cfg, prev))
    assert again.attributes["zz.value"] == "2"
    assert again.attributes["os.name"] == "kept"
    assert again.total == first.total
    assert again != prev
    same = asyncio.run(refingerprint_node(cfg, again))
    assert same.attributes["zz.value"] == "3"
    assert fp_node.min_period_s() == 5.0


def test_exec_can_be_disabled(tmp_path: object) -> None:
    node = asyncio.run(fingerprint_node(FingerprintConfig(alloc_dir=str(tmp_path), exec_enabled=False)))
    assert node.drivers["exec"].detected is False
    assert node.drivers["exec"].health_description == "disabled"
    assert "driver.exec" not in node.attributes
