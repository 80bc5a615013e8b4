"""``nomadd node eligibility -enable|-disable <node>`` (Nomad's command/node_eligibility.go)."""

from __future__ import annotations

from nomadd.api.nodes import Nodes
from nomadd.cli import meta
from nomadd.cli.node_status import resolve_node

USAGE = "nomadd node eligibility [options] <node>"


def run(args: list[str]) -> int:
    fs = meta.new_flagset("node eligibility")
    fs.bool("enable", "Mark the node as eligible for new allocations.")
    fs.bool("disable", "Mark the node as ineligible for new allocations.")
    parsed = meta.parse(fs, args, USAGE)
    if parsed is None:
        return 1
    opts, rest = parsed
    enable, disable = bool(opts.get("enable")), bool(opts.get("disable"))
    if enable == disable:
        return meta.fail(f"Either the '-enable' or '-disable' flag must be set\nUsage: {USAGE}")
    if len(rest) != 1:
        return meta.fail(f"This command takes one argument: <node>\nUsage: {USAGE}")
    nodes = Nodes(meta.api_client(opts))
    try:
        node_id = resolve_node(nodes, rest[0])
        if node_id is None:
            return 1
        nodes.toggle_eligibility(node_id, enable)
    except meta.APIError as err:
        return meta.fail(f"Error updating scheduling eligibility: {err}")
    state = "eligible" if enable else "ineligible"
    print(f'Node "{node_id}" scheduling eligibility set: {state} for scheduling')
    return 0
