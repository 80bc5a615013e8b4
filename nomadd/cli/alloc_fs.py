"""``nomadd alloc fs [-stat] [-tail] [-c BYTES] <alloc> [<path>]`` (Nomad's command/alloc_fs.go):
list a directory of the allocation, or print a file (``-stat``: its file info; ``-tail``: its
last ``-c`` bytes). Paths are relative to the allocation directory and cannot leave it."""

from __future__ import annotations

import sys

from nomadd.api.allocations_fs import AllocFS
from nomadd.cli import meta
from nomadd.cli.alloc_common import find_alloc

__all__ = ["run"]

USAGE = "nomadd alloc fs [options] <allocation> [<path>]"
DEFAULT_TAIL_BYTES = 1024


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            break
    return f"{value:.1f} {unit}"


def run(args: list[str]) -> int:
    fs = meta.new_flagset("alloc fs")
    fs.bool("stat", "Show the file info of the path instead of its contents.")
    fs.bool("tail", "Show the end of a file (-c bytes).")
    fs.bool("f", "Follow the file as it is written (until it is deleted or the allocation ends).")
    fs.int("c", "Number of bytes to show with -tail.", DEFAULT_TAIL_BYTES)
    fs.bool("H", "Machine friendly output (exact sizes).")
    parsed = meta.parse(fs, args, USAGE)
    if parsed is None:
        return 1
    opts, rest = parsed
    if not 1 <= len(rest) <= 2:
        return meta.fail(f"This command takes one or two arguments: <allocation> [<path>]\nUsage: {USAGE}")
    client = meta.api_client(opts)
    alloc = find_alloc(client, rest[0])
    if alloc is None:
        return 1
    path = rest[1] if len(rest) == 2 else "/"
    afs = AllocFS(client)
    exact = bool(opts.get("H"))
    try:
        info = afs.stat(alloc["ID"], path)
        if opts.get("stat") or info.get("IsDir"):
            items = afs.ls(alloc["ID"], path) if info.get("IsDir") and not opts.get("stat") else [info]
            rows = [["Mode", "Size", "Modified Time", "Name"]]
            for i in items:
                size = int(i.get("Size") or 0)
                name = str(i.get("Name", "")) + ("/" if i.get("IsDir") else "")
                when = str(i.get("ModTime", ""))
                rows.append([str(i.get("FileMode", "")), str(size) if exact else _size(size), when, name])
            print(meta.columnize(rows))
            return 0
        size = int(info.get("Size") or 0)
        if opts.get("f"):
            count = opts.get("c")
            back = (
                (count if isinstance(count, int) and count > 0 else DEFAULT_TAIL_BYTES)
                if opts.get("tail")
                else 0
            )
            origin = "end" if opts.get("tail") else "start"
            for chunk in afs.stream(alloc["ID"], path, offset=back, origin=origin):
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
            return 0
        if opts.get("tail"):
            count = opts.get("c")
            n = count if isinstance(count, int) and count > 0 else DEFAULT_TAIL_BYTES
            data = afs.read_at(alloc["ID"], path, max(0, size - n), n)
        else:
            data = afs.cat(alloc["ID"], path)
    except meta.APIError as err:
        return meta.fail(f"Error reading {path}: {err}")
    except KeyboardInterrupt:
        return 0
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
    return 0
