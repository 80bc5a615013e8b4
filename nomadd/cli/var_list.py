"""``nomadd var list [<prefix>]``: paths and modify indexes of variables."""

from __future__ import annotations

from nomadd.api.variables import Variables
from nomadd.cli import meta

USAGE = "nomadd var list [options] [<prefix>]"


def run(args: list[str]) -> int:
    fs = meta.new_flagset("var list")
    fs.bool("json", "Output the variables' metadata as JSON.")
    parsed = meta.parse(fs, args, USAGE)
    if parsed is None:
        return 1
    opts, rest = parsed
    try:
        found, _ = Variables(meta.api_client(opts)).list(prefix=rest[0] if rest else "")
    except meta.APIError as err:
        return meta.fail(f"Error listing variables: {err}")
    if opts.get("json"):
        meta.print_json(found)
        return 0
    if not found:
        print("No variables found")
        return 0
    rows = [["Namespace", "Path", "Last Updated"]]
    rows += [[v["Namespace"], v["Path"], str(v["ModifyIndex"])] for v in found]
    print(meta.columnize(rows))
    return 0
