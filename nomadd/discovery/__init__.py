"""Finding servers: static addresses, DNS SRV and mDNS, plus Nomad's start_join/retry_join.

Public API (everything else in the sub-modules is internal)::

    parse_entry(text, *, default_port) -> Entry            # ConfigError when malformed
    parse_entries(texts, *, default_port, key="") -> tuple[Entry, ...]  # error says the key
    Resolver(dns_resolvers=(), *, timeout, lifetime, region, mdns_interfaces, mdns_window)
        await resolver.resolve(entry | str, *, port_kind="serf") -> list[str]
        await resolver.resolve_all(entries, *, port_kind="serf") -> list[str]
    MdnsAnnouncer(name, region, datacenter, role, address, ports, *, interfaces=None)
        await announcer.start(); await announcer.stop()
    await retry_join(entries, join, *, resolver, interval, max_attempts=0, port_kind="serf")
    await start_join(entries, join, *, resolver, port_kind="serf")

``port_kind`` is the port wanted from mDNS results: servers joining gossip want ``"serf"``,
clients want ``"http"``. Errors: DiscoveryError (transient, retried), RetryJoinExhausted
(give up, exit 1), ConfigError (malformed entry, refuse to start).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nomadd.discovery.entry import (
    DEFAULT_PORTS,
    PORT_KINDS,
    DiscoveryError,
    Entry,
    MdnsEntry,
    PortKind,
    SrvEntry,
    StaticEntry,
    join_host_port,
    parse_entries,
    parse_entry,
    parse_resolver_address,
)

if TYPE_CHECKING:
    from nomadd.discovery.mdns import SERVICE_TYPE, MdnsAnnouncer, browse_servers
    from nomadd.discovery.resolver import Resolver
    from nomadd.discovery.retry_join import (
        EXHAUSTED_MESSAGE,
        RetryJoinExhausted,
        retry_join,
        start_join,
    )

# The resolvers pull in dnspython and zeroconf (~70 ms); parsing entries (the config loader does it
# at start) must not. They are imported on first use.
_LAZY = {
    "SERVICE_TYPE": "nomadd.discovery.mdns",
    "MdnsAnnouncer": "nomadd.discovery.mdns",
    "browse_servers": "nomadd.discovery.mdns",
    "Resolver": "nomadd.discovery.resolver",
    "EXHAUSTED_MESSAGE": "nomadd.discovery.retry_join",
    "RetryJoinExhausted": "nomadd.discovery.retry_join",
    "retry_join": "nomadd.discovery.retry_join",
    "start_join": "nomadd.discovery.retry_join",
}


__all__ = [
    "DEFAULT_PORTS",
    "EXHAUSTED_MESSAGE",
    "PORT_KINDS",
    "SERVICE_TYPE",
    "DiscoveryError",
    "Entry",
    "MdnsAnnouncer",
    "MdnsEntry",
    "PortKind",
    "Resolver",
    "RetryJoinExhausted",
    "SrvEntry",
    "StaticEntry",
    "browse_servers",
    "join_host_port",
    "parse_entries",
    "parse_entry",
    "parse_resolver_address",
    "retry_join",
    "start_join",
]


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nomadd.discovery' has no attribute {name!r}")
    import importlib
    import sys

    importlib.import_module(module)
    # Bind every lazy name whose module is loaded: importing the submodule ``retry_join`` sets the
    # package attribute ``retry_join`` to the module, and the function of that name must win.
    for lazy_name, lazy_module in _LAZY.items():
        loaded = sys.modules.get(lazy_module)
        if loaded is not None:
            globals()[lazy_name] = getattr(loaded, lazy_name)
    return globals()[name]
