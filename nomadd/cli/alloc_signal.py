"""``nomadd alloc signal [-s SIGNAL] <alloc> [<task>]`` (Nomad's command/alloc_signal.go): send a
signal to the allocation's tasks (or one task); SIGKILL unless ``-s`` says otherwise."""

from __future__ import annotations

from nomadd.api.allocations_fs import AllocFS
from nomadd.cli import meta
from nomadd.cli.alloc_common import find_alloc, group_tasks

__all__ = ["run"]

USAGE = "nomadd alloc signal [options] <allocation> [<task>]"


def run(args: list[str]) -> int:
    fs = meta.new_flagset("alloc signal")
    fs.string("s", "The signal to send (default SIGKILL).")
    fs.string("task", "The task to signal (as the second argument).")
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
        AllocFS(client).signal(alloc["ID"], task, str(opts.get("s") or "SIGKILL"))
    except meta.APIError as err:
        return meta.fail(f"Error signalling allocation: {err}")
    return 0
