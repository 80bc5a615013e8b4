"""Log streaming across rotated files, from an offset or the end, and following new writes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from nomadd.client.logs import stream_logs


def _collect(d: Path, **kw: object) -> bytes:
    async def main() -> bytes:
        return b"".join([c async for c in stream_logs(str(d), "t.stdout", **kw)])  # type: ignore[arg-type]

    return asyncio.run(main())


def test_reads_across_rotations_with_origin(tmp_path: Path) -> None:
    (tmp_path / "t.stdout.0").write_bytes(b"abc")
    (tmp_path / "t.stdout.1").write_bytes(b"defg")
    (tmp_path / "t.stderr.0").write_bytes(b"nope")
    assert _collect(tmp_path) == b"abcdefg"
    assert _collect(tmp_path, offset=4) == b"efg"
    assert _collect(tmp_path, origin="end", offset=5) == b"cdefg"
    assert _collect(tmp_path, origin="end", offset=100) == b"abcdefg"
    assert _collect(tmp_path / "missing") == b""


@pytest.mark.slow
def test_follow_until_finished(tmp_path: Path) -> None:
    f0 = tmp_path / "t.stdout.0"
    f0.write_bytes(b"one\n")
    done = False

    async def writer() -> None:
        nonlocal done
        await asyncio.sleep(0.1)
        with f0.open("ab") as f:
            f.write(b"two\n")
        await asyncio.sleep(0.1)
        (tmp_path / "t.stdout.1").write_bytes(b"three\n")
        done = True

    async def main() -> bytes:
        w = asyncio.create_task(writer())
        out = b"".join(
            [c async for c in stream_logs(str(tmp_path), "t.stdout", follow=True, finished=lambda: done)]
        )
        await w
        return out

    assert asyncio.run(asyncio.wait_for(main(), 5)) == b"one\ntwo\nthree\n"
