"""``nomadd operator root keyring rotate``: see :mod:`nomadd.cli.operator_root_keyring`."""

from __future__ import annotations

from nomadd.cli.operator_root_keyring import run_rotate

__all__ = ["run"]


def run(args: list[str]) -> int:
    return run_rotate(args)
