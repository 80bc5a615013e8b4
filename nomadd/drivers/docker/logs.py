"""A container's stdout and stderr, copied into the task's rotated log files.

The container's log stream (``GET /containers/<id>/logs?follow=1&timestamps=1``, Docker's
multiplexed frames: 8-byte header, then ``<RFC 3339 time> <data>``) is written through the same
:class:`~nomadd.drivers.logrotate.FileRotator` the executor uses, into
``<alloc>/alloc/logs/<task>.stdout.N`` / ``.stderr.N``, so ``alloc logs`` reads docker tasks as it
reads the others.

A position file records the time of the last frame written and how many frames with that time
were written. A streamer started again (after the agent restarted) asks for the frames ``since``
that second and skips those at or before the position, so no line is written twice. (podman
stamps frames to the second; Docker to the nanosecond: both are handled by comparing parsed times.)
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import os
from dataclasses import dataclass
from typing import Any

from nomadd.drivers.logrotate import FileRotator

logger = logging.getLogger(__name__)

__all__ = ["LogTarget", "parse_time_ns", "stream_logs"]

HEADER_BYTES = 8
STREAMS = {1: "stdout", 2: "stderr"}


@dataclass(frozen=True, slots=True, kw_only=True)
class LogTarget:
    """Where a task's logs go (kept in the task handle so a restarted agent resumes them)."""

    log_dir: str
    task_name: str
    max_files: int
    max_bytes: int
    position_file: str


def parse_time_ns(stamp: bytes) -> int:
    """``2026-12-03T16:56:11Z`` or ``...11.123456789Z`` (or with an offset) → ns since the epoch."""
    text = stamp.decode("ascii", errors="replace")
    frac = 0
    if "." in text:
        head, rest = text.split(".", 1)
        digits = ""
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        frac = int((digits + "000000000")[:9])
        text = head + rest
    dt = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(dt.timestamp()) * 1_000_000_000 + frac


def _read_position(path: str) -> tuple[int, int]:
    try:
        with open(path) as f:
            data = json.load(f)
        return int(data["time_ns"]), int(data["count"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0, 0


def _write_position(path: str, time_ns: int, count: int) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"time_ns": time_ns, "count": count}, f)
    os.replace(tmp, path)


class _Writer:
    def __init__(self, target: LogTarget) -> None:
        os.makedirs(target.log_dir, exist_ok=True)
        self.rotators = {
            name: FileRotator(
                target.log_dir, f"{target.task_name}.{name}", target.max_files, target.max_bytes
            )
            for name in STREAMS.values()
        }

    def close(self) -> None:
        for r in self.rotators.values():
            r.close()


async def stream_logs(docker: Any, container_id: str, target: LogTarget) -> None:
    """Copy the container's logs until its stream ends (the container exited)."""
    done_ns, done_count = await asyncio.to_thread(_read_position, target.position_file)
    params: dict[str, Any] = {"stdout": "1", "stderr": "1", "follow": "1", "timestamps": "1"}
    if done_ns:
        params["since"] = str(done_ns // 1_000_000_000)
    writer = await asyncio.to_thread(_Writer, target)
    last_ns, count = done_ns, done_count
    seen_at_done = 0  # frames stamped exactly done_ns seen in this stream
    try:
        async with docker._query(
            f"containers/{container_id}/logs", method="GET", params=params, timeout=None
        ) as resp:
            content = resp.content
            while True:
                try:
                    header = await content.readexactly(HEADER_BYTES)
                except asyncio.IncompleteReadError:
                    return
                size = int.from_bytes(header[4:8], "big")
                frame = await content.readexactly(size)
                name = STREAMS.get(header[0])
                stamp, _, data = frame.partition(b" ")
                try:
                    t = parse_time_ns(stamp)
                except ValueError:
                    t, data = last_ns, frame  # no timestamp: keep the whole frame
                if t < done_ns:
                    continue
                if t == done_ns and done_ns:
                    seen_at_done += 1
                    if seen_at_done <= done_count:
                        continue
                if name is None:
                    continue
                writer.rotators[name].write(data)
                count = count + 1 if t == last_ns else 1
                last_ns = t
                _write_position(target.position_file, last_ns, count)
    except (OSError, asyncio.IncompleteReadError) as err:
        logger.warning("container log stream ended container=%s err=%s", container_id[:12], err)
    except Exception as err:  # aiodocker's DockerError and aiohttp's errors: no traceback in the log
        logger.warning("container log stream failed container=%s err=%s", container_id[:12], err)
    finally:
        with contextlib.suppress(OSError):
            writer.close()
