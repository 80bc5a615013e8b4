"""nomadd/server/forked.py: work done by a forked child, its result read back."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from nomadd.server.forked import CHILD_NICE, run_forked


def test_the_result_is_computed_in_another_process() -> None:
    big = b"x" * (3 * 1024 * 1024)  # more than a pipe holds: read while the child writes

    def produce() -> bytes:
        return str(os.getpid()).encode() + b":" + big

    out = asyncio.run(run_forked(produce))
    pid, _, rest = out.partition(b":")
    assert int(pid) != os.getpid()
    assert rest == big


def test_a_failure_is_raised_with_the_childs_traceback() -> None:
    def produce() -> bytes:
        raise ValueError("planted failure")

    with pytest.raises(RuntimeError, match="planted failure"):
        asyncio.run(run_forked(produce))


def test_cancelling_the_caller_kills_the_child(tmp_path: object) -> None:
    started: list[float] = []

    def produce() -> bytes:
        time.sleep(60)
        return b""

    async def main() -> None:
        task = asyncio.ensure_future(run_forked(produce))
        await asyncio.sleep(0.3)
        started.append(time.monotonic())
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert time.monotonic() - started[0] < 5


def test_the_child_runs_at_a_lower_cpu_priority() -> None:
    """A dump child competing with three servers for two cores must not starve their Raft
    heartbeats: it runs CHILD_NICE steps nicer than the server."""
    niceness = int(asyncio.run(run_forked(lambda: str(os.nice(0)).encode())))
    assert niceness == min(19, os.nice(0) + CHILD_NICE)


def test_a_niceness_can_be_given() -> None:
    niceness = int(asyncio.run(run_forked(lambda: str(os.nice(0)).encode(), nice=3)))
    assert niceness == min(19, os.nice(0) + 3)
