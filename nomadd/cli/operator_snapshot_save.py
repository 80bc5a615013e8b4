"""``nomadd operator snapshot save [-stale] <file>`` (Nomad's command/operator_snapshot_save.go).

Downloads a point-in-time archive of the cluster state from the leader, checks it (format,
checksums) and writes it to ``<file>`` through a temporary file, so a failed save never leaves a
partial file under the final name.
"""

from __future__ import annotations

import io
import os

from nomadd.api.operator import Operator
from nomadd.cli import meta
from nomadd.helper.snapshot_archive import SnapshotError, read_archive_stream

USAGE = "nomadd operator snapshot save [options] <file>"


def run(args: list[str]) -> int:
    fs = meta.new_flagset("operator snapshot save")
    fs.bool("stale", "Take the snapshot on the server the agent talks to, not only the leader.")
    parsed = meta.parse_one(fs, args, USAGE, "<file>")
    if parsed is None:
        return 1
    opts, path = parsed
    try:
        archive, _ = Operator(meta.api_client(opts)).snapshot_save(stale=bool(opts.get("stale")))
    except meta.APIError as err:
        return meta.fail(f"Failed to get snapshot file: {err}")
    try:
        read_archive_stream(io.BytesIO(archive))  # checked as it streams: the state is never held
    except SnapshotError as err:
        return meta.fail(f"Error verifying snapshot file: {err}")
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(archive)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        return meta.fail(f"Failed to write snapshot file {path}: {err.strerror or err}")
    print(f"State file written to {path}")
    return 0
