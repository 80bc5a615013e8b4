"""``nomadd tls ca create`` / ``tls cert create``: names, SANs, key usages, files (Nomad's)."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from nomadd.cli import tls_ca_create, tls_cert_create
from nomadd.helper.tlsutil import create_ca, create_cert


def _sans(cert: x509.Certificate) -> tuple[set[str], set[str]]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san.get_values_for_type(x509.DNSName)), {
        str(ip) for ip in san.get_values_for_type(x509.IPAddress)
    }


def _eku(cert: x509.Certificate) -> set[x509.ObjectIdentifier]:
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_ca_is_a_ca_that_signs_certificates() -> None:
    pem, key = create_ca()
    ca = x509.load_pem_x509_certificate(pem)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    assert ca.subject == ca.issuer
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    assert b"PRIVATE KEY" in key
    assert (ca.not_valid_after_utc - ca.not_valid_before_utc).days >= 5 * 365


@pytest.mark.parametrize(
    ("kind", "dns", "ips", "usages"),
    [
        (
            "server",
            {"server.r1.nomad", "localhost"},
            {"127.0.0.1"},
            {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH},
        ),
        (
            "client",
            {"client.r1.nomad", "localhost"},
            {"127.0.0.1"},
            {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH},
        ),
        ("cli", {"cli.r1.nomad", "localhost"}, set(), {ExtendedKeyUsageOID.CLIENT_AUTH}),
    ],
)
def test_certificate_names_and_usages(kind: str, dns: set[str], ips: set[str], usages: set[object]) -> None:
    ca_pem, ca_key = create_ca()
    pem, _ = create_cert(ca_pem, ca_key, kind=kind, region="r1")
    cert = x509.load_pem_x509_certificate(pem)
    ca = x509.load_pem_x509_certificate(ca_pem)
    assert _sans(cert) == (dns, ips)
    assert _eku(cert) == usages
    assert cert.subject.rfc4514_string() == f"CN={kind}.r1.nomad"
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    cert.verify_directly_issued_by(ca)
    assert 364 <= (cert.not_valid_after_utc - cert.not_valid_before_utc).days <= 366


def test_additional_names_and_addresses() -> None:
    ca_pem, ca_key = create_ca()
    pem, _ = create_cert(
        ca_pem, ca_key, kind="server", dns_names=["nomad.example.com"], ip_addresses=["10.0.0.7", "::1"]
    )
    dns, ips = _sans(x509.load_pem_x509_certificate(pem))
    assert dns == {"server.global.nomad", "localhost", "nomad.example.com"}
    assert ips == {"127.0.0.1", "10.0.0.7", str(ipaddress.ip_address("::1"))}


def test_bad_input_is_a_clear_error() -> None:
    ca_pem, ca_key = create_ca()
    other_pem, _ = create_ca()
    with pytest.raises(ValueError, match="does not belong to the CA"):
        create_cert(other_pem, ca_key, kind="server")
    with pytest.raises(ValueError, match="unknown certificate kind"):
        create_cert(ca_pem, ca_key, kind="root")
    with pytest.raises(ValueError, match="additional-ipaddress"):
        create_cert(ca_pem, ca_key, kind="server", ip_addresses=["not-an-ip"])
    with pytest.raises(ValueError, match="positive"):
        create_cert(ca_pem, ca_key, kind="server", days=0)


def test_cli_writes_nomads_file_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert tls_ca_create.run([]) == 0
    assert tls_cert_create.run(["-server", "-region", "eu"]) == 0
    assert tls_cert_create.run(["-client"]) == 0
    assert tls_cert_create.run(["-cli"]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(
        [
            "nomad-agent-ca.pem",
            "nomad-agent-ca-key.pem",
            "eu-server-nomad.pem",
            "eu-server-nomad-key.pem",
            "global-client-nomad.pem",
            "global-client-nomad-key.pem",
            "global-cli-nomad.pem",
            "global-cli-nomad-key.pem",
        ]
    )
    for p in tmp_path.glob("*-key.pem"):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    out = capsys.readouterr().out
    assert "WARNING: Server Certificates grants authority" in out
    assert "server.eu.nomad certificate saved to: eu-server-nomad.pem" in out
    # never overwritten; exactly one kind; a missing CA is an error, not a traceback
    assert tls_cert_create.run(["-cli"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert tls_cert_create.run(["-cli", "-server"]) == 1
    assert tls_cert_create.run(["-client", "-ca", str(tmp_path / "nope.pem")]) == 1
    assert "nope.pem" in capsys.readouterr().err
    assert tls_ca_create.run([]) == 1
