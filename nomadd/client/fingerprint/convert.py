"""NodeFingerprint → the fields of :class:`nomadd.structs.node.Node`.

Nomad's ``Node.NodeResources`` holds the node's **totals** and ``Node.ReservedResources`` the
reservation; the scheduler subtracts one from the other, so the fingerprint's ``total`` and
``reserved`` go to the node as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nomadd.client.fingerprint.base import NodeFingerprint


def node_fields(fp: NodeFingerprint) -> Mapping[str, Any]:
    """Keyword arguments for ``dataclasses.replace(node, **node_fields(fp))`` or ``Node(...)``:
    attributes, node_resources, reserved_resources, drivers."""
    return {
        "attributes": dict(fp.attributes),
        "node_resources": fp.total,
        "reserved_resources": fp.reserved,
        "drivers": dict(fp.drivers),
    }
