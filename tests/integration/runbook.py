"""Tests that follow a runbook (docs/runbooks/) literally.

A test never writes a ``nomadd`` command of its own for a runbook step: it names the command as
the runbook prints it, :meth:`Runbook.command` checks that the runbook does print it (trailing
``# comment`` stripped) and only then applies the test's substitutions (its addresses, paths and
secrets for the runbook's examples). Configuration files, policy files and environment blocks
are read out of the runbook too: a fenced block preceded by the marker ``<!-- test: NAME -->``
is :meth:`Runbook.block` ``NAME``. So the runbook cannot drift from what the test ran.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from pathlib import Path

from tests.helpers import ROOT
from tests.integration.cluster import Agent

__all__ = ["Runbook", "substitute"]

_FENCE = re.compile(r"^```")
_MARKER = re.compile(r"^<!--\s*test:\s*(\S+)\s*-->$")


def substitute(text: str, subs: Mapping[str, str]) -> str:
    """``text`` with each key of ``subs`` replaced by its value, longest keys first (so a path
    is replaced before a directory it starts with)."""
    for old in sorted(subs, key=len, reverse=True):
        text = text.replace(old, subs[old])
    return text


class Runbook:
    def __init__(self, name: str, section: str = "") -> None:
        """``docs/runbooks/<name>``, from the heading ``section`` on (all of it when empty)."""
        self.path: Path = ROOT / "docs" / "runbooks" / name
        self.section = section

    def _text(self) -> str:
        text = self.path.read_text()
        return text[text.index(self.section) :] if self.section else text

    def _blocks(self) -> list[tuple[str, str]]:
        """Every fenced block as (marker name or "", content)."""
        out: list[tuple[str, str]] = []
        marker, inside, lines = "", False, []
        for line in self._text().splitlines():
            stripped = line.strip()
            if _FENCE.match(stripped):
                if inside:
                    out.append((marker, "\n".join(lines) + "\n"))
                    marker, lines = "", []
                inside = not inside
                continue
            if inside:
                lines.append(line)
            elif m := _MARKER.match(stripped):
                marker = m.group(1)
            elif stripped:
                marker = ""  # a marker names the block right after it
        return out

    def commands(self) -> set[str]:
        """Every ``nomadd ...`` line of the runbook (its section), comments stripped."""
        out = set()
        for line in self._text().splitlines():
            line = line.strip()
            if line.startswith("nomadd "):
                out.add(re.sub(r"\s+#.*$", "", line).strip())
        return out

    def command(self, command: str, subs: Mapping[str, str] | None = None) -> list[str]:
        """The argv of ``command`` (which the runbook must print) with ``subs`` applied."""
        assert command in self.commands(), f"not a command of {self.path.name}: {command}"
        return shlex.split(substitute(command, subs or {}))

    def run(
        self,
        agent: Agent,
        command: str,
        subs: Mapping[str, str],
        timeout: float = 60,
        env: Mapping[str, str] | None = None,
    ) -> str:
        """Run one runbook command on ``agent`` with ``subs`` applied; its stdout (exit 0 asserted)."""
        out = agent.cli(*self.command(command, subs)[1:], timeout=timeout, env=env)
        assert out.returncode == 0, f"{command}:\n{out.stdout}\n{out.stderr}"
        return out.stdout

    def block(self, name: str, subs: Mapping[str, str] | None = None) -> str:
        """The fenced block after ``<!-- test: name -->``, with ``subs`` applied."""
        found = [block for marker, block in self._blocks() if marker == name]
        assert len(found) == 1, f"{self.path.name}: {len(found)} blocks marked {name!r}"
        return substitute(found[0], subs or {})

    def exports(self, name: str, subs: Mapping[str, str] | None = None) -> dict[str, str]:
        """The ``export K=V`` lines of block ``name`` as an environment."""
        env = {}
        for line in self.block(name, subs).splitlines():
            line = re.sub(r"\s+#.*$", "", line.strip())
            if line.startswith("export "):
                key, _, value = line.removeprefix("export ").partition("=")
                env[key] = " ".join(shlex.split(value))
        return env
