"""Decode API JSON strictly against Nomad's Go ``api`` structs (tests/data/nomad_api_structs.json,
written by scripts/gen_nomad_api_structs.py): every key Nomad always sends is present, every value
has its Go type (``null`` only where Go has a pointer, slice, map or interface), and times are
RFC 3339 as Go's encoding/json writes them (Nomad's zero time is ``0001-01-01T00:00:00Z``)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

STRUCTS: dict[str, list[list[Any]]] = json.loads(
    (Path(__file__).resolve().parent / "data" / "nomad_api_structs.json").read_text()
)
_INTS = {
    "int",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "time.Duration",
}
_FLOATS = {"float32", "float64"}
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")


def _fields(name: str) -> list[tuple[str, str, bool]]:
    """(key, Go type, may be absent): absent is allowed for ``omitempty`` and for keys Nomad's
    server struct does not have (the api package decodes those to their zero value)."""
    out: list[tuple[str, str, bool]] = []
    for key, typ, omitempty, sent in STRUCTS[name]:
        if key == "...":
            if typ in STRUCTS:
                out += _fields(typ)
            continue
        out.append((key, typ, omitempty or not sent))
    return out


def problems(value: Any, typ: str, path: str) -> list[str]:
    """What is wrong with ``value`` as Go type ``typ`` (empty list: it decodes)."""
    if typ.startswith("*"):
        return [] if value is None else problems(value, typ[1:], path)
    if typ.startswith("[]"):
        if value is None:
            return []
        if typ == "[]byte":
            return [] if isinstance(value, str) else [f"{path}: expected base64 string, got {value!r:.60}"]
        if not isinstance(value, list):
            return [f"{path}: expected array, got {type(value).__name__}"]
        return [p for i, v in enumerate(value) for p in problems(v, typ[2:], f"{path}[{i}]")]
    if typ.startswith("map["):
        if value is None:
            return []
        if not isinstance(value, dict):
            return [f"{path}: expected object, got {type(value).__name__}"]
        depth, i = 0, 4
        while True:  # the value type starts after the key type's closing bracket
            depth += {"[": 1, "]": -1}.get(typ[i], 0)
            if depth < 0:
                break
            i += 1
        return [p for k, v in value.items() for p in problems(v, typ[i + 1 :], f"{path}[{k!r}]")]
    if typ in ("string",):
        return [] if isinstance(value, str) else [f"{path}: expected string, got {value!r:.60}"]
    if typ == "bool":
        return [] if isinstance(value, bool) else [f"{path}: expected bool, got {value!r:.60}"]
    if typ in _INTS:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return [] if ok else [f"{path}: expected integer, got {value!r:.60}"]
    if typ in _FLOATS:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{path}: expected number, got {value!r:.60}"]
    if typ == "time.Time":
        ok = isinstance(value, str) and _RFC3339.match(value) is not None
        return [] if ok else [f"{path}: expected an RFC 3339 time, got {value!r:.60}"]
    if typ in STRUCTS:
        return decode(value, typ, path)
    return []  # interface{}, or a named type outside the checked set


def decode(obj: Any, struct: str, path: str = "") -> list[str]:
    path = path or struct
    if not isinstance(obj, dict):
        return [f"{path}: expected object {struct}, got {type(obj).__name__}"]
    out: list[str] = []
    for key, typ, omitempty in _fields(struct):
        if key not in obj:
            if not omitempty:
                out.append(f"{path}.{key}: missing ({struct}.{key} {typ})")
            continue
        out += problems(obj[key], typ, f"{path}.{key}")
    return out
