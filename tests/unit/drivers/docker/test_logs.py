"""Log copying resumes after the last frame written: no line twice, none lost."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from nomadd.drivers.docker.logs import LogTarget, parse_time_ns, stream_logs


def frame(stream: int, stamp: str, data: str) -> bytes:
    payload = f"{stamp} {data}".encode()
    return bytes([stream, 0, 0, 0]) + len(payload).to_bytes(4, "big") + payload


class FakeDocker:
    """Serves a container's log frames as the daemon does, honouring ``since`` (seconds)."""

    def __init__(self, frames: list[tuple[int, str, str]]) -> None:
        self.frames = frames
        self.asked: list[dict[str, Any]] = []

    @contextlib.asynccontextmanager
    async def _query(self, path: str, **kw: Any) -> AsyncIterator[Any]:
        params = kw["params"]
        self.asked.append(params)
        since = int(params.get("since", 0))
        reader = asyncio.StreamReader()
        for s, stamp, data in self.frames:
            if parse_time_ns(stamp.encode()) >= since * 1_000_000_000:
                reader.feed_data(frame(s, stamp, data))
        reader.feed_eof()

        class Resp:
            content = reader

        yield Resp()


def test_resume_skips_what_was_written(tmp_path: Path) -> None:
    target = LogTarget(
        log_dir=str(tmp_path),
        task_name="t",
        max_files=3,
        max_bytes=1 << 20,
        position_file=str(tmp_path / "pos.json"),
    )
    # podman stamps to the second: three lines share one stamp
    first = [
        (1, "2026-12-03T10:00:00Z", "a\n"),
        (1, "2026-12-03T10:00:01Z", "b\n"),
        (2, "2026-12-03T10:00:01Z", "e\n"),
    ]
    later = [(1, "2026-12-03T10:00:01Z", "c\n"), (1, "2026-12-03T10:00:02.5Z", "d\n")]
    asyncio.run(stream_logs(FakeDocker(first), "c1", target))
    docker = FakeDocker(first + later)  # the agent restarted: the daemon serves everything again
    asyncio.run(stream_logs(docker, "c1", target))
    assert docker.asked[0]["since"] == str(parse_time_ns(b"2026-12-03T10:00:01Z") // 1_000_000_000)
    assert (tmp_path / "t.stdout.0").read_text() == "a\nb\nc\nd\n"
    assert (tmp_path / "t.stderr.0").read_text() == "e\n"


def test_parse_time() -> None:
    assert parse_time_ns(b"1970-01-01T00:00:01.5Z") == 1_500_000_000
    assert parse_time_ns(b"1970-01-01T00:00:01.123456789Z") == 1_123_456_789
    assert parse_time_ns(b"1970-01-01T01:00:00+01:00") == 0
