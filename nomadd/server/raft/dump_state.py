"""What a dump file this server wrote holds of the store (:class:`DumpState`), and how a dump
file is told from the one written after it (:func:`file_id`)."""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["DumpState", "file_id"]


def file_id(path: str) -> tuple[int, int] | None:
    """The file's (inode, mtime), None when there is none."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


@dataclass(frozen=True, slots=True)
class DumpState:
    """The store's part of a dump file this server wrote: its own gzip member (``raft/dump.py``'s
    module doc), which an operator snapshot save copies into its archive as it is."""

    path: str
    file_id: tuple[int, int] | None  # the file's (inode, mtime): a dump written since is another
    index: int  # the store's index in it
    offset: int  # of the member in the file
    length: int  # of the member (compressed)
    size: int  # of the store's dump (uncompressed)
    sha256: str  # of the store's dump (uncompressed, hex)
    tables: frozenset[str]  # the tables with rows in it

    def current(self) -> bool:
        """The file is still the one this describes (no newer dump or leader snapshot)."""
        return file_id(self.path) == self.file_id
