#!/usr/bin/env python3
"""Writes the nomadd(1) man page: packaging/man/nomadd.1.in with its COMMANDS section made from
the CLI's command table (nomadd/cli/commands.py: every command and its one-line synopsis), the
version from nomadd/__init__.py and the date of the newest packaging/debian/changelog entry.

The package build runs it (packaging/debian/rules, override_dh_installman), so the shipped page
always lists the commands the shipped program has. Standard library only: the build runs it with
the build machine's python3, before any venv exists.

Usage: scripts/gen_man.py [OUTPUT]   (default: standard output)
"""

from __future__ import annotations

import email.utils
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nomadd import __version__  # noqa: E402
from nomadd.cli.commands import COMMANDS, SYNOPSES  # noqa: E402

TEMPLATE = ROOT / "packaging" / "man" / "nomadd.1.in"
CHANGELOG = ROOT / "packaging" / "debian" / "changelog"


def roff(text: str) -> str:
    """Plain text as roff: backslashes and hyphens escaped, no line starting a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return re.sub(r"^([.'])", r"\\&\1", text, flags=re.M)


def changelog_date() -> str:
    for line in CHANGELOG.read_text().splitlines():
        if line.startswith(" -- "):
            stamp = line.split(">", 1)[1].strip()
            return email.utils.parsedate_to_datetime(stamp).strftime("%Y-%m-%d")
    raise SystemExit(f"{CHANGELOG}: no trailer line with a date")


def commands_section() -> str:
    out = []
    for name in sorted(COMMANDS):
        out += [".TP", f'.B "{roff(name)}"', roff(SYNOPSES.get(name) or "(no synopsis)")]
    out.append(".PP")
    out.append("Every command takes \\fB\\-help\\fR for its options and arguments.")
    return "\n".join(out)


def render() -> str:
    text = TEMPLATE.read_text()
    for key, value in (
        ("@DATE@", changelog_date()),
        ("@VERSION@", __version__),
        ("@COMMANDS@", commands_section()),
    ):
        if key not in text:
            raise SystemExit(f"{TEMPLATE}: no {key} placeholder")
        text = text.replace(key, value)
    return text


def main(argv: list[str]) -> int:
    page = render()
    if argv:
        Path(argv[0]).write_text(page)
    else:
        sys.stdout.write(page)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
