"""``nomadd operator raft transfer-leadership [-peer-address=<ip:port> | -peer-id=<id>]``
(Nomad's command/operator_raft_transfer.go). Without a peer, Raft picks the most caught-up one.
"""

from __future__ import annotations

from nomadd.api.operator import Operator
from nomadd.cli import meta

USAGE = "nomadd operator raft transfer-leadership [options]"


def run(args: list[str]) -> int:
    fs = meta.new_flagset("operator raft transfer-leadership")
    fs.string("peer-address", "The raft address (IP:port) of the server to hand leadership to.")
    fs.string("peer-id", "The ID of the server to hand leadership to (see list-peers).")
    parsed = meta.parse(fs, args, USAGE)
    if parsed is None:
        return 1
    opts, _ = parsed
    address = str(opts.get("peer-address") or "")
    peer_id = str(opts.get("peer-id") or "")
    if address and peer_id:
        return meta.fail("Error: specify at most one of -peer-id or -peer-address")
    try:
        out = Operator(meta.api_client(opts)).raft_transfer_leadership(address=address, peer_id=peer_id)
    except meta.APIError as err:
        return meta.fail(f"Error transferring leadership: {err}")
    target = (
        f'address "{address}"' if address else (f'id "{peer_id}"' if peer_id else "the most caught-up server")
    )
    print(f"Transferred leadership to peer with {target}; leader is now {out.get('Address') or 'unknown'}")
    return 0
