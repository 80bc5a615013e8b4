"""``nomadd tls cert create -server|-client|-cli`` (Nomad's command/tls_cert_create.go).

Uses ``<domain>-agent-ca.pem`` and ``<domain>-agent-ca-key.pem`` from the current directory unless
``-ca`` / ``-key`` name other files; writes ``<region>-<kind>-<domain>.pem`` and its key there.
"""

from __future__ import annotations

from pathlib import Path

from nomadd.cli import meta
from nomadd.helper.flags import FlagSet
from nomadd.helper.tlsutil import CERT_DAYS, ca_file_names, role_name, write_cert

USAGE = "nomadd tls cert create [options]"

_SERVER_WARNING = """==> WARNING: Server Certificates grants authority to become a
    server and access all state in the cluster including root keys
    and all ACL tokens. Do not distribute them to production hosts
    that are not server nodes. Store them as securely as CA keys."""


def run(args: list[str]) -> int:
    fs = FlagSet("tls cert create")
    fs.strings("additional-dnsname", "An additional DNS name for the SANs (localhost is always included).")
    fs.strings(
        "additional-ipaddress", "An additional IP address for the SANs (127.0.0.1 is always included)."
    )
    fs.string("ca", "The CA certificate (default <domain>-agent-ca.pem).", placeholder="<path>")
    fs.string("key", "The CA key (default <domain>-agent-ca-key.pem).", placeholder="<path>")
    fs.bool("server", "Generate a server certificate.")
    fs.bool("client", "Generate a client certificate.")
    fs.bool("cli", "Generate a CLI certificate.")
    fs.int("days", f"Days the certificate is valid for (default {CERT_DAYS}).")
    fs.string("domain", 'The domain (default "nomad").')
    fs.string("region", 'The region (default "global").')
    parsed = meta.parse(fs, args, USAGE)
    if parsed is None:
        return 1
    opts, rest = parsed
    if rest:
        return meta.fail(f"This command takes no arguments\nUsage: {USAGE}")
    kinds = [k for k in ("server", "client", "cli") if opts.get(k)]
    if len(kinds) != 1:
        return meta.fail("==> Please provide exactly one of -server, -client or -cli")
    kind = kinds[0]
    domain = str(opts.get("domain") or "nomad")
    region = str(opts.get("region") or "global")
    default_ca, default_key = ca_file_names(domain)
    ca = Path(str(opts.get("ca") or default_ca))
    key = Path(str(opts.get("key") or default_key))
    if kind == "server":
        print(_SERVER_WARNING)
    print(f"==> Using CA file {ca} and CA key {key}")
    try:
        files = write_cert(
            Path.cwd(),
            ca,
            key,
            kind=kind,
            region=region,
            domain=domain,
            days=int(opts.get("days", CERT_DAYS)),  # type: ignore[call-overload]
            dns_names=tuple(str(n) for n in opts.get("additional-dnsname", ())),  # type: ignore[attr-defined]
            ip_addresses=tuple(str(n) for n in opts.get("additional-ipaddress", ())),  # type: ignore[attr-defined]
        )
    except (OSError, ValueError) as err:
        return meta.fail(f"==> {err}")
    print(f"==> {role_name(kind, region, domain)} certificate saved to: {files.cert.name}")
    print(f"==> {role_name(kind, region, domain)} certificate key saved to: {files.key.name}")
    return 0
