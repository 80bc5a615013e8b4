"""``nomadd operator snapshot restore <file>`` (Nomad's command/operator_snapshot_restore.go).

Replaces the state of every server with the archive's. The file is streamed to the agent as
Nomad's CLI does (never held whole), and checked here at the same time (format, checksums; read
as it streams, so its state is never held): a bad file is reported as such, whatever the upload
did, and the agent checks the archive again as it arrives, before anything is proposed. Checking
first and uploading after cost two seconds at a million allocations. While it uploads, the
servers keep serving the state they have (reads and writes as usual); the last chunk swaps in
the archive's state on every server in one Raft entry, and what was written meanwhile is
replaced with the rest. Each server holds its old and its new state together for a moment then
(0.6-0.8 GB more at a million allocations).
"""

from __future__ import annotations

import os
import threading

from nomadd.api.operator import Operator
from nomadd.cli import meta
from nomadd.helper.snapshot_archive import SnapshotError, check_archive_file

USAGE = "nomadd operator snapshot restore [options] <file>"


class _Check(threading.Thread):
    """:func:`check_archive_file` of ``path`` in a thread; ``error`` once joined."""

    def __init__(self, path: str) -> None:
        super().__init__(name="snapshot-check", daemon=True)
        self.path = path
        self.error: SnapshotError | None = None
        self.start()

    def run(self) -> None:
        try:
            check_archive_file(self.path)
        except SnapshotError as err:
            self.error = err


def run(args: list[str]) -> int:
    fs = meta.new_flagset("operator snapshot restore")
    parsed = meta.parse_one(fs, args, USAGE, "<file>")
    if parsed is None:
        return 1
    opts, path = parsed
    try:
        f = open(path, "rb")  # noqa: SIM115  (closed below)
    except OSError as err:
        return meta.fail(f"Error reading snapshot file {path}: {err.strerror or err}")
    failed = ""
    with f:
        check = _Check(path)
        try:
            Operator(meta.api_client(opts)).snapshot_restore(f, os.fstat(f.fileno()).st_size)
        except meta.APIError as err:
            failed = f"Failed to restore snapshot: {err}"
        except OSError as err:
            failed = f"Error reading snapshot file {path}: {err.strerror or err}"
        check.join()
    if check.error is not None:  # the agent refused it too (or never saw it): say why
        return meta.fail(f"Error verifying snapshot file {path}: {check.error}")
    if failed:
        return meta.fail(failed)
    print("Snapshot Restored")
    return 0
