"""``nomadd operator root keyring list``: see :mod:`nomadd.cli.operator_root_keyring`."""

from __future__ import annotations

from nomadd.cli.operator_root_keyring import run_list

__all__ = ["run"]


def run(args: list[str]) -> int:
    return run_list(args)
