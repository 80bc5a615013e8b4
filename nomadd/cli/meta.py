"""Flags every API-calling command shares (Nomad's command/meta.go) and the output helpers."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace

from nomadd.api.client import APIError, Client, TLSOptions
from nomadd.helper.flags import FlagError, FlagSet

__all__ = ["APIError", "api_client", "columnize", "fail", "new_flagset", "parse", "parse_one", "print_json"]


def new_flagset(name: str) -> FlagSet:
    fs = FlagSet(name)
    fs.string(
        "address",
        "The address of the nomadd agent (env NOMAD_ADDR; default http://127.0.0.1:4646).",
        placeholder="<addr>",
    )
    fs.string("region", "The region of the servers to forward to (env NOMAD_REGION).")
    fs.string("token", "The SecretID of an ACL token (env NOMAD_TOKEN).")
    fs.string("namespace", "The target namespace (env NOMAD_NAMESPACE).")
    fs.string(
        "ca-cert", "A PEM CA file to verify the agent's certificate (env NOMAD_CACERT).", placeholder="<path>"
    )
    fs.string("ca-path", "A directory of PEM CA files (env NOMAD_CAPATH).", placeholder="<path>")
    fs.string("client-cert", "A PEM client certificate (env NOMAD_CLIENT_CERT).", placeholder="<path>")
    fs.string("client-key", "The client certificate's key (env NOMAD_CLIENT_KEY).", placeholder="<path>")
    fs.string("tls-server-name", "The name to check on the agent's certificate (env NOMAD_TLS_SERVER_NAME).")
    fs.bool("tls-skip-verify", "Do not verify the agent's certificate (env NOMAD_SKIP_VERIFY).")
    return fs


def parse(fs: FlagSet, args: Sequence[str], usage: str) -> tuple[dict[str, object], list[str]] | None:
    """Parse or print the error and usage; None means the caller should exit 1."""
    try:
        return fs.parse(args)
    except FlagError as err:
        if str(err) != "help requested":
            print(err, file=sys.stderr)
        print(f"Usage: {usage}\n\nGeneral Options:\n\n{fs.usage()}", file=sys.stderr)
        return None


def parse_one(
    fs: FlagSet, args: Sequence[str], usage: str, what: str
) -> tuple[dict[str, object], str] | None:
    """Parse flags and exactly one argument (``what``, e.g. ``<job>``); None means exit 1."""
    parsed = parse(fs, args, usage)
    if parsed is None:
        return None
    opts, rest = parsed
    if len(rest) != 1:
        fail(f"This command takes one argument: {what}\nUsage: {usage}")
        return None
    return opts, rest[0]


def api_client(opts: dict[str, object]) -> Client:
    env = TLSOptions.from_env()
    tls = replace(
        env,
        ca_cert=str(opts.get("ca-cert", env.ca_cert)),
        ca_path=str(opts.get("ca-path", env.ca_path)),
        client_cert=str(opts.get("client-cert", env.client_cert)),
        client_key=str(opts.get("client-key", env.client_key)),
        server_name=str(opts.get("tls-server-name", env.server_name)),
        skip_verify=bool(opts.get("tls-skip-verify", env.skip_verify)),
    )
    return Client(
        address=str(opts["address"]) if "address" in opts else None,
        token=str(opts["token"]) if "token" in opts else None,
        region=str(opts["region"]) if "region" in opts else os.environ.get("NOMAD_REGION"),
        tls=tls,
        namespace=str(opts["namespace"]) if "namespace" in opts else None,
    )


def fail(message: str) -> int:
    print(message, file=sys.stderr)
    return 1


def print_json(value: object) -> None:
    print(json.dumps(value, indent=4, sort_keys=False))


def columnize(rows: Sequence[Sequence[str]]) -> str:
    """columnize.SimpleFormat: columns separated by two spaces, left-aligned, no trailing spaces."""
    if not rows:
        return ""
    widths = [max(len(r[i]) if i < len(r) else 0 for r in rows) for i in range(max(map(len, rows)))]
    lines = []
    for r in rows:
        cells = [c.ljust(widths[i]) for i, c in enumerate(r)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


Body = Callable[[Client, dict[str, object], list[str]], int]


def command(
    name: str, args_usage: str, nargs: int, body: Body, flags: Callable[[FlagSet], None] | None = None
) -> Callable[[list[str]], int]:
    """A subcommand taking ``nargs`` arguments: parses the common flags (and ``flags``), then
    runs ``body(api client, options, arguments)``; an API error is printed, exit code 1."""
    usage = f"nomadd {name} [options] {args_usage}".rstrip()

    def run(args: list[str]) -> int:
        fs = new_flagset(name)
        if flags is not None:
            flags(fs)
        parsed = parse(fs, args, usage)
        if parsed is None:
            return 1
        opts, rest = parsed
        if len(rest) != nargs:
            return fail(f"This command takes {nargs} argument(s)\nUsage: {usage}")
        try:
            return body(api_client(opts), opts, rest)
        except APIError as err:
            return fail(f"Error: {err}")

    return run
