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
    "operator root keyring list": "nomadd.cli.operator_root_keyring_list",
    "operator gossip keyring": "nomadd.cli.operator_gossip_keyring",
    "operator root keyring rotate": "nomadd.cli.operator_root_keyring_rotate",
    "var put": "nomadd.cli.var_put",
    "var get": "nomadd.cli.var_get",
    "var list": "nomadd.cli.var_list",
    "var purge": "nomadd.cli.var_purge",
    "node status": "nomadd.cli.node_status",
    "node eligibility": "nomadd.cli.node_eligibility",
    "system gc": "nomadd.cli.system_gc",
    "alloc logs": "nomadd.cli.alloc_logs",
    "job run": "nomadd.cli.job_run",
    "job status": "nomadd.cli.job_status",
    "job stop": "nomadd.cli.job_stop",
    "eval status": "nomadd.cli.eval_status",
    "alloc status": "nomadd.cli.alloc_status",
    "node drain": "nomadd.cli.node_drain",
    "tls ca create": "nomadd.cli.tls_ca_create",
    "tls cert create": "nomadd.cli.tls_cert_create",
}

# One-line synopses shown by `nomadd` with no arguments (commands not listed show without one).
SYNOPSES: dict[str, str] = {
    "agent": "Runs a nomadd agent",
    "agent-info": "Display status information about the local agent",
    "version": "Prints the nomadd version",
    "operator discover": "Print the addresses a server entry resolves to right now",
    "operator keygen": "Generates a new encryption key",
    "server members": "Display a list of the known servers and their status",
    "server join": "Join server nodes together",
    "server force-leave": "Force a server into the 'left' state",
    "operator raft list-peers": "Display the current Raft peer configuration",
    "operator raft remove-peer": "Remove a Nomad server from the Raft configuration",
    "operator root keyring list": "Lists the root encryption keys of the servers' keyring",
    "operator gossip keyring": "Manages the gossip encryption keys of the servers",
    "operator root keyring rotate": "Makes a new active root encryption key",
    "var put": "Create or update a variable",
    "var get": "Read a variable",
    "var list": "List variables",
    "var purge": "Purge a variable",
    "node status": "Display status information about nodes",
    "node eligibility": "Toggle scheduling eligibility for a given node",
    "system gc": "Run the system garbage collection process",
    "alloc logs": "Streams the logs of a task",
    "job run": "Run a new job or update an existing job",
    "job status": "Display status information about a job",
    "job stop": "Stop a running job",
    "eval status": "Display evaluation status and placement failure reasons",
    "alloc status": "Display allocation status information and metadata",
    "node drain": "Toggle drain mode on a given node",
    "tls ca create": "Create a Certificate Authority for the cluster's TLS",
    "tls cert create": "Create a server, client or CLI certificate signed by the CA",
}
