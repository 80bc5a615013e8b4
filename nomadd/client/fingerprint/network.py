"""Network fingerprint: ``unique.network.ip-address`` (and ``network.interface``).

The address is the first IPv4 address of, in order:

1. the configured ``network_interface`` (``psutil.net_if_addrs``);
2. the interface of the IPv4 default route with the lowest metric in ``/proc/net/route``;
3. the kernel's route to :data:`PROBE_DST` asked through pyroute2 (``route get``, which also
   honours policy routing), then pyroute2's default routes. pyroute2 is imported lazily and only
   when 2 found nothing: its import alone costs 110-220 ms, more than the whole fingerprint
   budget (docs/contributing/dependencies.md §pyroute2). Sync ``IPRoute`` cannot run inside a
   running loop, so this step runs in a thread;
4. the first non-loopback IPv4 address of any interface that is up;
5. ``127.0.0.1`` (a loopback-only host).

No step raises: each failure is logged at debug and the next one is tried.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from typing import Any, ClassVar

from nomadd.client.fingerprint.base import (
    FingerprintRequest,
    FingerprintResponse,
    read_text,
    register,
)

logger = logging.getLogger(__name__)

PROC_NET_ROUTE = "/proc/net/route"
PROBE_DST = "8.8.8.8"  # only used for a route lookup; no packet is sent
LOOPBACK_IP = "127.0.0.1"
# Nomad re-runs its network fingerprinter every 15 s (addresses move with DHCP).
NETWORK_PERIOD_S = 15.0


def if_addrs() -> dict[str, list[str]]:
    """IPv4 addresses per interface, psutil's order; {} when psutil fails."""
    try:
        import psutil

        addrs = psutil.net_if_addrs()
    except Exception:
        logger.debug("psutil net_if_addrs failed", exc_info=True)
        return {}
    return {
        name: [a.address for a in entries if a.family == socket.AF_INET and a.address]
        for name, entries in addrs.items()
    }


def if_up() -> dict[str, bool]:
    try:
        import psutil

        return {name: st.isup for name, st in psutil.net_if_stats().items()}
    except Exception:
        logger.debug("psutil net_if_stats failed", exc_info=True)
        return {}


def proc_default_iface(text: str | None) -> str:
    """The interface of the lowest-metric IPv4 default route in /proc/net/route, or ""."""
    best: tuple[int, str] | None = None
    for line in (text or "").splitlines()[1:]:
        parts = line.split()
        if len(parts) < 8:
            continue
        iface, dest, flags_hex, metric, mask = parts[0], parts[1], parts[3], parts[6], parts[7]
        try:
            up = int(flags_hex, 16) & 0x1
            candidate = (int(metric), iface)
        except ValueError:
            continue
        if dest == "00000000" and mask == "00000000" and up and (best is None or candidate < best):
            best = candidate
    return best[1] if best else ""


def pyroute2_route() -> tuple[str, str]:
    """(interface, source address) of the route to PROBE_DST via netlink; raises on failure."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        oif: Any = None
        src: Any = None
        try:
            r = ipr.route("get", dst=PROBE_DST)[0]
            oif, src = r.get_attr("RTA_OIF"), r.get_attr("RTA_PREFSRC")
        except Exception:
            logger.debug("netlink route get failed", exc_info=True)
            defaults = tuple(ipr.get_default_routes(family=socket.AF_INET))
            if defaults:
                oif = defaults[0].get_attr("RTA_OIF")
        if oif is None:
            raise LookupError("no route")
        name = next(iter(ipr.get_links(oif))).get_attr("IFLA_IFNAME")
        if not src:
            addrs = tuple(ipr.get_addr(index=oif, family=socket.AF_INET))
            src = addrs[0].get_attr("IFA_ADDRESS") if addrs else ""
        return str(name), str(src or "")


def _first_non_loopback(addrs: dict[str, list[str]], up: dict[str, bool]) -> tuple[str, str]:
    for name, ips in addrs.items():
        if up and not up.get(name, False):
            continue
        for ip in ips:
            try:
                if not ipaddress.ip_address(ip).is_loopback:
                    return name, ip
            except ValueError:
                continue
    return "", ""


_warned: set[str] = set()


def _warn_once(key: str, msg: str, *args: object) -> None:
    """Warn the first time; the periodic re-fingerprint repeats the same finding at DEBUG."""
    level = logging.DEBUG if key in _warned else logging.WARNING
    _warned.add(key)
    logger.log(level, msg, *args)


async def find_address(network_interface: str) -> tuple[str, str]:
    """(interface, IPv4 address) by the steps of the module doc; never raises."""
    addrs = await asyncio.to_thread(if_addrs)
    if network_interface:
        ips = addrs.get(network_interface, [])
        if ips:
            return network_interface, ips[0]
        _warn_once(
            "iface:" + network_interface,
            "network_interface has no ipv4 address, falling back interface=%s",
            network_interface,
        )
    iface = proc_default_iface(await asyncio.to_thread(read_text, PROC_NET_ROUTE))
    if iface and addrs.get(iface):
        return iface, addrs[iface][0]
    try:
        iface, ip = await asyncio.to_thread(pyroute2_route)
        if ip:
            return iface, ip
    except Exception as err:
        logger.debug("netlink route lookup failed err=%r", err)
    iface, ip = _first_non_loopback(addrs, await asyncio.to_thread(if_up))
    if ip:
        return iface, ip
    _warn_once("loopback", "no non-loopback address found, using loopback ip=%s", LOOPBACK_IP)
    return "lo", LOOPBACK_IP


@register
class NetworkFingerprint:
    name: ClassVar[str] = "network"
    periodic: ClassVar[float | None] = NETWORK_PERIOD_S

    async def fingerprint(self, req: FingerprintRequest) -> FingerprintResponse:
        iface, ip = await find_address(req.config.network_interface)
        logger.debug("network fingerprinted interface=%s ip=%s", iface, ip)
        return FingerprintResponse(attributes={"unique.network.ip-address": ip})
