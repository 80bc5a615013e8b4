"""``nomadd operator raft list-peers [-stale]`` (Nomad's command/operator_raft_list.go).

Columns ``Node  ID  Address  State  Voter  RaftProtocol``, sorted by Node.
"""

from __future__ import annotations

from nomadd.api.operator import Operator
from nomadd.cli import meta

USAGE = "nomadd operator raft list-peers [options]"


def run(args: list[str]) -> int:
    fs = meta.new_flagset("operator raft list-peers")
    fs.bool("stale", "Answer from any server, not only the leader.")
    fs.bool("json", "Output the raft configuration as JSON.")
    parsed = meta.parse(fs, args, USAGE)
    if parsed is None:
        return 1
    opts, _ = parsed
    try:
        conf = Operator(meta.api_client(opts)).raft_configuration(stale=bool(opts.get("stale")))
    except meta.APIError as err:
        return meta.fail(f"Failed to retrieve raft configuration: {err}")
    if opts.get("json"):
        meta.print_json(conf)
        return 0
    rows = [["Node", "ID", "Address", "State", "Voter", "RaftProtocol"]]
    for s in sorted(conf.get("Servers") or [], key=lambda s: s["Node"]):
        state = "leader" if s.get("Leader") else "follower"
        voter = "true" if s.get("Voter") else "false"
        rows.append([s["Node"], s["ID"], s["Address"], state, voter, str(s.get("RaftProtocol", "3"))])
    print(meta.columnize(rows))
    return 0
