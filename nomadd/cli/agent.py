"""``nomadd agent``: the one CLI command that runs the agent in this process.

It is the documented exception to "cli imports only api": it hands over to nomadd.agent.command.
"""

from __future__ import annotations


def run(args: list[str]) -> int:
    from nomadd.agent.command import run as run_agent

    return run_agent(args)
