"""Static entries: ``host[:port]`` through the loop's getaddrinfo (A and AAAA, every address)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from nomadd.discovery.entry import DiscoveryError, StaticEntry, join_host_port

__all__ = ["resolve_static"]


async def resolve_static(entry: StaticEntry) -> list[str]:
    """Every address of ``entry.host`` as ``host:port`` in resolver order, without duplicates.

    An IP literal is returned as is, without a lookup. Raises DiscoveryError when the name does
    not resolve. The caller bounds the time (getaddrinfo runs in the loop's executor).
    """
    try:
        ipaddress.ip_address(entry.host)
    except ValueError:
        pass
    else:
        return [join_host_port(entry.host, entry.port)]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(
            entry.host, entry.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (socket.gaierror, UnicodeError) as err:
        raise DiscoveryError(f"lookup of {entry.host} failed: {err}") from err
    out: list[str] = []
    for family, _type, _proto, _canon, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        host = str(sockaddr[0]).split("%", 1)[0]  # drop an IPv6 zone id
        hostport = join_host_port(host, entry.port)
        if hostport not in out:
            out.append(hostport)
    if not out:
        raise DiscoveryError(f"lookup of {entry.host} returned no IPv4/IPv6 address")
    return out
