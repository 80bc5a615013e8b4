"""Agent fingerprint: ``nomad.version`` and ``nomad.revision`` (``unknown`` when not built in)."""

from __future__ import annotations

from typing import ClassVar

from nomadd.client.fingerprint.base import FingerprintRequest, FingerprintResponse, register


@register
class NomadFingerprint:
    name: ClassVar[str] = "nomad"
    periodic: ClassVar[float | None] = None

    async def fingerprint(self, req: FingerprintRequest) -> FingerprintResponse:
        return FingerprintResponse(
            attributes={
                "nomad.version": req.config.version,
                "nomad.revision": req.config.revision or "unknown",
            }
        )
