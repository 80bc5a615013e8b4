from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from nomadd.drivers.logrotate import FileRotator
from nomadd.drivers.logs import follow_log, read_log

DEADLINE_S = 10.0


def write(tmp_path: Path, data: bytes, max_files: int = 10, max_bytes: int = 4) -> None:
    r = FileRotator(str(tmp_path), "web.stdout", max_files, max_bytes)
    r.write(data)
    r.close()


def test_read_across_files_with_offsets(tmp_path: Path) -> None:
    write(tmp_path, b"0123456789")  # files .0 "0123", .1 "4567", .2 "89"
    assert read_log(str(tmp_path), "web") == b"0123456789"
    assert read_log(str(tmp_path), "web", offset=5) == b"56789"
    assert read_log(str(tmp_path), "web", offset=3, origin="end") == b"789"
    assert read_log(str(tmp_path), "web", offset=100, origin="end") == b"0123456789"
    assert read_log(str(tmp_path), "web", offset=100) == b""
    assert read_log(str(tmp_path), "web", "stderr") == b""


def test_read_after_rotation_dropped_old_files(tmp_path: Path) -> None:
    write(tmp_path, b"0123456789", max_files=2)  # only .1 "4567" and .2 "89" remain
    assert read_log(str(tmp_path), "web") == b"456789"


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="stdout or stderr"):
        read_log(str(tmp_path), "web", "stdin")
    write(tmp_path, b"x")
    with pytest.raises(ValueError, match="origin"):
        read_log(str(tmp_path), "web", origin="middle")


def test_follow_sees_appends_and_rotation(tmp_path: Path) -> None:
    r = FileRotator(str(tmp_path), "web.stdout", 3, 4)
    r.write(b"ab")
    finished = asyncio.Event()

    async def main() -> bytes:
        got = b""
        async for chunk in follow_log(str(tmp_path), "web", done=finished.is_set, poll_s=0.01):
            got += chunk
            if got == b"ab":
                r.write(b"cdefghij")  # fills .0, .1 and starts .2
            elif got == b"abcdefghij":
                r.write(b"k")
                r.close()
                finished.set()
        return got

    assert asyncio.run(asyncio.wait_for(main(), DEADLINE_S)) == b"abcdefghijk"


def test_follow_from_end(tmp_path: Path) -> None:
    write(tmp_path, b"0123456789")

    async def main() -> bytes:
        got = b""
        async for chunk in follow_log(str(tmp_path), "web", offset=2, origin="end", done=lambda: True):
            got += chunk
        return got

    assert asyncio.run(asyncio.wait_for(main(), DEADLINE_S)) == b"89"
