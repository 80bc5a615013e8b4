"""``nomadd version``."""

from __future__ import annotations

from nomadd import VERSION


def run(args: list[str]) -> int:
    print(f"nomadd {VERSION}")
    return 0
