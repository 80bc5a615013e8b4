"""Node fingerprinting (see :mod:`nomadd.client.fingerprint.base` and :mod:`.node`)."""

from __future__ import annotations

from nomadd.client.fingerprint.base import (
    REGISTRY,
    VOLATILE_ATTRIBUTES,
    FingerprintConfig,
    Fingerprinter,
    FingerprintRequest,
    FingerprintResponse,
    NodeFingerprint,
    NodeResources,
)
from nomadd.client.fingerprint.node import (
    fingerprint_drivers,
    fingerprint_node,
    min_period_s,
    refingerprint_node,
)
from nomadd.drivers.base import DriverInfo

__all__ = [
    "REGISTRY",
    "VOLATILE_ATTRIBUTES",
    "DriverInfo",
    "FingerprintConfig",
    "FingerprintRequest",
    "FingerprintResponse",
    "Fingerprinter",
    "NodeFingerprint",
    "NodeResources",
    "fingerprint_drivers",
    "fingerprint_node",
    "min_period_s",
    "refingerprint_node",
]
