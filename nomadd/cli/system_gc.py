"""``nomadd system gc``: force garbage collection of down nodes (and other GC kinds) now."""

from __future__ import annotations

from nomadd.api.system import System
from nomadd.cli import meta

USAGE = "nomadd system gc [options]"


def run(args: list[str]) -> int:
    fs = meta.new_flagset("system gc")
    parsed = meta.parse(fs, args, USAGE)
    if parsed is None:
        return 1
    opts, rest = parsed
    if rest:
        return meta.fail(f"This command takes no arguments\nUsage: {USAGE}")
    try:
        System(meta.api_client(opts)).garbage_collect()
    except meta.APIError as err:
        return meta.fail(f"Error running system garbage-collection: {err}")
    return 0
