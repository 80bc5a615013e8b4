"""``nomadd operator discover [options] ENTRY...``: what server entries resolve to right now.

Prints, one per line, the ordered ``host:port`` addresses each entry resolves to: a static
``host[:port]`` (A/AAAA), ``dns+srv://NAME[?resolver=IP:PORT]`` (SRV in RFC 2782 order) or
``mdns://[?region=R&dc=D]`` (servers announcing on this LAN). Exit 1 with a one-line error when
an entry is malformed or does not resolve.

Unlike the other commands, which only talk to an agent through ``nomadd.api``, this one
resolves **locally on purpose**: it checks this host's view of DNS/mDNS, which is what an agent
started here would see. So it imports ``nomadd.discovery`` directly.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from nomadd.discovery import (
    DEFAULT_PORTS,
    PORT_KINDS,
    DiscoveryError,
    PortKind,
    Resolver,
    parse_entry,
)
from nomadd.discovery.resolver import DNS_TIMEOUT_S
from nomadd.helper.duration import parse_duration
from nomadd.helper.flags import FlagError, FlagSet
from nomadd.structs.errors import ConfigError

__all__ = ["run"]

HELP = """Usage: nomadd operator discover [options] <entry>...

  Resolve server entries the way an agent on this host would, and print the
  ordered addresses, one per line.

  Entries:
    host | host:port | [v6addr]:port         A/AAAA lookup, every address
    dns+srv://_nomad-server._tcp.example.com  SRV lookup (RFC 2782 order), then A/AAAA
    mdns://?region=global&dc=dc1              servers announcing _nomadd._tcp.local.

Options:

  -resolver=<ip[:port]>
    DNS server for dns+srv:// entries without ?resolver= (repeatable).
    Default: the system resolver (/etc/resolv.conf).

  -timeout=<duration>
    Time budget per entry (default 5s); also the mDNS browse window (at most 2s).

  -port-kind=<serf|http|raft>
    Port wanted: default port of static entries and the port taken from mDNS
    announcements (default serf; clients use http).

  -region=<region>
    Region an mdns:// entry without ?region= looks for (default global).
"""


def _duration(text: str) -> float:
    """Go-style duration (``500ms``, ``5s``, ``1m30s``) or plain seconds, in seconds."""
    try:
        value = float(text)
    except ValueError:
        try:
            value = parse_duration(text)
        except ValueError:
            raise ConfigError(f"-timeout: invalid duration {text!r}") from None
    if value <= 0:
        raise ConfigError(f"-timeout: duration must be positive, got {text!r}")
    return value


def _flagset() -> FlagSet:
    fs = FlagSet("operator discover")
    fs.strings("resolver", "DNS server for dns+srv:// entries (repeatable).", "<ip[:port]>")
    fs.string("timeout", "Time budget per entry.", "5s", "<duration>")
    fs.string("port-kind", "Port wanted: serf, http or raft.", "serf", "<kind>")
    fs.string("region", "Region for mdns:// without ?region=.", "global", "<region>")
    return fs


async def _resolve_each(resolver: Resolver, entries: list[str], port_kind: PortKind) -> list[str]:
    out: list[str] = []
    for text in entries:
        entry = parse_entry(text, default_port=DEFAULT_PORTS[port_kind])
        try:
            out.extend(await resolver.resolve(entry, port_kind=port_kind))
        except DiscoveryError as err:
            raise DiscoveryError(f"{text}: {err}") from err
    return out


def run(args: list[str], *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Entry point for ``nomadd operator discover``; returns the exit code."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    try:
        values, entries = _flagset().parse(args)
    except FlagError as exc:
        if str(exc) == "help requested":
            out.write(HELP)
            return 0
        err.write(f"{exc}\n{HELP}")
        return 1
    try:
        timeout = _duration(str(values.get("timeout", "5s")))
        port_kind = str(values.get("port-kind", "serf"))
        if port_kind not in PORT_KINDS:
            kinds = ", ".join(PORT_KINDS)
            raise ConfigError(f"-port-kind must be one of {kinds}, not {port_kind!r}")
        if not entries:
            raise ConfigError("at least one entry is required (see -help)")
        for text in entries:  # report a malformed entry before any lookup
            parse_entry(text, default_port=DEFAULT_PORTS[port_kind])
        resolvers = values.get("resolver", ())
        assert isinstance(resolvers, tuple)
        resolver = Resolver(
            [str(r) for r in resolvers],
            timeout=min(timeout, DNS_TIMEOUT_S),
            lifetime=timeout,
            region=str(values.get("region", "global")),
        )
        addresses = asyncio.run(_resolve_each(resolver, entries, port_kind))
    except ConfigError as exc:
        err.write(f"Error: {exc}\n")
        return 1
    except DiscoveryError as exc:
        err.write(f"Error resolving {exc}\n")
        return 1
    for address in addresses:
        out.write(address + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(sys.argv[1:]))
