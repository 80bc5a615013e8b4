"""``nomadd operator snapshot restore <file>`` (Nomad's command/operator_snapshot_restore.go).

Replaces the state of every server with the archive's. The file is checked here first (format,
checksums; read as it streams, so its state is never held), and again by the agent before
anything changes. While it uploads, the servers keep serving the state they have (reads and
writes as usual); the last chunk swaps in the archive's state on every server in one Raft
entry, and what was written meanwhile is replaced with the rest. Each server holds its old
and its new state together for a moment then (0.6-0.8 GB more at a million allocations).
"""

from __future__ import annotations

from nomadd.api.operator import Operator
from nomadd.cli import meta
from nomadd.helper.snapshot_archive import SnapshotError, check_archive_file

USAGE = "nomadd operator snapshot restore [options] <file>"


def run(args: list[str]) -> int:
    fs = meta.new_flagset("operator snapshot restore")
    parsed = meta.parse_one(fs, args, USAGE, "<file>")
    if parsed is None:
        return 1
    opts, path = parsed
    try:
        check_archive_file(path)
        with open(path, "rb") as f:
            archive = f.read()
    except SnapshotError as err:
        return meta.fail(f"Error verifying snapshot file {path}: {err}")
    except OSError as err:
        return meta.fail(f"Error reading snapshot file {path}: {err.strerror or err}")
    try:
        Operator(meta.api_client(opts)).snapshot_restore(archive)
    except meta.APIError as err:
        return meta.fail(f"Failed to restore snapshot: {err}")
    print("Snapshot Restored")
    return 0
