"""Writing a Raft full dump file (format 2; :mod:`nomadd.server.raft.dump`'s doc has the format,
:mod:`nomadd.server.raft.dump_read` reads it back)."""

from __future__ import annotations

import gzip
import os
import pickle
from typing import Any

import msgpack  # type: ignore[import-untyped]

from nomadd.helper.snapshot_writer import write_member_in_line, write_member_into
from nomadd.server.raft.dump_read import END, MAGIC
from nomadd.server.raft.journal import fsync_enabled
from nomadd.server.state.store import StateSnapshot
from nomadd.server.state.store_codec import write_dump

__all__ = ["write_dump_file"]


def _member(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=1, mtime=0)


def write_dump_file(path: str, snap: StateSnapshot, raft_data: Any, threaded: bool = True) -> dict[str, Any]:
    """Encode ``snap`` and pysyncobj's ``raft_data`` into ``path`` (format 2, see the module
    doc), piece by piece, fsync'ed; returns where the store's member lies (``offset``,
    ``length``) and its uncompressed ``size`` and ``sha256``. ``threaded``: the store's member
    is hashed and compressed by a second thread while this one encodes (zlib and hashlib release
    the GIL; a dump something waits for: in line a C1M dump took ~27 s, not ~20 s); else in
    line (an entry-paced dump beside placements takes one core at most)."""
    with open(path, "wb") as f:
        tail = pickle.dumps(raft_data, protocol=4)
        f.write(_member(MAGIC + len(tail).to_bytes(8, "big") + tail))
        f.flush()
        offset = f.tell()
        fd = f.fileno()
        if threaded:
            end, size, sha256 = write_member_into(fd, offset, lambda sink: write_dump(snap, sink))
        else:
            end, size, sha256 = write_member_in_line(fd, offset, lambda sink: write_dump(snap, sink))
        last = _member(msgpack.packb([END, snap.index]))
        if os.pwrite(fd, last, end) != len(last):
            raise OSError(f"short write of {path}")
        if fsync_enabled():
            os.fsync(fd)
    return {"offset": offset, "length": end - offset, "size": size, "sha256": sha256}
