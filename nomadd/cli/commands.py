"""The command table: words → module with ``run(args: list[str]) -> int``, imported lazily.

Each command lives in its own module (Nomad's command/<name>.go), so ``nomadd node status`` does
not import the agent, aiohttp or pysyncobj. Add one line per command.
"""

from __future__ import annotations

COMMANDS: dict[str, str] = {
    "agent": "nomadd.cli.agent",
    "agent-info": "nomadd.cli.agent_info",
    "version": "nomadd.cli.version",
    "operator keygen": "nomadd.cli.operator_keygen",
    "operator discover": "nomadd.cli.operator_discover",
    "server members": "nomadd.cli.server_members",
    "server join": "nomadd.cli.server_join",
    "server force-leave": "nomadd.cli.server_force_leave",
    "operator raft list-peers": "nomadd.cli.operator_raft_list_peers",
    "operator raft remove-peer": "nomadd.cli.operator_raft_remove_peer",
    "var put": "nomadd.cli.var_put",
    "var get": "nomadd.cli.var_get",
    "var list": "nomadd.cli.var_list",
    "var purge": "nomadd.cli.var_purge",
}

# One-line synopses shown by `nomadd` with no arguments (commands not listed show without one).
SYNOPSES: dict[str, str] = {
    "agent": "Runs a nomadd agent",
    "agent-info": "Display status information about the local agent",
    "version": "Prints the nomadd version",
    "operator keygen": "Generates a new encryption key",
    "server members": "Display a list of the known servers and their status",
    "server join": "Join server nodes together",
    "server force-leave": "Force a server into the 'left' state",
    "operator raft list-peers": "Display the current Raft peer configuration",
    "operator raft remove-peer": "Remove a Nomad server from the Raft configuration",
    "var put": "Create or update a variable",
    "var get": "Read a variable",
    "var list": "List variables",
    "var purge": "Purge a variable",
}
