"""``nomadd operator discover`` (issue 5 acceptance 5): ordered addresses per kind of entry.

mdns:// through the command is covered in test_discovery_mdns.py (loopback and namespaces).
"""

from __future__ import annotations

import io
import socket
import time
from pathlib import Path

import pytest

from nomadd.cli import main
from nomadd.cli.operator_discover import run
from tests.dnsmasq import Dnsmasq, Srv

NAME = "_nomad-server._tcp.service.consul"


def _run(*args: str) -> tuple[int, list[str], str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(args), stdout=out, stderr=err)
    return code, out.getvalue().splitlines(), err.getvalue()


def test_static_entries_in_order() -> None:
    code, lines, err = _run("10.0.0.2", "[fd00::1]:99", "10.0.0.1:4000", "localhost")
    assert (code, err) == (0, "")
    assert lines[:3] == ["10.0.0.2:4648", "[fd00::1]:99", "10.0.0.1:4000"]
    assert set(lines[3:]) <= {"127.0.0.1:4648", "[::1]:4648"}
    assert lines[3:]


def test_port_kind_sets_the_default_port() -> None:
    assert _run("-port-kind=http", "10.0.0.2")[:2] == (0, ["10.0.0.2:4646"])
    assert _run("-port-kind", "raft", "10.0.0.2")[:2] == (0, ["10.0.0.2:4647"])


@pytest.mark.slow
def test_srv_entry_against_dnsmasq(tmp_path: Path) -> None:
    records = [
        Srv(NAME, "nomad-2.node.consul", 4648, 0, 10),
        Srv(NAME, "nomad-1.node.consul", 4648, 1, 10),
        Srv(NAME, "nomad-3.node.consul", 4650, 2, 10),
    ]
    hosts = {
        "nomad-1.node.consul": ["127.0.0.11"],
        "nomad-2.node.consul": ["127.0.0.12", "fd00::12"],
        "nomad-3.node.consul": ["127.0.0.13"],
    }
    with Dnsmasq(tmp_path, srv=records, hosts=hosts) as dns:
        expected = ["127.0.0.12:4648", "[fd00::12]:4648", "127.0.0.11:4648", "127.0.0.13:4650"]
        assert _run(f"-resolver={dns.address}", f"dns+srv://{NAME}") == (0, expected, "")
        assert _run(f"dns+srv://{NAME}?resolver={dns.address}") == (0, expected, "")
        code, lines, err = _run(f"-resolver={dns.address}", "dns+srv://_nope._tcp.service.consul")
        assert (code, lines) == (1, [])
        assert err == (
            "Error resolving dns+srv://_nope._tcp.service.consul: SRV lookup of "
            f"_nope._tcp.service.consul.: no such name (NXDOMAIN) from {dns.address}\n"
        )


@pytest.mark.slow
def test_unanswering_resolver_is_bounded_by_timeout() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        start = time.monotonic()
        code, lines, err = _run(f"-resolver={address}", "-timeout=400ms", f"dns+srv://{NAME}")
        assert time.monotonic() - start < 2.0
    assert (code, lines) == (1, [])
    assert f"no answer from {address} within 0.4s" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "at least one entry"),
        (["host:http"], "invalid server address 'host:http'"),
        (["mdns://?zone=1"], "unknown option 'zone'"),
        (["-port-kind=rpc", "x"], "-port-kind must be one of serf, http, raft"),
        (["-timeout=soon", "x"], "invalid duration 'soon'"),
        (["-resolver=ns1.example.com", "x"], "is not an IP address"),
        (["-nope", "x"], "flag provided but not defined: -nope"),
    ],
)
def test_usage_errors_exit_1(args: list[str], message: str) -> None:
    code, lines, err = _run(*args)
    assert (code, lines) == (1, [])
    assert message in err


def test_help_and_command_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, _ = _run("-help")
    assert code == 0
    assert lines[0].startswith("Usage: nomadd operator discover")
    assert main(["operator", "discover", "-port-kind=http", "10.9.8.7"]) == 0
    assert capsys.readouterr().out == "10.9.8.7:4646\n"
