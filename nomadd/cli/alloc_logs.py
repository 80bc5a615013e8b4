"""``nomadd alloc logs [-f] [-stderr] [-tail] [-n N] [-c BYTES] <alloc> [<task>]`` (Nomad's
command/alloc_logs.go): print a task's stdout (or stderr); ``-f`` follows new output until the
task ends or the command is interrupted."""

from __future__ import annotations

import sys
from typing import Any

from nomadd.api.allocations_fs import AllocFS
from nomadd.cli import meta
from nomadd.cli.alloc_common import find_alloc, group_tasks

USAGE = "nomadd alloc logs [options] <allocation> [<task>]"
DEFAULT_TAIL_LINES = 10
LINE_GUESS_BYTES = 200  # bytes fetched per requested line before trimming (Nomad: -n N lines)


def run(args: list[str]) -> int:
    fs = meta.new_flagset("alloc logs")
    fs.bool("f", "Stream the logs as they are written.")
    fs.bool("stderr", "Display stderr instead of stdout.")
    fs.bool("tail", "Show the end of the logs (with -n lines or -c bytes).")
    fs.int("n", "Number of lines to show with -tail.", DEFAULT_TAIL_LINES)
    fs.int("c", "Number of bytes to show with -tail.")
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
    tasks = group_tasks(alloc)
    if len(rest) == 2:
        task = rest[1]
        if task not in tasks:
            return meta.fail(f'Could not find task named: "{task}"')
    elif len(tasks) == 1:
        task = tasks[0]
    else:
        return meta.fail(
            f"Allocation {alloc['ID'][:8]} has multiple tasks; please specify one: {', '.join(tasks)}"
        )
    tail = bool(opts.get("tail"))
    n_opt, c_opt = opts.get("n"), opts.get("c")
    lines = n_opt if isinstance(n_opt, int) and n_opt > 0 else DEFAULT_TAIL_LINES
    nbytes = c_opt if isinstance(c_opt, int) else None
    origin, offset = "start", 0
    if tail:
        origin = "end"
        offset = nbytes if nbytes is not None else lines * LINE_GUESS_BYTES
    out = sys.stdout.buffer
    try:
        stream = AllocFS(client).logs(
            alloc["ID"],
            task,
            stderr=bool(opts.get("stderr")),
            follow=bool(opts.get("f")),
            origin=origin,
            offset=offset,
        )
        if tail and nbytes is None:  # keep only the last -n lines of what came back
            first = b"".join(_take_first(stream, offset))
            kept = first.splitlines(keepends=True)[-lines:]
            out.write(b"".join(kept))
            out.flush()
        for chunk in stream:
            out.write(chunk)
            out.flush()
    except meta.APIError as err:
        return meta.fail(f"Error reading logs: {err}")
    except KeyboardInterrupt:
        return 0
    return 0


def _take_first(stream: Any, limit: int) -> list[bytes]:
    got: list[bytes] = []
    size = 0
    while size < limit:
        try:
            chunk = next(stream)
        except StopIteration:
            break
        got.append(chunk)
        size += len(chunk)
    return got
