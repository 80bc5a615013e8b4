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

import argparse
import asyncio
import re
import sys
from typing import NoReturn, TextIO, cast

from nomadd.discovery import (
    DEFAULT_PORTS,
    PORT_KINDS,
    DiscoveryError,
    PortKind,
    Resolver,
    parse_entry,
)
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

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _duration(text: str) -> float:
    """Go-style duration (``500ms``, ``5s``, ``1m30s``) or plain seconds, in seconds."""
    try:
        value = float(text)
    except ValueError:
        pos, value = 0, 0.0
        for match in _DURATION_RE.finditer(text):
            if match.start() != pos:
                break
            value += float(match.group(1)) * _UNIT_S[match.group(2)]
            pos = match.end()
        if pos != len(text) or not text:
            raise argparse.ArgumentTypeError(f"invalid duration {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"duration must be positive, got {text!r}")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nomadd operator discover", add_help=False, allow_abbrev=False)
    parser.add_argument("-resolver", "--resolver", action="append", default=[])
    parser.add_argument("-timeout", "--timeout", type=_duration, default=5.0)
    parser.add_argument("-port-kind", "--port-kind", choices=PORT_KINDS, default="serf")
    parser.add_argument("-region", "--region", default="global")
    parser.add_argument("-h", "-help", "--help", action="store_true")
    parser.add_argument("entries", nargs="*")
    return parser


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
        opts = _parser().parse_args(args)
        if opts.help:
            out.write(HELP)
            return 0
        if not opts.entries:
            raise ConfigError("at least one entry is required (see -help)")
        port_kind = cast(PortKind, opts.port_kind)
        for text in opts.entries:  # report every malformed entry before any lookup
            parse_entry(text, default_port=DEFAULT_PORTS[port_kind])
        resolver = Resolver(
            opts.resolver,
            timeout=min(opts.timeout, 2.0),
            lifetime=opts.timeout,
            region=opts.region,
        )
        addresses = asyncio.run(_resolve_each(resolver, opts.entries, port_kind))
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
