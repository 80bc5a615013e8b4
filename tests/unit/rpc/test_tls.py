"""AgentTLS: the contexts verify what Nomad's tls {} promises, and reload rotates in place."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509

from nomadd.helper.tlsutil import create_ca, create_cert
from nomadd.rpc.tls import AgentTLS, check_config, peer_dns_names
from nomadd.structs.config import TLSConfig
from nomadd.structs.errors import ConfigError


class CA:
    def __init__(self, root: Path, name: str = "ca") -> None:
        self.root = root
        self.pem, self.key = create_ca()
        self.file = root / f"{name}.pem"
        self.file.write_bytes(self.pem)
        self.name = name

    def issue(self, kind: str, tag: str = "", region: str = "global") -> tuple[str, str]:
        cert, key = create_cert(self.pem, self.key, kind=kind, region=region)
        c = self.root / f"{self.name}-{kind}{tag}.pem"
        k = self.root / f"{self.name}-{kind}{tag}-key.pem"
        c.write_bytes(cert)
        k.write_bytes(key)
        return str(c), str(k)

    def config(self, kind: str, **kw: object) -> TLSConfig:
        cert, key = self.issue(kind)
        return TLSConfig(
            http=True,
            rpc=True,
            ca_file=str(self.file),
            cert_file=cert,
            key_file=key,
            **kw,  # type: ignore[arg-type]
        )


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()


async def _handshake(listener: AgentTLS, caller: ssl.SSLContext, server_hostname: str | None) -> dict:
    """One TLS connection; returns the caller's view of the server certificate and what the
    server saw of the caller (``peer``). A refusal raises."""
    seen: dict[str, object] = {}

    async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen["peer"] = writer.get_extra_info("peercert")
        writer.write(b"ok")
        with contextlib.suppress(Exception):
            await writer.drain()
        await _close(writer)

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0, ssl=listener.listener)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=caller, server_hostname=server_hostname or "127.0.0.1"
        )
        try:
            if await reader.read() != b"ok":  # TLS 1.3: the server refuses after the handshake
                raise ConnectionResetError("the server closed the connection")
            der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
            seen["server_serial"] = x509.load_der_x509_certificate(der).serial_number
        finally:
            await _close(writer)
    finally:
        server.close()
        await server.wait_closed()
    return seen


def _serial(path: str) -> int:
    return x509.load_pem_x509_certificate(Path(path).read_bytes()).serial_number


def test_mutual_tls_names_and_refusals(tmp_path: Path) -> None:
    asyncio.run(_test_mutual_tls_names_and_refusals(tmp_path))


async def _test_mutual_tls_names_and_refusals(tmp_path: Path) -> None:
    ca = CA(tmp_path)
    server = AgentTLS(ca.config("server", verify_server_hostname=True, verify_https_client=True))
    client = AgentTLS(ca.config("client", verify_server_hostname=True))
    assert client.server_name == "server.global.nomad"

    seen = await _handshake(server, client.outgoing, client.server_name)
    assert "client.global.nomad" in peer_dns_names(seen["peer"])  # type: ignore[arg-type]

    # verify_server_hostname: an agent with a client certificate is not a server
    with pytest.raises(ssl.SSLCertVerificationError, match="server.global.nomad"):
        await _handshake(client, server.outgoing, server.server_name)

    # verify_https_client: no certificate, or one from another CA, is refused
    bare = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    bare.load_verify_locations(cafile=str(ca.file))
    with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
        await _handshake(server, bare, "server.global.nomad")
    other = AgentTLS(CA(tmp_path, "other").config("client"))
    other.outgoing.load_verify_locations(cafile=str(ca.file))  # it trusts us; we do not trust it
    with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
        await _handshake(server, other.outgoing, "server.global.nomad")


def test_without_verify_https_client_a_certificate_is_optional(tmp_path: Path) -> None:
    asyncio.run(_test_without_verify_https_client_a_certificate_is_optional(tmp_path))


async def _test_without_verify_https_client_a_certificate_is_optional(tmp_path: Path) -> None:
    ca = CA(tmp_path)
    server = AgentTLS(ca.config("server"))
    bare = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    bare.load_verify_locations(cafile=str(ca.file))
    seen = await _handshake(server, bare, "server.global.nomad")
    assert peer_dns_names(seen["peer"]) == frozenset()  # type: ignore[arg-type]


def test_reload_rotates_in_place_and_keeps_old_on_bad_files(tmp_path: Path) -> None:
    asyncio.run(_test_reload_rotates_in_place_and_keeps_old_on_bad_files(tmp_path))


async def _test_reload_rotates_in_place_and_keeps_old_on_bad_files(tmp_path: Path) -> None:
    ca = CA(tmp_path)
    cfg = ca.config("server", verify_https_client=True)
    server = AgentTLS(cfg)
    client = AgentTLS(ca.config("client"))
    listener = server.listener
    first = await _handshake(server, client.outgoing, None)
    assert first["server_serial"] == _serial(cfg.cert_file)

    cert, key = ca.issue("server", tag="-new")
    server.reload(replace(cfg, cert_file=cert, key_file=key))
    assert server.listener is listener  # the live context, not a new one
    second = await _handshake(server, client.outgoing, None)
    assert second["server_serial"] == _serial(cert) != first["server_serial"]

    broken = tmp_path / "broken.pem"
    broken.write_text("not a certificate")
    with pytest.raises(ConfigError, match="tls.cert_file"):
        server.reload(replace(cfg, cert_file=str(broken)))
    third = await _handshake(server, client.outgoing, None)
    assert third["server_serial"] == _serial(cert)
    with pytest.raises(ConfigError, match="restart"):
        server.reload(TLSConfig())


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (TLSConfig(http=True, ca_file="/a", cert_file="/b", key_file="/c"), "must be equal"),
        (TLSConfig(http=True, rpc=True, cert_file="/b", key_file="/c"), "tls.ca_file: required"),
        (TLSConfig(tls_min_version="tls14"), "tls_min_version"),
    ],
)
def test_config_rules(cfg: TLSConfig, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_config(cfg)


def test_unreadable_files_are_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="tls.ca_file"):
        AgentTLS(TLSConfig(http=True, rpc=True, ca_file=str(tmp_path / "x"), cert_file="/b", key_file="/c"))
