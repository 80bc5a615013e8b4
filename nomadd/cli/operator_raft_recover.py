"""``nomadd operator raft recover``: an offline command that runs here, with the agent's code
(:mod:`nomadd.agent.raft_recover_command`), as ``nomadd agent`` does."""

from __future__ import annotations

from nomadd.agent.raft_recover_command import run

__all__ = ["run"]
