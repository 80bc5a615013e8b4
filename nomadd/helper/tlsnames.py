"""The names Nomad gives TLS roles and files (shared by the agent and ``nomadd tls``)."""

from __future__ import annotations

__all__ = ["ca_file_names", "cert_file_names", "role_name"]


def role_name(kind: str, region: str = "global", domain: str = "nomad") -> str:
    """The DNS name a certificate of ``kind`` carries, e.g. ``server.global.nomad``."""
    return f"{kind}.{region}.{domain}"


def ca_file_names(domain: str = "nomad") -> tuple[str, str]:
    return f"{domain}-agent-ca.pem", f"{domain}-agent-ca-key.pem"


def cert_file_names(kind: str, region: str = "global", domain: str = "nomad") -> tuple[str, str]:
    return f"{region}-{kind}-{domain}.pem", f"{region}-{kind}-{domain}-key.pem"
