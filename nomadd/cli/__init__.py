"""``nomadd`` command-line entry point: finds the command in the table and runs it."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence
from typing import cast

from nomadd.cli.commands import COMMANDS, SYNOPSES

__all__ = ["load", "main"]


def _usage() -> str:
    width = max(len(k) for k in COMMANDS) + 4
    lines = ["Usage: nomadd [-version] [-help] <command> [args]", "", "Available commands are:"]
    for name in sorted(COMMANDS):
        lines.append(f"    {name.ljust(width)}{SYNOPSES.get(name, '')}".rstrip())
    return "\n".join(lines)


def find_command(args: Sequence[str]) -> tuple[str | None, list[str]]:
    """The longest run of leading words that names a command, and the rest of the arguments."""
    words = []
    for a in args:
        if a.startswith("-"):
            break
        words.append(a)
    for n in range(len(words), 0, -1):
        name = " ".join(words[:n])
        if name in COMMANDS:
            return name, list(args[n:])
    return None, list(args)


def load(name: str) -> Callable[[list[str]], int]:
    """The ``run(args) -> exit code`` of command ``name`` ("module" or "module:function")."""
    module_name, _, func = COMMANDS[name].partition(":")
    return cast(Callable[[list[str]], int], getattr(importlib.import_module(module_name), func or "run"))


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "-help", "--help", "help"):
        print(_usage(), file=sys.stderr if args else sys.stdout)
        return 0 if args else 1
    if args[0] in ("-v", "-version", "--version"):
        args = ["version"]
    name, rest = find_command(args)
    if name is None:
        prefix = " ".join(a for a in args if not a.startswith("-"))
        subs = sorted(k for k in COMMANDS if k.startswith(prefix + " "))
        if subs:
            print(f"Usage: nomadd {prefix} <subcommand> [options] [args]\n", file=sys.stderr)
            print("Subcommands:", file=sys.stderr)
            for s in subs:
                print(f"    {s[len(prefix) + 1 :].ljust(24)}{SYNOPSES.get(s, '')}", file=sys.stderr)
            return 1
        print(f"nomadd: unknown command {prefix!r}\n\n{_usage()}", file=sys.stderr)
        return 1
    command = load(name)
    try:
        code = command(rest)
    except KeyboardInterrupt:
        return 130
    return code
