from __future__ import annotations

import asyncio
from pathlib import Path

from nomadd.client.fingerprint.base import FingerprintConfig
from nomadd.client.fingerprint.convert import node_fields
from nomadd.client.fingerprint.node import fingerprint_node
from nomadd.structs.node import Node


def test_node_gets_totals_and_reservation(tmp_path: Path) -> None:
    fp = asyncio.run(
        fingerprint_node(
            FingerprintConfig(
                alloc_dir=str(tmp_path),
                memory_total_mb=4096,
                reserved_memory_mb=512,
                reserved_cpu_mhz=200,
                raw_exec_enabled=True,
            )
        )
    )
    node = Node(id="n1", **node_fields(fp))
    assert node.node_resources.memory.memory_mb == 4096
    assert node.reserved_resources.memory.memory_mb == 512
    assert node.node_resources.cpu.cpu_shares == int(node.attributes["cpu.totalcompute"])
    assert node.reserved_resources.cpu.cpu_shares == 200
    assert node.attributes["driver.raw_exec"] == "true"
    assert node.drivers["raw_exec"].healthy
    assert node.drivers["raw_exec"].update_time.endswith("Z")
