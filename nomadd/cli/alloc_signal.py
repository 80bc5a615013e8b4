"""``nomadd alloc signal [-s SIGNAL] <alloc> [<task>]`` (Nomad's command/alloc_signal.go): send a
signal to the allocation's tasks (or one task); SIGKILL unless ``-s`` says otherwise."""

from __future__ import annotations

from nomadd.api.allocations_fs import AllocFS
from nomadd.cli import meta
from nomadd.cli.alloc_common import alloc_and_task

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
    found = alloc_and_task(opts, rest, USAGE)
    if found is None:
        return 1
    client, alloc, task = found
    try:
        AllocFS(client).signal(alloc["ID"], task, str(opts.get("s") or "SIGKILL"))
    except meta.APIError as err:
        return meta.fail(f"Error signalling allocation: {err}")
    return 0
