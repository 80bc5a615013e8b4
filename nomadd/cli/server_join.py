"""``nomadd server join <addr>...`` (Nomad's command/server_join.go)."""

from __future__ import annotations

from nomadd.api.members import Members
from nomadd.cli import meta

USAGE = "nomadd server join [options] <addr> [<addr>...]"


def run(args: list[str]) -> int:
    fs = meta.new_flagset("server join")
    parsed = meta.parse(fs, args, USAGE)
    if parsed is None:
        return 1
    opts, addrs = parsed
    if not addrs:
        print("One or more server addresses required.")
        print(f"Usage: {USAGE}")
        return 1
    try:
        reply = Members(meta.api_client(opts)).join(addrs)
    except meta.APIError as err:
        return meta.fail(f"Error joining: {err}")
    n = int(reply.get("num_joined", 0))
    error = str(reply.get("error") or "")
    if error and n == 0:
        return meta.fail(f"Error joining: {error}")
    if error:
        print(f"Joined {n} servers successfully but got warning: {error}")
    else:
        print(f"Joined {n} servers successfully")
    return 0
