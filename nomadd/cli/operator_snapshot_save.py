"""``nomadd operator snapshot save [-stale] <file>`` (Nomad's command/operator_snapshot_save.go).

Downloads a point-in-time archive of the cluster state from the leader into a temporary file,
checking it (format, checksums, the agent's ``Digest``) as it arrives, then renames it to
``<file>``: the archive is never held whole, and a failed save never leaves a partial file under
the final name.
"""

from __future__ import annotations

import contextlib
import os
from typing import BinaryIO

from nomadd.api.operator import Operator, SnapshotDownload
from nomadd.cli import meta
from nomadd.helper.snapshot_archive import SnapshotError, read_archive_stream

USAGE = "nomadd operator snapshot save [options] <file>"
_READ_BYTES = 1 << 20


class _WriteFailed(Exception):
    """Writing the file failed (not an OSError: the archive check takes those for a bad archive)."""

    def __init__(self, err: OSError) -> None:
        super().__init__(err.strerror or str(err))


class _Tee:
    """The download, each piece read from it also written to ``out``."""

    def __init__(self, download: SnapshotDownload, out: BinaryIO) -> None:
        self._download = download
        self._out = out

    def read(self, size: int = -1, /) -> bytes:
        data = self._download.read(size)
        try:
            self._out.write(data)
        except OSError as err:
            raise _WriteFailed(err) from None
        return data


def _download(op: Operator, stale: bool, tmp: str) -> None:
    """The archive into ``tmp``, checked as it arrives (APIError, SnapshotError, _WriteFailed)."""
    try:
        f = open(tmp, "wb")  # noqa: SIM115  (closed below; its error is the file's)
    except OSError as err:
        raise _WriteFailed(err) from None
    with f, op.snapshot_save_stream(stale=stale) as (download, _):
        tee = _Tee(download, f)
        read_archive_stream(tee)  # the state is never held, compressed or not
        while tee.read(_READ_BYTES):  # anything after the gzip stream's end (nomadd sends none)
            pass
        if not download.verified():
            raise SnapshotError("the archive's sha256 is not the Digest the agent sent")
        try:
            f.flush()
            os.fsync(f.fileno())
        except OSError as err:
            raise _WriteFailed(err) from None


def run(args: list[str]) -> int:
    fs = meta.new_flagset("operator snapshot save")
    fs.bool("stale", "Take the snapshot on the server the agent talks to, not only the leader.")
    parsed = meta.parse_one(fs, args, USAGE, "<file>")
    if parsed is None:
        return 1
    opts, path = parsed
    tmp = f"{path}.tmp"
    try:
        _download(Operator(meta.api_client(opts)), bool(opts.get("stale")), tmp)
        os.replace(tmp, path)
    except meta.APIError as err:
        return _failed(tmp, f"Failed to get snapshot file: {err}")
    except SnapshotError as err:
        return _failed(tmp, f"Error verifying snapshot file: {err}")
    except _WriteFailed as err:
        return _failed(tmp, f"Failed to write snapshot file {path}: {err}")
    except OSError as err:
        return _failed(tmp, f"Failed to write snapshot file {path}: {err.strerror or err}")
    print(f"State file written to {path}")
    return 0


def _failed(tmp: str, message: str) -> int:
    with contextlib.suppress(OSError):
        os.unlink(tmp)
    return meta.fail(message)
