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
}

# One-line synopses shown by `nomadd` with no arguments (commands not listed show without one).
SYNOPSES: dict[str, str] = {
    "agent": "Runs a nomadd agent",
    "agent-info": "Display status information about the local agent",
    "version": "Prints the nomadd version",
    "operator keygen": "Generates a new encryption key",
}
