from __future__ import annotations

import asyncio
import logging
import socket
from collections import namedtuple

import psutil
import pytest

from nomadd.client.fingerprint import network
from nomadd.client.fingerprint.base import FingerprintConfig, FingerprintRequest, read_text

Addr = namedtuple("Addr", "family address netmask broadcast ptp")
Stat = namedtuple("Stat", "isup duplex speed mtu flags")

ROUTE = """Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth1\t00000000\t010200C0\t0003\t0\t0\t200\t00000000\t0\t0\t0
eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
"""

ADDRS = {
    "lo": [Addr(socket.AF_INET, "127.0.0.1", "255.0.0.0", None, None)],
    "eth0": [
        Addr(socket.AF_INET6, "fe80::1", None, None, None),
        Addr(socket.AF_INET, "192.0.2.10", "255.255.255.0", None, None),
    ],
    "eth1": [Addr(socket.AF_INET, "198.51.100.7", "255.255.255.0", None, None)],
}


def ip(cfg: FingerprintConfig | None = None) -> str:
    req = FingerprintRequest(config=cfg or FingerprintConfig())
    resp = asyncio.run(network.NetworkFingerprint().fingerprint(req))
    return resp.attributes["unique.network.ip-address"]


@pytest.fixture
def nics(bare_host: object, monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.setattr(psutil, "net_if_addrs", lambda: ADDRS)
    monkeypatch.setattr(psutil, "net_if_stats", lambda: {n: Stat(True, 0, 0, 1500, "") for n in ADDRS})
    return bare_host


def test_proc_default_iface_lowest_metric() -> None:
    assert network.proc_default_iface(ROUTE) == "eth0"
    assert network.proc_default_iface("") == ""
    assert network.proc_default_iface(None) == ""


def test_default_route_interface(nics: object, monkeypatch: pytest.MonkeyPatch) -> None:
    route = nics / "route"  # type: ignore[operator]
    route.write_text(ROUTE)
    monkeypatch.setattr(network, "PROC_NET_ROUTE", str(route))
    assert ip() == "192.0.2.10"


def test_configured_interface_wins(nics: object) -> None:
    assert ip(FingerprintConfig(network_interface="eth1")) == "198.51.100.7"


def test_configured_interface_without_address_falls_back(
    nics: object, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        assert ip(FingerprintConfig(network_interface="wg9")) == "192.0.2.10"
    assert "network_interface has no ipv4 address" in caplog.text


def test_no_route_and_pyroute2_fails_uses_first_non_loopback(nics: object) -> None:
    assert ip() == "192.0.2.10"


def test_pyroute2_used_when_proc_has_no_default(nics: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(network, "pyroute2_route", lambda: ("eth1", "198.51.100.7"))
    assert ip() == "198.51.100.7"


def test_loopback_only_host(bare_host: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(psutil, "net_if_addrs", lambda: {"lo": ADDRS["lo"]})
    assert ip() == "127.0.0.1"


def test_everything_fails_still_answers(bare_host: object) -> None:
    assert ip() == "127.0.0.1"


def test_real_pyroute2_lookup_matches_proc_route() -> None:
    """The netlink path and the /proc path agree on this host (when it has a default route)."""
    iface = network.proc_default_iface(read_text(network.PROC_NET_ROUTE))
    if not iface:
        pytest.skip("host has no IPv4 default route")
    name, src = network.pyroute2_route()
    assert name == iface
    assert src in network.if_addrs()[iface]


def test_real_host() -> None:
    assert ip()
