from __future__ import annotations

import asyncio
import logging
import time

import pytest

from nomadd.discovery import DiscoveryError, Resolver, StaticEntry
from nomadd.structs.errors import ConfigError


def test_ip_literals_need_no_lookup() -> None:
    r = Resolver()
    assert asyncio.run(r.resolve("10.1.2.3")) == ["10.1.2.3:4648"]
    assert asyncio.run(r.resolve("10.1.2.3", port_kind="http")) == ["10.1.2.3:4646"]
    assert asyncio.run(r.resolve("[fd00::7]:99", port_kind="raft")) == ["[fd00::7]:99"]
    entry = StaticEntry(text="x", host="fd00::8", port=1)
    assert asyncio.run(r.resolve(entry)) == ["[fd00::8]:1"]


def test_hostname_goes_through_getaddrinfo() -> None:
    # "localhost" is in /etc/hosts on every machine we run on; whatever families it has.
    addresses = asyncio.run(Resolver().resolve("localhost:4000"))
    assert addresses
    assert set(addresses) <= {"127.0.0.1:4000", "[::1]:4000"}


@pytest.mark.slow
def test_unresolvable_name_is_discovery_error_bounded_in_time() -> None:
    r = Resolver(lifetime=1.0)
    start = time.monotonic()
    with pytest.raises(DiscoveryError, match=r"no-such-host\.invalid"):
        asyncio.run(r.resolve("no-such-host.invalid"))
    assert time.monotonic() - start < 1.5 + 10  # lookup bound, plus glibc finishing its thread


def test_resolve_all_keeps_order_and_dedupes(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="nomadd.discovery")
    r = Resolver()
    out = asyncio.run(r.resolve_all(["10.0.0.2", "10.0.0.1:4648", "10.0.0.2"]))
    assert out == ["10.0.0.2:4648", "10.0.0.1:4648"]
    assert not caplog.records


def test_resolve_all_with_nothing_configured() -> None:
    with pytest.raises(DiscoveryError, match="no server addresses configured"):
        asyncio.run(Resolver().resolve_all([]))


def test_bad_port_kind_and_resolver_config() -> None:
    with pytest.raises(ValueError, match="port_kind"):
        asyncio.run(Resolver().resolve("10.0.0.1", port_kind="rpc"))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="not an IP address"):
        Resolver(["ns1.example.com"])
    with pytest.raises(ConfigError, match="list"):
        Resolver("127.0.0.1")
    with pytest.raises(ConfigError, match="positive"):
        Resolver(lifetime=0)
