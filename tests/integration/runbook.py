"""Tests that follow a runbook (docs/runbooks/): every ``nomadd ...`` command they run must be a
command written in the runbook, run with the runbook's example addresses and paths replaced."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from tests.helpers import ROOT
from tests.integration.cluster import Agent

__all__ = ["Runbook"]


class Runbook:
    def __init__(self, name: str, section: str = "") -> None:
        """``docs/runbooks/<name>``, from the heading ``section`` on (all of it when empty)."""
        self.path: Path = ROOT / "docs" / "runbooks" / name
        self.section = section

    def commands(self) -> set[str]:
        """Every ``nomadd ...`` line of the runbook (its section), comments stripped."""
        text = self.path.read_text()
        if self.section:
            text = text[text.index(self.section) :]
        out = set()
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("nomadd "):
                out.add(re.sub(r"\s+#.*$", "", line).strip())
        return out

    def run(
        self,
        agent: Agent,
        command: str,
        subs: Mapping[str, str],
        timeout: float = 60,
        env: Mapping[str, str] | None = None,
    ) -> str:
        """Run one runbook command on ``agent`` with ``subs`` applied; its stdout (exit 0 asserted)."""
        assert command in self.commands(), f"not a command of {self.path.name}: {command}"
        for old, new in subs.items():
            command = command.replace(old, new)
        out = agent.cli(*command.split()[1:], timeout=timeout, env=env)
        assert out.returncode == 0, f"{command}:\n{out.stdout}\n{out.stderr}"
        return out.stdout
