"""Address parsing, bounded TCP frames and rate-limited drop warnings."""

from __future__ import annotations

import asyncio
import logging
import struct

import pytest

from nomadd.gossip.transport import (
    MAX_TCP_FRAME_BYTES,
    FrameError,
    RateLimitedLog,
    parse_host_port,
    read_frame,
)
from nomadd.structs.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.0.0.1", ("10.0.0.1", 4648)),
        ("10.0.0.1:5000", ("10.0.0.1", 5000)),
        (" server.example.com ", ("server.example.com", 4648)),
        ("[::1]", ("::1", 4648)),
        ("[::1]:7", ("::1", 7)),
        ("fe80::1", ("fe80::1", 4648)),
    ],
)
def test_parse_host_port(text: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(text) == expected


@pytest.mark.parametrize("text", ["", "a:b", "a:0", "a:70000", "[::1", "[::1]x"])
def test_parse_host_port_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_host_port(text)


def _read(data: bytes, *, eof: bool = True, timeout: float = 1.0) -> bytes:
    async def go() -> bytes:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        if eof:
            reader.feed_eof()
        return await read_frame(reader, timeout)

    return asyncio.run(go())


def test_read_frame_ok() -> None:
    assert _read(struct.pack("!I", 3) + b"abc") == b"abc"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\x00",
        struct.pack("!I", 0),
        struct.pack("!I", MAX_TCP_FRAME_BYTES + 1),
        struct.pack("!I", 10) + b"short",
    ],
    ids=["empty", "short header", "zero", "oversized", "truncated"],
)
def test_read_frame_rejects(data: bytes) -> None:
    with pytest.raises(FrameError):
        _read(data)


def test_read_frame_times_out_on_a_stalled_peer() -> None:
    with pytest.raises(FrameError, match="timed out"):
        _read(struct.pack("!I", 10) + b"abc", eof=False, timeout=0.05)


def test_rate_limited_log_suppresses_and_counts(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test.gossip.drops")
    limiter = RateLimitedLog(log, interval=3600)
    with caplog.at_level(logging.WARNING, logger="test.gossip.drops"):
        for _ in range(5):
            limiter.warning("k1", "dropped src=%s", "x")
        limiter.warning("k2", "dropped src=%s", "y")
    assert [r.getMessage() for r in caplog.records] == [
        "dropped src=x suppressed=0",
        "dropped src=y suppressed=0",
    ]
