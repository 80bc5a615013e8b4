"""``nomadd operator raft remove-peer -peer-id=<id> | -peer-address=<ip:port>``."""

from __future__ import annotations

from nomadd.api.operator import Operator
from nomadd.cli import meta

USAGE = "nomadd operator raft remove-peer [options]"


def run(args: list[str]) -> int:
    fs = meta.new_flagset("operator raft remove-peer")
    fs.string("peer-id", "The ID of the server to remove (see list-peers).")
    fs.string("peer-address", "The raft address (IP:port) of the server to remove.")
    parsed = meta.parse(fs, args, USAGE)
    if parsed is None:
        return 1
    opts, _ = parsed
    peer_id = str(opts.get("peer-id") or "")
    address = str(opts.get("peer-address") or "")
    if bool(peer_id) == bool(address):
        return meta.fail("Error: exactly one of -peer-id or -peer-address is required")
    op = Operator(meta.api_client(opts))
    try:
        if peer_id:
            op.raft_remove_peer_by_id(peer_id)
        else:
            op.raft_remove_peer_by_address(address)
    except meta.APIError as err:
        return meta.fail(f"Failed to remove raft peer: {err}")
    if peer_id:
        print(f'Removed peer with id "{peer_id}"')
    else:
        print(f'Removed peer with address "{address}"')
    return 0
