"""``nomadd operator root keyring list|rotate`` (Nomad's command/operator_root_keyring_*.go).

Columns ``Key  State  Create Time`` (``-verbose``: the full key ID); ``-json`` prints the API's.
"""

from __future__ import annotations

import time
from typing import Any

from nomadd.api.keyring import Keyring
from nomadd.cli import meta

USAGE_LIST = "nomadd operator root keyring list [options]"
USAGE_ROTATE = "nomadd operator root keyring rotate [options]"


def _table(keys: list[dict[str, Any]], verbose: bool) -> str:
    rows = [["Key", "State", "Create Time"]]
    for k in keys:
        key_id = str(k.get("KeyID", ""))
        rows.append(
            [
                key_id if verbose else key_id[:8],
                str(k.get("State", "")),
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(k["CreateTime"]) // 1_000_000_000)),
            ]
        )
    return meta.columnize(rows)


def _run(name: str, usage: str, args: list[str]) -> tuple[Keyring, dict[str, object]] | None:
    fs = meta.new_flagset(name)
    fs.bool("verbose", "Show full key IDs.")
    fs.bool("json", "Output as JSON.")
    parsed = meta.parse(fs, args, usage)
    if parsed is None:
        return None
    opts, _ = parsed
    return Keyring(meta.api_client(opts)), opts


def run_list(args: list[str]) -> int:
    got = _run("operator root keyring list", USAGE_LIST, args)
    if got is None:
        return 1
    keyring, opts = got
    try:
        keys = keyring.list_keys()
    except meta.APIError as err:
        return meta.fail(f"error: {err}")
    if opts.get("json"):
        meta.print_json(keys)
    else:
        print(_table(keys, bool(opts.get("verbose"))))
    return 0


def run_rotate(args: list[str]) -> int:
    got = _run("operator root keyring rotate", USAGE_ROTATE, args)
    if got is None:
        return 1
    keyring, opts = got
    try:
        key = keyring.rotate()
    except meta.APIError as err:
        return meta.fail(f"error: {err}")
    if opts.get("json"):
        meta.print_json(key)
    else:
        print(_table([key], bool(opts.get("verbose"))))
    return 0
