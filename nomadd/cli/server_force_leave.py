"""``nomadd server force-leave [-prune] <node>`` (Nomad's command/server_force_leave.go)."""

from __future__ import annotations

from nomadd.api.members import Members
from nomadd.cli import meta

USAGE = "nomadd server force-leave [options] <node>"


def run(args: list[str]) -> int:
    fs = meta.new_flagset("server force-leave")
    fs.bool("prune", "Remove the member from the member list at once.")
    parsed = meta.parse(fs, args, USAGE)
    if parsed is None:
        return 1
    opts, rest = parsed
    if len(rest) != 1:
        print("This command takes one argument: <node>")
        print(f"Usage: {USAGE}")
        return 1
    try:
        reply = Members(meta.api_client(opts)).force_leave(rest[0], prune=bool(opts.get("prune")))
    except meta.APIError as err:
        return meta.fail(f"Error force-leaving server {rest[0]}: {err}")
    if not reply.get("Changed", True):
        return meta.fail(f"Error force-leaving server {rest[0]}: {reply.get('Message', '')}")
    return 0
