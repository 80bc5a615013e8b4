"""``nomadd var get <path>``: print a variable as JSON."""

from __future__ import annotations

from nomadd.api.variables import Variables
from nomadd.cli import meta

USAGE = "nomadd var get [options] <path>"


def run(args: list[str]) -> int:
    fs = meta.new_flagset("var get")
    parsed = meta.parse(fs, args, USAGE)
    if parsed is None:
        return 1
    opts, rest = parsed
    if len(rest) != 1:
        return meta.fail(f"Usage: {USAGE}")
    try:
        var, _ = Variables(meta.api_client(opts)).read(rest[0])
    except meta.APIError as err:
        return meta.fail(f"Error retrieving variable: {err}")
    meta.print_json(var)
    return 0
