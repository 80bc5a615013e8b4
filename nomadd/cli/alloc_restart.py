"""``nomadd alloc restart <alloc> [<task>]`` (Nomad's command/alloc_restart.go): restart the
allocation's running tasks (or one task) in place; the restart policy does not count it."""

from __future__ import annotations

from nomadd.api.allocations import Allocations
from nomadd.cli import meta
from nomadd.cli.alloc_common import find_alloc, group_tasks

__all__ = ["run"]

USAGE = "nomadd alloc restart [options] <allocation> [<task>]"


def run(args: list[str]) -> int:
    fs = meta.new_flagset("alloc restart")
    fs.string("task", "The task to restart (as the second argument).")
    parsed = meta.parse(fs, args, USAGE)
    if parsed is None:
        return 1
    opts, rest = parsed
    if not 1 <= len(rest) <= 2:
        return meta.fail(f"This command takes one or two arguments: <allocation> [<task>]\nUsage: {USAGE}")
    client = meta.api_client(opts)
    alloc = find_alloc(client, rest[0])
    if alloc is None:
        return 1
    task = rest[1] if len(rest) == 2 else str(opts.get("task") or "")
    if task and task not in group_tasks(alloc):
        return meta.fail(f'Could not find task named: "{task}"')
    try:
        Allocations(client).restart(alloc["ID"], task)
    except meta.APIError as err:
        return meta.fail(f"Failed to restart allocation:\n\n{err}")
    print(f"Restarted allocation {alloc['ID'][:8]}" + (f" task {task}" if task else ""))
    return 0
