"""NodeFingerprint → the wire structs of :mod:`nomadd.structs.node`.

Nomad's ``Node.NodeResources`` holds the node's **totals** and ``Node.ReservedResources`` the
reservation; the scheduler subtracts one from the other. So :func:`node_fields` uses
``NodeFingerprint.total`` (not ``.resources``, which is already net of the reservation) for
``node_resources``: using both ``.resources`` and ``reserved_resources`` would subtract twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nomadd.client.fingerprint.base import NodeFingerprint
from nomadd.drivers.base import DriverInfo
from nomadd.structs import node as s
from nomadd.structs.timeutil import format_time


def driver_info(info: DriverInfo) -> s.DriverInfo:
    return s.DriverInfo(
        attributes=dict(info.attributes),
        detected=info.detected,
        healthy=info.healthy,
        health_description=info.health_description,
        update_time=format_time(int(info.update_time * 1e9)) if info.update_time else "",
    )


def node_resources(fp: NodeFingerprint) -> s.NodeResources:
    return s.NodeResources(
        cpu=s.NodeCpuResources(cpu_shares=fp.total.cpu_mhz, total_cpu_cores=fp.total.cores),
        memory=s.NodeMemoryResources(memory_mb=fp.total.memory_mb),
        disk=s.NodeDiskResources(disk_mb=fp.total.disk_mb),
    )


def reserved_resources(fp: NodeFingerprint) -> s.NodeReservedResources:
    return s.NodeReservedResources(
        cpu=s.NodeReservedCpuResources(cpu_shares=fp.reserved.cpu_mhz),
        memory=s.NodeMemoryResources(memory_mb=fp.reserved.memory_mb),
        disk=s.NodeDiskResources(disk_mb=fp.reserved.disk_mb),
    )


def node_fields(fp: NodeFingerprint) -> Mapping[str, Any]:
    """Keyword arguments for ``dataclasses.replace(node, **node_fields(fp))`` or ``Node(...)``:
    attributes, node_resources, reserved_resources, drivers."""
    return {
        "attributes": dict(fp.attributes),
        "node_resources": node_resources(fp),
        "reserved_resources": reserved_resources(fp),
        "drivers": {name: driver_info(i) for name, i in fp.drivers.items()},
    }
