"""A cluster CA and agent certificates, as ``nomad tls ca create`` / ``nomad tls cert create`` make.

Keys are ECDSA P-256 (Nomad's choice). The CA is valid 5 years by default, certificates 1 year.
File names follow Nomad: ``<domain>-agent-ca.pem`` / ``<domain>-agent-ca-key.pem`` for the CA,
``<region>-<kind>-<domain>.pem`` / ``...-key.pem`` for a certificate. A certificate's name says
its role, and ``verify_server_hostname`` checks it (docs/configuration.md §tls):

* ``-server``: ``server.<region>.<domain>``, serverAuth + clientAuth (servers call each other);
* ``-client``: ``client.<region>.<domain>``, serverAuth + clientAuth (client agents serve HTTP too);
* ``-cli``: ``cli.<region>.<domain>``, clientAuth only.

``localhost`` and ``127.0.0.1`` are always in the SANs of server and client certificates, as in
Nomad. Key files are written 0600.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from nomadd.helper.tlsnames import ca_file_names, cert_file_names, role_name

__all__ = [
    "CA_DAYS",
    "CERT_DAYS",
    "KINDS",
    "IssuedFiles",
    "ca_file_names",
    "cert_file_names",
    "create_ca",
    "create_cert",
    "role_name",
    "write_ca",
    "write_cert",
]

CA_DAYS = 5 * 365
CERT_DAYS = 365
KINDS = ("server", "client", "cli")


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _ski(key: ec.EllipticCurvePrivateKey) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(key.public_key())


def create_ca(
    *, common_name: str = "", days: int = CA_DAYS, domain: str = "nomad", name_constraint: bool = False
) -> tuple[bytes, bytes]:
    """A self-signed CA: (certificate PEM, key PEM)."""
    if days <= 0:
        raise ValueError("-days must be a positive number of days")
    key = _new_key()
    serial = x509.random_serial_number()
    cn = common_name or f"Nomad Agent CA {serial}"
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "nomadd"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Nomad"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(_ski(key), critical=False)
    )
    if name_constraint:
        builder = builder.add_extension(
            x509.NameConstraints(
                permitted_subtrees=[x509.DNSName(domain), x509.DNSName("localhost")],
                excluded_subtrees=None,
            ),
            critical=True,
        )
    cert = builder.sign(key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def create_cert(
    ca_pem: bytes,
    ca_key_pem: bytes,
    *,
    kind: str,
    region: str = "global",
    domain: str = "nomad",
    days: int = CERT_DAYS,
    dns_names: Sequence[str] = (),
    ip_addresses: Sequence[str] = (),
) -> tuple[bytes, bytes]:
    """A certificate for ``kind`` (server, client, cli) signed by the CA: (cert PEM, key PEM)."""
    if kind not in KINDS:
        raise ValueError(f"unknown certificate kind {kind!r} (server, client or cli)")
    if days <= 0:
        raise ValueError("-days must be a positive number of days")
    ca = x509.load_pem_x509_certificate(ca_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError("the CA key must be an ECDSA or RSA private key")
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if ca.public_key().public_bytes(*spki) != ca_key.public_key().public_bytes(*spki):
        raise ValueError("the CA key does not belong to the CA certificate")
    main = role_name(kind, region, domain)
    names = [main, "localhost", *dns_names]
    ips = [] if kind == "cli" else ["127.0.0.1"]
    ips += list(ip_addresses)
    try:
        ip_sans = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in dict.fromkeys(ips)]
    except ValueError as err:
        raise ValueError(f"-additional-ipaddress: {err}") from None
    san = [x509.DNSName(n) for n in dict.fromkeys(names)] + ip_sans
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
    if kind != "cli":
        usages.insert(0, ExtendedKeyUsageOID.SERVER_AUTH)
    key = _new_key()
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, main)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(_ski(key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuedFiles:
    cert: Path
    key: Path


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Write a file that must not exist yet (never overwrite a key or a certificate)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _write_pair(cert_path: Path, key_path: Path, cert: bytes, key: bytes) -> IssuedFiles:
    for p in (cert_path, key_path):
        if p.exists():
            raise FileExistsError(f"{p} already exists")
    _write_new(cert_path, cert, 0o644)
    _write_new(key_path, key, 0o600)
    return IssuedFiles(cert=cert_path, key=key_path)


def write_ca(
    directory: Path,
    *,
    domain: str = "nomad",
    common_name: str = "",
    days: int = CA_DAYS,
    name_constraint: bool = False,
) -> IssuedFiles:
    """Create the CA and write its two files into ``directory``."""
    cert, key = create_ca(common_name=common_name, days=days, domain=domain, name_constraint=name_constraint)
    cert_name, key_name = ca_file_names(domain)
    return _write_pair(directory / cert_name, directory / key_name, cert, key)


def write_cert(
    directory: Path,
    ca_file: Path,
    ca_key_file: Path,
    *,
    kind: str,
    region: str = "global",
    domain: str = "nomad",
    days: int = CERT_DAYS,
    dns_names: Sequence[str] = (),
    ip_addresses: Sequence[str] = (),
) -> IssuedFiles:
    """Create a certificate signed by the CA in the given files and write it into ``directory``."""
    cert, key = create_cert(
        ca_file.read_bytes(),
        ca_key_file.read_bytes(),
        kind=kind,
        region=region,
        domain=domain,
        days=days,
        dns_names=dns_names,
        ip_addresses=ip_addresses,
    )
    cert_name, key_name = cert_file_names(kind, region, domain)
    return _write_pair(directory / cert_name, directory / key_name, cert, key)
