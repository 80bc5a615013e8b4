"""Go-style command-line flags, as Nomad's CLI parses them.

``-name value``, ``-name=value`` and ``--name`` all work; boolean flags take no value (``-dev``)
or an explicit one (``-dev=false``). Parsing stops at the first argument that is not a flag, or
after ``--``. Repeatable flags collect every value in order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

__all__ = ["Flag", "FlagError", "FlagSet"]


class FlagError(Exception):
    """The command line is wrong; the message is Go's (``flag provided but not defined: -x``)."""


@dataclass(slots=True)
class Flag:
    name: str
    help: str
    kind: str  # "string", "bool", "int", "list"
    default: object = None
    placeholder: str = ""
    split: str = ""  # for "list": also split each value on this separator


@dataclass(slots=True)
class FlagSet:
    """A named set of flags; ``parse`` returns the values that were set and the positional rest."""

    name: str
    flags: dict[str, Flag] = field(default_factory=dict)

    def string(self, name: str, help: str, default: str | None = None, placeholder: str = "") -> None:
        self.flags[name] = Flag(name, help, "string", default, placeholder or "<value>")

    def bool(self, name: str, help: str) -> None:
        self.flags[name] = Flag(name, help, "bool", False)

    def int(self, name: str, help: str, default: int | None = None) -> None:
        self.flags[name] = Flag(name, help, "int", default, "<num>")

    def strings(self, name: str, help: str, placeholder: str = "", split: str = "") -> None:
        self.flags[name] = Flag(name, help, "list", (), placeholder or "<value>", split)

    def parse(self, args: Sequence[str]) -> tuple[dict[str, object], list[str]]:
        """Parse ``args``. Only flags that appeared are in the returned dict."""
        values: dict[str, object] = {}
        i = 0
        while i < len(args):
            arg = args[i]
            if arg == "--":
                return values, list(args[i + 1 :])
            if not arg.startswith("-") or arg == "-":
                break
            body = arg[2:] if arg.startswith("--") else arg[1:]
            name, eq, inline = body.partition("=")
            flag = self.flags.get(name)
            if flag is None:
                if name in ("h", "help"):
                    raise FlagError("help requested")
                raise FlagError(f"flag provided but not defined: -{name}")
            if flag.kind == "bool":
                values[name] = _parse_bool(name, inline) if eq else True
                i += 1
                continue
            if eq:
                raw = inline
            else:
                if i + 1 >= len(args):
                    raise FlagError(f"flag needs an argument: -{name}")
                raw = args[i + 1]
                i += 1
            i += 1
            if flag.kind == "int":
                try:
                    values[name] = int(raw)
                except ValueError:
                    raise FlagError(f'invalid value "{raw}" for flag -{name}: parse error') from None
            elif flag.kind == "list":
                parts = [p.strip() for p in raw.split(flag.split)] if flag.split else [raw]
                existing = values.get(name, ())
                assert isinstance(existing, tuple)
                values[name] = existing + tuple(p for p in parts if p)
            else:
                values[name] = raw
        return values, list(args[i:])

    def usage(self) -> str:
        lines = []
        for f in sorted(self.flags.values(), key=lambda f: f.name):
            head = f"  -{f.name}" if f.kind == "bool" else f"  -{f.name}={f.placeholder}"
            lines.append(head)
            lines.extend(f"    {line}" for line in f.help.splitlines())
            lines.append("")
        return "\n".join(lines).rstrip() + "\n"


def _parse_bool(name: str, raw: str) -> bool:
    table: dict[str, Callable[[], bool]] = {
        "1": lambda: True,
        "t": lambda: True,
        "true": lambda: True,
        "TRUE": lambda: True,
        "True": lambda: True,
        "0": lambda: False,
        "f": lambda: False,
        "false": lambda: False,
        "FALSE": lambda: False,
        "False": lambda: False,
    }
    if raw not in table:
        raise FlagError(f'invalid boolean value "{raw}" for -{name}: parse error')
    return table[raw]()
