"""``nomadd tls ca create`` (Nomad's command/tls_ca_create.go): a CA in the current directory."""

from __future__ import annotations

from pathlib import Path

from nomadd.cli import meta
from nomadd.helper.flags import FlagSet
from nomadd.helper.tlsutil import CA_DAYS, write_ca

USAGE = "nomadd tls ca create [options]"


def run(args: list[str]) -> int:
    fs = FlagSet("tls ca create")
    fs.string("common-name", "Common Name of the CA (default: Nomad Agent CA <serial>).")
    fs.int("days", f"Days the CA is valid for (default {CA_DAYS}).")
    fs.string("domain", 'Domain of the cluster (default "nomad").')
    fs.bool("name-constraint", "Restrict the CA to the domain and localhost (name constraints).")
    parsed = meta.parse(fs, args, USAGE)
    if parsed is None:
        return 1
    opts, rest = parsed
    if rest:
        return meta.fail(f"This command takes no arguments\nUsage: {USAGE}")
    try:
        files = write_ca(
            Path.cwd(),
            domain=str(opts.get("domain") or "nomad"),
            common_name=str(opts.get("common-name") or ""),
            days=int(opts.get("days", CA_DAYS)),  # type: ignore[call-overload]
            name_constraint=bool(opts.get("name-constraint")),
        )
    except (OSError, ValueError) as err:
        return meta.fail(f"==> {err}")
    print(f"==> CA certificate saved to: {files.cert.name}")
    print(f"==> CA certificate key saved to: {files.key.name}")
    return 0
