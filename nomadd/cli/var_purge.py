"""``nomadd var purge [-check-index=N] <path>``: delete a variable."""

from __future__ import annotations

from nomadd.api.variables import VariableConflictError, Variables
from nomadd.cli import meta

USAGE = "nomadd var purge [options] <path>"


def run(args: list[str]) -> int:
    fs = meta.new_flagset("var purge")
    fs.int("check-index", "Only delete if the variable's ModifyIndex equals this.")
    parsed = meta.parse(fs, args, USAGE)
    if parsed is None:
        return 1
    opts, rest = parsed
    if len(rest) != 1:
        return meta.fail(f"Usage: {USAGE}")
    cas = opts.get("check-index")
    try:
        Variables(meta.api_client(opts)).delete(rest[0], cas=int(cas) if isinstance(cas, int) else None)
    except VariableConflictError as err:
        idx = err.current.get("ModifyIndex") if err.current else None
        return meta.fail(f"Check-and-Set conflict: current ModifyIndex is {idx}")
    except meta.APIError as err:
        return meta.fail(f"Error purging variable: {err}")
    print(f'Successfully purged variable "{rest[0]}"!')
    return 0
