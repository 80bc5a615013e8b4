"""Server addresses as operators write them, parsed once at start.

Three kinds of entry (docs/architecture.md §Discovery), accepted wherever a server address is configured
(``server.server_join.{start_join,retry_join}``, ``client.servers``,
``client.server_join.retry_join`` and the ``-join`` / ``-retry-join`` / ``-servers`` flags):

* static: ``host``, ``host:port``, ``1.2.3.4``, ``[fd00::1]:4648`` (and a bare IPv6 literal);
  resolved through A/AAAA, every address is used;
* ``dns+srv://_nomad-server._tcp.example.com[?resolver=IP[:PORT]]``: an SRV lookup in RFC 2782
  order, ports from the records;
* ``mdns://[?region=R&dc=D]``: servers announcing ``_nomadd._tcp.local.`` on this LAN.

A malformed entry raises :class:`~nomadd.structs.errors.ConfigError` naming the entry, so the
config loader can refuse to start with a clear message.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias
from urllib.parse import parse_qsl, urlsplit

from nomadd.structs.errors import ConfigError, NomaddError

__all__ = [
    "DEFAULT_PORTS",
    "DNS_DEFAULT_PORT",
    "PORT_KINDS",
    "DiscoveryError",
    "Entry",
    "MdnsEntry",
    "PortKind",
    "SrvEntry",
    "StaticEntry",
    "join_host_port",
    "parse_entries",
    "parse_entry",
    "parse_resolver_address",
]

PortKind: TypeAlias = Literal["serf", "http", "raft"]
PORT_KINDS: Final[tuple[PortKind, ...]] = ("serf", "http", "raft")
# docs/architecture.md §Ports: the port a bare host means, per kind of peer we are looking for.
DEFAULT_PORTS: Final[dict[PortKind, int]] = {"http": 4646, "raft": 4647, "serf": 4648}
DNS_DEFAULT_PORT: Final = 53

SRV_SCHEME: Final = "dns+srv"
MDNS_SCHEME: Final = "mdns"

# One DNS label: letters, digits, '-' and '_' (SRV owner names start with '_'), 1..63 bytes.
_LABEL_RE: Final = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")
_MAX_NAME_LEN: Final = 253  # RFC 1035 limit on a name in text form, without the final dot


# How long an mdns:// lookup listens for announcements.
MDNS_WINDOW_S: Final = 2.0


class DiscoveryError(NomaddError):
    """An entry could not be resolved to any server address right now.

    Raised by :class:`~nomadd.discovery.Resolver` for NXDOMAIN, SERVFAIL/REFUSED, a DNS server
    that does not answer in time, SRV targets without addresses, an mDNS browse that found no
    server of the region, or a host name that does not resolve. It is transient: ``retry_join``
    logs it and tries again. A malformed entry is :class:`~nomadd.structs.errors.ConfigError`.
    """


@dataclass(frozen=True, slots=True, kw_only=True)
class StaticEntry:
    """``host[:port]``: an IP literal or a name resolved through A/AAAA."""

    text: str
    host: str
    port: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SrvEntry:
    """``dns+srv://NAME[?resolver=IP[:PORT]]``: SRV records name the servers and their ports."""

    text: str
    name: str
    resolver: tuple[str, int] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MdnsEntry:
    """``mdns://[?region=R&dc=D]``: servers announced on the local link.

    ``region`` None means the resolver's own region; ``datacenter`` None means any.
    """

    text: str
    region: str | None = None
    datacenter: str | None = None


Entry: TypeAlias = StaticEntry | SrvEntry | MdnsEntry


