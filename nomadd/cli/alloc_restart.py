"""``nomadd alloc restart <alloc> [<task>]`` (Nomad's command/alloc_restart.go): restart the
allocation's running tasks (or one task) in place; the restart policy does not count it."""

from __future__ import annotations

from nomadd.api.allocations import Allocations
from nomadd.cli import meta
from nomadd.cli.alloc_common import alloc_and_task

__all__ = ["run"]

USAGE = "nomadd alloc restart [options] <allocation> [<task>]"


def run(args: list[str]) -> int:
    fs = meta.new_flagset("alloc restart")
    fs.string("task", "The task to restart (as the second argument).")
    parsed = meta.parse(fs, args, USAGE)
    if parsed is None:
        return 1
    opts, rest = parsed
    found = alloc_and_task(opts, rest, USAGE)
    if found is None:
        return 1
    client, alloc, task = found
    try:
        Allocations(client).restart(alloc["ID"], task)
    except meta.APIError as err:
        return meta.fail(f"Failed to restart allocation:\n\n{err}")
    print(f"Restarted allocation {alloc['ID'][:8]}" + (f" task {task}" if task else ""))
    return 0
