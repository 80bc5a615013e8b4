"""One resolver for the three kinds of entry, bounded in time.

Example::

    resolver = Resolver(dns_resolvers=["127.0.0.1:5353"], region="global")
    await resolver.resolve("dns+srv://_nomad-server._tcp.example.com", port_kind="serf")
    # -> ['10.0.0.11:4648', '10.0.0.12:4648']
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Final

from nomadd.discovery.entry import (
    DEFAULT_PORTS,
    MDNS_WINDOW_S,
    PORT_KINDS,
    DiscoveryError,
    Entry,
    MdnsEntry,
    PortKind,
    SrvEntry,
    StaticEntry,
    parse_entry,
    parse_resolver_address,
)
from nomadd.discovery.static import resolve_static
from nomadd.structs.errors import ConfigError

if TYPE_CHECKING:
    import dns.asyncresolver

# dnspython and zeroconf cost ~60 ms to import; an agent with only static addresses never needs
# them, so the SRV and mDNS paths import them on first use.

__all__ = ["DNS_LIFETIME_S", "DNS_TIMEOUT_S", "Resolver"]

logger = logging.getLogger(__name__)

# dnspython's defaults (2 s per try, 5 s in all): long enough for a slow upstream, short
# enough that a dead resolver costs one retry_join attempt a few seconds, not a hang.
DNS_TIMEOUT_S: Final = 2.0
DNS_LIFETIME_S: Final = 5.0
DNS_MARGIN_S: Final = 0.5
MDNS_MARGIN_S: Final = 1.5  # > the 1 s info request that may start at the end of the window


class Resolver:
    """Turns entries into ordered ``host:port`` lists, each entry bounded by ``lifetime``.

    ``dns_resolvers`` (the ``discovery.dns_resolvers`` config key: ``IP[:PORT]`` strings) are
    used for SRV entries without ``?resolver=``; empty means the system's resolv.conf. Static
    names always go through the system resolver (getaddrinfo). ``region`` is the region an
    ``mdns://`` entry without ``?region=`` looks for; ``mdns_interfaces`` the local IPv4
    addresses to browse on (default every interface).
    """

    def __init__(
        self,
        dns_resolvers: Sequence[str] = (),
        *,
        timeout: float = DNS_TIMEOUT_S,
        lifetime: float = DNS_LIFETIME_S,
        region: str = "global",
        mdns_interfaces: Sequence[str] | None = None,
        mdns_window: float = MDNS_WINDOW_S,
    ) -> None:
        if timeout <= 0 or lifetime <= 0:
            raise ConfigError("discovery: dns timeout and lifetime must be positive")
        if isinstance(dns_resolvers, str):
            raise ConfigError("discovery.dns_resolvers: expected a list of IP[:PORT] strings")
        self.dns_servers: tuple[tuple[str, int], ...] = tuple(
            parse_resolver_address(text) for text in dns_resolvers
        )
        self.timeout = timeout
        self.lifetime = lifetime
        self.region = region
        self.mdns_interfaces = tuple(mdns_interfaces) if mdns_interfaces else None
        self.mdns_window = min(mdns_window, lifetime)
        self._dns: dict[tuple[tuple[str, int], ...], dns.asyncresolver.Resolver] = {}

    async def resolve(self, entry: Entry | str, *, port_kind: PortKind = "serf") -> list[str]:
        """Ordered ``host:port`` strings (IPv6 bracketed) for one entry, right now.

        A string is parsed first with the default port of ``port_kind`` (ConfigError when
        malformed). ``port_kind`` picks the port of mDNS results; static entries keep their
        port and SRV results take the ports of their records. Raises DiscoveryError, never
        takes much longer than ``lifetime`` seconds.
        """
        if port_kind not in PORT_KINDS:
            raise ValueError(f"port_kind must be one of {PORT_KINDS}, not {port_kind!r}")
        if isinstance(entry, str):
            entry = parse_entry(entry, default_port=DEFAULT_PORTS[port_kind])
        # The margin lets dnspython's own (clearer) timeout fire first, and pending mDNS info
        # requests finish after the browse window.
        margin = MDNS_MARGIN_S if isinstance(entry, MdnsEntry) else DNS_MARGIN_S
        budget = self.lifetime + margin
        try:
            async with asyncio.timeout(budget):
                return await self._resolve(entry, port_kind)
        except TimeoutError:
            raise DiscoveryError(f"resolving {entry.text!r} timed out after {budget:g}s") from None
        except OSError as err:  # a socket error below us (no route, ENOBUFS, ...): transient
            raise DiscoveryError(f"resolving {entry.text!r} failed: {err}") from err

    async def resolve_all(self, entries: Iterable[Entry | str], *, port_kind: PortKind = "serf") -> list[str]:
        """Resolve every entry concurrently; the addresses in entry order, without duplicates.

        An entry that fails is logged as a warning and skipped; DiscoveryError only when no
        entry gave an address (its message lists each entry's error).
        """
        parsed = [
            parse_entry(e, default_port=DEFAULT_PORTS[port_kind]) if isinstance(e, str) else e
            for e in entries
        ]
        if not parsed:
            raise DiscoveryError("no server addresses configured")
        results = await asyncio.gather(
            *(self.resolve(e, port_kind=port_kind) for e in parsed), return_exceptions=True
        )
        out: list[str] = []
        errors: list[str] = []
        for entry, result in zip(parsed, results, strict=True):
            if isinstance(result, DiscoveryError):
                logger.warning("discovery failed entry=%s error=%s", entry.text, result)
                errors.append(str(result))
            elif isinstance(result, BaseException):
                raise result
            else:
                out.extend(a for a in result if a not in out)
        if not out:
            raise DiscoveryError("; ".join(errors))
        return out

    async def _resolve(self, entry: Entry, port_kind: PortKind) -> list[str]:
        if isinstance(entry, StaticEntry):
            return await resolve_static(entry)
        if isinstance(entry, SrvEntry):
            from nomadd.discovery.dns_srv import resolve_srv

            servers = (entry.resolver,) if entry.resolver else self.dns_servers
            return await resolve_srv(entry, await self._dns_resolver(servers))
        from nomadd.discovery.mdns import browse_servers

        return await browse_servers(
            region=entry.region or self.region,
            datacenter=entry.datacenter,
            port_kind=port_kind,
            window=self.mdns_window,
            interfaces=self.mdns_interfaces,
        )

    async def _dns_resolver(self, servers: tuple[tuple[str, int], ...]) -> dns.asyncresolver.Resolver:
        from nomadd.discovery.dns_srv import make_dns_resolver

        resolver = self._dns.get(servers)
        if resolver is None:
            if not servers:
                # Re-read /etc/resolv.conf each time (it may change), off the loop.
                return await asyncio.to_thread(
                    make_dns_resolver, (), timeout=self.timeout, lifetime=self.lifetime
                )
            resolver = make_dns_resolver(servers, timeout=self.timeout, lifetime=self.lifetime)
            self._dns[servers] = resolver
        return resolver
