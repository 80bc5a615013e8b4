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
)
from nomadd.client.fingerprint.node import (
    fingerprint_drivers,
    fingerprint_node,
    min_period_s,
    refingerprint_node,
)

__all__ = [
    "REGISTRY",
    "VOLATILE_ATTRIBUTES",
    "FingerprintConfig",
    "FingerprintRequest",
    "FingerprintResponse",
    "Fingerprinter",
    "NodeFingerprint",
    "fingerprint_drivers",
    "fingerprint_node",
    "min_period_s",
    "refingerprint_node",
]
