"""Host fingerprint: ``kernel.name`` (``linux``), ``kernel.version``, ``kernel.arch``,
``os.name`` / ``os.version`` (``ID`` / ``VERSION_ID`` of ``/etc/os-release``, then
``/usr/lib/os-release``; ``os.name`` falls back to ``linux`` and ``os.version`` is left out when
unknown) and ``unique.hostname``."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from typing import ClassVar

from nomadd.client.fingerprint.base import (
    FingerprintRequest,
    FingerprintResponse,
    read_text,
    register,
    uname,
)

logger = logging.getLogger(__name__)

OS_RELEASE_PATHS = ("/etc/os-release", "/usr/lib/os-release")


def parse_os_release(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        out[key.strip()] = value
    return out


def fingerprint_host() -> FingerprintResponse:
    u = uname()
    attrs = {
        "kernel.name": "linux" if sys.platform.startswith("linux") else sys.platform,
        "kernel.version": u.release,
        "kernel.arch": u.machine,
        "unique.hostname": socket.gethostname() or u.nodename,
    }
    release: dict[str, str] = {}
    for path in OS_RELEASE_PATHS:
        text = read_text(path)
        if text is not None:
            release = parse_os_release(text)
            break
    else:
        logger.warning("no os-release file found paths=%s", ",".join(OS_RELEASE_PATHS))
    attrs["os.name"] = release.get("ID") or "linux"
    if release.get("VERSION_ID"):
        attrs["os.version"] = release["VERSION_ID"]
    return FingerprintResponse(attributes=attrs)


@register
class HostFingerprint:
    name: ClassVar[str] = "host"
    periodic: ClassVar[float | None] = None

    async def fingerprint(self, req: FingerprintRequest) -> FingerprintResponse:
        return await asyncio.to_thread(fingerprint_host)
