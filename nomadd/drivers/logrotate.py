"""Nomad-style rotated log files: ``<dir>/<task>.stdout.0``, ``.stdout.1``, ...

A :class:`FileRotator` appends to the highest existing index (so a restarted executor continues
where the last one stopped), opens the next index once a file reaches ``max_bytes`` and deletes
the oldest so that at most ``max_files`` remain (Nomad's ``logmon`` FileRotator).
"""

from __future__ import annotations

import os
import re

LOG_FILE_MODE = 0o644


def log_files(directory: str, base: str) -> list[tuple[int, str]]:
    """(index, path) of the existing ``<base>.<n>`` files, oldest first."""
    pattern = re.compile(re.escape(base) + r"\.(\d+)$")
    out = []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    for name in names:
        m = pattern.match(name)
        if m:
            out.append((int(m.group(1)), os.path.join(directory, name)))
    return sorted(out)


class FileRotator:
    """Writes bytes to rotated files. Not thread-safe: one writer per stream."""

    def __init__(self, directory: str, base: str, max_files: int, max_bytes: int) -> None:
        self.directory = directory
        self.base = base
        self.max_files = max(1, max_files)
        self.max_bytes = max(1, max_bytes)
        existing = log_files(directory, base)
        self.index = existing[-1][0] if existing else 0
        self._fd = -1
        self._size = 0
        self._open()

    def path(self, index: int) -> str:
        return os.path.join(self.directory, f"{self.base}.{index}")

    def _open(self) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        self._fd = os.open(self.path(self.index), flags, LOG_FILE_MODE)
        self._size = os.fstat(self._fd).st_size

    def _rotate(self) -> None:
        os.close(self._fd)
        self.index += 1
        self._open()
        for idx, path in log_files(self.directory, self.base):
            if idx <= self.index - self.max_files:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            room = self.max_bytes - self._size
            if room <= 0:
                self._rotate()
                continue
            n = os.write(self._fd, view[:room])
            self._size += n
            view = view[n:]

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
