"""Boolean query parameters, parsed as Nomad parses them (Go's ``strconv.ParseBool``)."""

from __future__ import annotations

from collections.abc import Mapping

from nomadd.structs.errors import ValidationError

__all__ = ["query_flag"]

_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def query_flag(query: Mapping[str, str], name: str) -> bool:
    """``?name=true``; a bare ``?name`` is true, an absent one false; anything else is a 400."""
    if name not in query:
        return False
    value = query[name]
    if value == "" or value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValidationError(f"Failed to parse value of {name!r} ({value[:32]!r}) as a bool")