def join_host_port(host: str, port: int) -> str:
    """``host:port``, with an IPv6 host in brackets (``[fd00::1]:4648``)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_entry(text: str, *, default_port: int) -> Entry:
    """Parse one configured server address; ``default_port`` applies to a static host without one.

    Raises ConfigError with a message that quotes the entry when it is malformed.
    """
    raw = text.strip() if isinstance(text, str) else text
    if not isinstance(raw, str) or not raw:
        raise ConfigError(f"invalid server address {text!r}: empty")
    if not 0 < default_port < 65536:
        raise ConfigError(f"invalid server address {raw!r}: default port {default_port} out of range")
    if raw.startswith(("provider=", "exec=")):
        raise ConfigError(
            f"invalid server address {raw!r}: go-discover providers and exec= are not supported; "
            "use host[:port], dns+srv://NAME or mdns://"
        )
    if "://" in raw:
        scheme = raw.split("://", 1)[0].lower()
        if scheme == SRV_SCHEME:
            return _parse_srv(raw)
        if scheme == MDNS_SCHEME:
            return _parse_mdns(raw)
        raise ConfigError(
            f"invalid server address {raw!r}: unknown scheme {scheme!r} (expected dns+srv:// or mdns://)"
        )
    host, port = _split_host_port(raw, default_port=default_port, what="server address")
    return StaticEntry(text=raw, host=host, port=port)


def parse_entries(texts: Iterable[str], *, default_port: int, key: str = "") -> tuple[Entry, ...]:
    """Parse a configured list (e.g. ``client.servers``); ConfigError prefixed with ``key``.

    Example: ``parse_entries(cfg.servers, default_port=4646, key="client.servers")``.
    """
    out: list[Entry] = []
    for text in texts:
        try:
            out.append(parse_entry(text, default_port=default_port))
        except ConfigError as err:
            raise ConfigError(f"{key}: {err}" if key else str(err)) from err
    return tuple(out)


def parse_resolver_address(text: str) -> tuple[str, int]:
    """Parse a DNS server address ``IP``, ``IP:PORT`` or ``[IPv6]:PORT`` (port 53 by default).

    Used for ``?resolver=`` and the ``discovery.dns_resolvers`` config key. It must be an IP
    literal: we do not use DNS to find the DNS server. Raises ConfigError.
    """
    raw = text.strip()
    host, port = _split_host_port(raw, default_port=DNS_DEFAULT_PORT, what="dns resolver")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(f"invalid dns resolver {raw!r}: {host!r} is not an IP address") from None
    return host, port


def _split_host_port(raw: str, *, default_port: int, what: str) -> tuple[str, int]:
    if not raw:
        raise ConfigError(f"invalid {what} {raw!r}: empty")
    port_text: str | None = None
    if raw.startswith("["):
        end = raw.find("]")
        if end < 0:
            raise ConfigError(f"invalid {what} {raw!r}: missing ']' after IPv6 address")
        host, rest = raw[1:end], raw[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ConfigError(f"invalid {what} {raw!r}: unexpected {rest!r} after ']'")
            port_text = rest[1:]
        try:
            if ipaddress.ip_address(host).version != 6:
                raise ValueError(host)
        except ValueError:
            raise ConfigError(f"invalid {what} {raw!r}: {host!r} is not an IPv6 address") from None
    elif raw.count(":") > 1:
        try:
            ipaddress.IPv6Address(raw)
        except ValueError:
            raise ConfigError(
                f"invalid {what} {raw!r}: write an IPv6 address with a port as [addr]:port"
            ) from None
        host = raw
    elif ":" in raw:
        host, port_text = raw.split(":", 1)
        _check_host(host, raw, what)
    else:
        host = raw
        _check_host(host, raw, what)
    if port_text is None:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"invalid {what} {raw!r}: port {port_text!r} is not in 1-65535")
    return host, int(port_text)


def _check_host(host: str, raw: str, what: str) -> None:
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    problem = _name_problem(host)
    if problem:
        raise ConfigError(f"invalid {what} {raw!r}: {problem}")


def _name_problem(name: str) -> str | None:
    """Why ``name`` is not a usable DNS name, or None when it is."""
    bare = name[:-1] if name.endswith(".") else name
    if not bare:
        return "empty host name"
    if len(bare) > _MAX_NAME_LEN:
        return f"host name longer than {_MAX_NAME_LEN} characters"
    for label in bare.split("."):
        if not _LABEL_RE.match(label):
            return f"{name!r} is not a valid host name (bad label {label!r})"
    return None


def _parse_srv(raw: str) -> SrvEntry:
    parts = urlsplit(raw)
    name = parts.netloc
    if parts.path not in ("", "/") or parts.fragment:
        raise ConfigError(f"invalid server address {raw!r}: unexpected path after the SRV name")
    if not name:
        raise ConfigError(f"invalid server address {raw!r}: missing SRV name after dns+srv://")
    if ":" in name or "@" in name:
        raise ConfigError(
            f"invalid server address {raw!r}: an SRV name carries no port or user "
            "(ports come from the SRV records)"
        )
    problem = _name_problem(name)
    if problem:
        raise ConfigError(f"invalid server address {raw!r}: {problem}")
    resolver: tuple[str, int] | None = None
    for key, value in _query(raw, parts.query, allowed=("resolver",)):
        if key == "resolver":
            try:
                resolver = parse_resolver_address(value)
            except ConfigError as err:
                raise ConfigError(f"invalid server address {raw!r}: {err}") from err
    return SrvEntry(text=raw, name=name if name.endswith(".") else name + ".", resolver=resolver)


def _parse_mdns(raw: str) -> MdnsEntry:
    parts = urlsplit(raw)
    if parts.netloc or parts.path not in ("", "/") or parts.fragment:
        raise ConfigError(
            f"invalid server address {raw!r}: mdns:// takes no host or path, only ?region=R&dc=D"
        )
    values: dict[str, str] = {}
    for key, value in _query(raw, parts.query, allowed=("region", "dc")):
        if not value:
            raise ConfigError(f"invalid server address {raw!r}: empty {key}=")
        values[key] = value
    return MdnsEntry(text=raw, region=values.get("region"), datacenter=values.get("dc"))


def _query(raw: str, query: str, *, allowed: tuple[str, ...]) -> list[tuple[str, str]]:
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ConfigError(f"invalid server address {raw!r}: malformed query {query!r}") from None
    seen: set[str] = set()
    for key, _ in pairs:
        if key not in allowed:
            raise ConfigError(
                f"invalid server address {raw!r}: unknown option {key!r} (allowed: {', '.join(allowed)})"
            )
        if key in seen:
            raise ConfigError(f"invalid server address {raw!r}: option {key!r} given twice")
        seen.add(key)
    return pairs
