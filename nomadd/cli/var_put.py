"""``nomadd var put [-cas=N] <path> key=value...``: create or update a variable."""

from __future__ import annotations

from nomadd.api.variables import VariableConflictError, Variables
from nomadd.cli import meta

USAGE = "nomadd var put [options] <path> <key>=<value> [<key>=<value>...]"


def run(args: list[str]) -> int:
    fs = meta.new_flagset("var put")
    fs.int("check-index", "Only write if the variable's ModifyIndex equals this (0 = create).")
    parsed = meta.parse(fs, args, USAGE)
    if parsed is None:
        return 1
    opts, rest = parsed
    if len(rest) < 2 or any("=" not in kv for kv in rest[1:]):
        return meta.fail(f"Usage: {USAGE}")
    items = dict(kv.split("=", 1) for kv in rest[1:])
    cas = opts.get("check-index")
    try:
        var = Variables(meta.api_client(opts)).put(
            rest[0], items, cas=int(cas) if isinstance(cas, int) else None
        )
    except VariableConflictError as err:
        idx = err.current.get("ModifyIndex") if err.current else None
        return meta.fail(f"Check-and-Set conflict: current ModifyIndex is {idx}")
    except meta.APIError as err:
        return meta.fail(f"Error creating variable: {err}")
    print(f'Created variable "{var["Path"]}" with modify index {var["ModifyIndex"]}')
    return 0
