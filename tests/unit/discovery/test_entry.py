from __future__ import annotations

import pytest

from nomadd.discovery import (
    MdnsEntry,
    SrvEntry,
    StaticEntry,
    join_host_port,
    parse_entries,
    parse_entry,
    parse_resolver_address,
)
from nomadd.structs.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("10.0.0.1", "10.0.0.1", 4648),
        ("10.0.0.1:4000", "10.0.0.1", 4000),
        ("nomad-1.example.com", "nomad-1.example.com", 4648),
        ("nomad-1.example.com.:1", "nomad-1.example.com.", 1),
        ("localhost:65535", "localhost", 65535),
        ("[fd00::1]:4647", "fd00::1", 4647),
        ("[fd00::1]", "fd00::1", 4648),
        ("fd00::1", "fd00::1", 4648),
        ("  10.0.0.2  ", "10.0.0.2", 4648),
    ],
)
def test_static_entries(text: str, host: str, port: int) -> None:
    entry = parse_entry(text, default_port=4648)
    assert entry == StaticEntry(text=text.strip(), host=host, port=port)


def test_srv_entry_with_and_without_resolver() -> None:
    plain = parse_entry("dns+srv://_nomad-server._tcp.example.com", default_port=4648)
    assert plain == SrvEntry(
        text="dns+srv://_nomad-server._tcp.example.com",
        name="_nomad-server._tcp.example.com.",
        resolver=None,
    )
    pinned = parse_entry("DNS+SRV://_n._tcp.example.com.?resolver=127.0.0.1:5353", default_port=1)
    assert isinstance(pinned, SrvEntry)
    assert pinned.name == "_n._tcp.example.com."
    assert pinned.resolver == ("127.0.0.1", 5353)
    v6 = parse_entry("dns+srv://_n._tcp.example.com?resolver=[::1]:53", default_port=1)
    assert isinstance(v6, SrvEntry)
    assert v6.resolver == ("::1", 53)
    default_port = parse_entry("dns+srv://_n._tcp.example.com?resolver=10.0.0.53", default_port=1)
    assert isinstance(default_port, SrvEntry)
    assert default_port.resolver == ("10.0.0.53", 53)


@pytest.mark.parametrize(
    ("text", "region", "dc"),
    [
        ("mdns://", None, None),
        ("mdns:///", None, None),
        ("mdns://?region=eu", "eu", None),
        ("mdns://?region=eu&dc=dc2", "eu", "dc2"),
        ("mdns://?dc=dc2", None, "dc2"),
    ],
)
def test_mdns_entries(text: str, region: str | None, dc: str | None) -> None:
    assert parse_entry(text, default_port=4648) == MdnsEntry(text=text, region=region, datacenter=dc)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("host:", "port ''"),
        ("host:0", "port '0'"),
        ("host:65536", "port '65536'"),
        ("host:http", "port 'http'"),
        ("fd00::1:4647:x", "[addr]:port"),
        ("[fd00::1", "missing ']'"),
        ("[10.0.0.1]:1", "not an IPv6"),
        ("[fd00::1]x", "unexpected"),
        ("bad host", "not a valid host name"),
        ("under/score", "not a valid host name"),
        ("-lead.example.com", "not a valid host name"),
        ("a" * 64 + ".example.com", "not a valid host name"),
        ("http://10.0.0.1", "unknown scheme 'http'"),
        ("provider=aws tag_key=x", "go-discover"),
        ("exec=/bin/true", "go-discover"),
        ("dns+srv://", "missing SRV name"),
        ("dns+srv://_n._tcp.example.com:53", "no port"),
        ("dns+srv://_n._tcp.example.com/path", "unexpected path"),
        ("dns+srv://bad name", "not a valid host name"),
        ("dns+srv://_n._tcp.x?resolver=dns.example.com", "not an IP address"),
        ("dns+srv://_n._tcp.x?resolver=127.0.0.1:99999", "port '99999'"),
        ("dns+srv://_n._tcp.x?server=127.0.0.1", "unknown option 'server'"),
        ("dns+srv://_n._tcp.x?resolver=1.1.1.1&resolver=8.8.8.8", "given twice"),
        ("mdns://host", "takes no host"),
        ("mdns://?zone=x", "unknown option 'zone'"),
        ("mdns://?region=", "empty region"),
    ],
)
def test_malformed_entries_name_the_entry(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_entry(text, default_port=4648)
    message = str(info.value)
    assert fragment in message
    assert repr(text.strip()) in message or repr(text) in message


def test_default_port_out_of_range() -> None:
    with pytest.raises(ConfigError, match="default port"):
        parse_entry("10.0.0.1", default_port=0)


def test_resolver_address() -> None:
    assert parse_resolver_address("127.0.0.1") == ("127.0.0.1", 53)
    assert parse_resolver_address("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_resolver_address("[fd00::53]:5300") == ("fd00::53", 5300)
    assert parse_resolver_address("fd00::53") == ("fd00::53", 53)
    with pytest.raises(ConfigError, match="not an IP address"):
        parse_resolver_address("ns1.example.com")


def test_join_host_port_brackets_ipv6() -> None:
    assert join_host_port("10.0.0.1", 4648) == "10.0.0.1:4648"
    assert join_host_port("fd00::1", 4648) == "[fd00::1]:4648"
    assert join_host_port("n1.example.com", 1) == "n1.example.com:1"


def test_parse_entries_prefixes_the_config_key() -> None:
    entries = parse_entries(["10.0.0.1", "mdns://"], default_port=4646, key="client.servers")
    assert entries == (
        StaticEntry(text="10.0.0.1", host="10.0.0.1", port=4646),
        MdnsEntry(text="mdns://"),
    )
    with pytest.raises(ConfigError) as info:
        parse_entries(["10.0.0.1", "x:y"], default_port=4648, key="server.server_join.retry_join")
    assert str(info.value).startswith("server.server_join.retry_join: invalid server address 'x:y'")
    assert parse_entries([], default_port=1) == ()
