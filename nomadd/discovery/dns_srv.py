"""SRV lookups with dnspython's asyncio resolver (docs/contributing/dependencies.md §dnspython).

``dns+srv://NAME``: one SRV query, records taken in RFC 2782 order (ascending priority,
weighted-random within a priority: ``Rdataset.processing_order``), then the A/AAAA addresses of
each target, from the ADDITIONAL section when the server sent them (dnsmasq and Consul do), else
with one A and one AAAA query per target in parallel. Ports come from the records.

Every failure becomes a :class:`DiscoveryError` whose message says which name failed and why.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Final

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver
import dns.rrset
from dns.rdtypes.IN.SRV import SRV

from nomadd.discovery.entry import DiscoveryError, SrvEntry, join_host_port

__all__ = ["make_dns_resolver", "resolve_srv"]

logger = logging.getLogger(__name__)

_ADDRESS_TYPES: Final = (dns.rdatatype.A, dns.rdatatype.AAAA)


def make_dns_resolver(
    servers: Sequence[tuple[str, int]], *, timeout: float, lifetime: float
) -> dns.asyncresolver.Resolver:
    """A dnspython resolver using ``servers`` (IP, port); empty means /etc/resolv.conf.

    Reading resolv.conf is a small blocking file read: call this through asyncio.to_thread when
    ``servers`` is empty. Raises DiscoveryError when the system has no resolver configured.
    """
    if servers:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(ip, port) for ip, port in servers]
    else:
        try:
            resolver = dns.asyncresolver.Resolver(configure=True)
        except dns.resolver.NoResolverConfiguration as err:
            raise DiscoveryError(
                f"no system dns resolver configured ({err}); set discovery.dns_resolvers or ?resolver=IP:PORT"
            ) from err
    resolver.timeout = timeout
    resolver.lifetime = lifetime
    resolver.cache = None  # re-resolve on every attempt so changed records are followed at once
    return resolver


async def resolve_srv(entry: SrvEntry, resolver: dns.asyncresolver.Resolver) -> list[str]:
    """Ordered ``host:port`` strings for an SRV entry. Raises DiscoveryError."""
    name = entry.name
    try:
        answer = await resolver.resolve(name, dns.rdatatype.SRV)
    except dns.exception.DNSException as err:
        raise DiscoveryError(_describe(err, name, "SRV", resolver)) from err
    if answer.rrset is None:  # pragma: no cover - raise_on_no_answer=True makes this NoAnswer
        raise DiscoveryError(f"srv lookup of {name} returned no records")
    records = [rd for rd in answer.rrset.processing_order() if isinstance(rd, SRV)]
    if len(records) == 1 and records[0].target == dns.name.root:
        # RFC 2782: a single record with target "." says the service is decidedly not available.
        raise DiscoveryError(f"srv lookup of {name}: the service is declared unavailable (target .)")
    glue = _additional_addresses(answer.response.additional)
    missing = [rd.target for rd in records if rd.target not in glue]
    looked_up = await asyncio.gather(*(_lookup_addresses(t, resolver) for t in missing))
    addresses = dict(glue)
    addresses.update(zip(missing, looked_up, strict=True))
    out: list[str] = []
    empty: list[str] = []
    for rd in records:
        found = addresses.get(rd.target, [])
        if not found:
            empty.append(rd.target.to_text())
        for address in found:
            hostport = join_host_port(address, rd.port)
            if hostport not in out:
                out.append(hostport)
    if empty:
        logger.warning("srv targets without addresses name=%s targets=%s", name, ",".join(empty))
    if not out:
        raise DiscoveryError(
            f"srv lookup of {name}: no target has an A/AAAA address (targets: {', '.join(empty)})"
        )
    return out


def _additional_addresses(section: Sequence[dns.rrset.RRset]) -> dict[dns.name.Name, list[str]]:
    found: dict[dns.name.Name, list[str]] = {}
    for rdtype in _ADDRESS_TYPES:  # IPv4 first, as when we look the addresses up ourselves
        for rrset in section:
            if rrset.rdtype == rdtype:
                found.setdefault(rrset.name, []).extend(rd.address for rd in rrset)
    return found


async def _lookup_addresses(target: dns.name.Name, resolver: dns.asyncresolver.Resolver) -> list[str]:
    """A then AAAA addresses of one SRV target; [] when it has none (the caller warns)."""
    results = await asyncio.gather(*(_lookup(target, rdtype, resolver) for rdtype in _ADDRESS_TYPES))
    return [address for part in results for address in part]


async def _lookup(
    target: dns.name.Name, rdtype: dns.rdatatype.RdataType, resolver: dns.asyncresolver.Resolver
) -> list[str]:
    try:
        answer = await resolver.resolve(target, rdtype)
    except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
        return []
    except dns.exception.DNSException as err:
        # SERVFAIL/REFUSED/timeout for one type of one target: keep what the others give.
        logger.warning(
            "srv target lookup failed target=%s type=%s error=%s",
            target.to_text(),
            dns.rdatatype.to_text(rdtype),
            _describe(err, target.to_text(), dns.rdatatype.to_text(rdtype), resolver),
        )
        return []
    return [rd.address for rd in answer]


def _describe(
    err: dns.exception.DNSException, name: str, rdtype: str, resolver: dns.asyncresolver.Resolver
) -> str:
    servers = ", ".join(_server_text(ns) for ns in resolver.nameservers) or "none"
    if isinstance(err, dns.resolver.NXDOMAIN):
        return f"{rdtype} lookup of {name}: no such name (NXDOMAIN) from {servers}"
    if isinstance(err, dns.resolver.NoAnswer):
        return f"{rdtype} lookup of {name}: the name has no {rdtype} records"
    if isinstance(err, dns.resolver.NoNameservers):
        return f"{rdtype} lookup of {name}: dns servers failed (SERVFAIL/REFUSED): {err}"
    if isinstance(err, dns.exception.Timeout):
        return f"{rdtype} lookup of {name}: no answer from {servers} within {resolver.lifetime:g}s"
    return f"{rdtype} lookup of {name} failed: {err}"


def _server_text(ns: str | dns.nameserver.Nameserver) -> str:
    if isinstance(ns, dns.nameserver.Do53Nameserver):
        return join_host_port(ns.address, ns.port)
    return str(ns)
