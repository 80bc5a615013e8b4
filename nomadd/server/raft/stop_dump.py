"""A server that stops while its Raft dump is being written waits for it, when it is nearly done.

What a restart costs is its last dump's load plus the journal since that dump. After a busy
spell a server writes a dump once it is quiet (``raft/dump.py``); stopped before that dump is
done, it is killed with it and the restart replays the whole journal instead: at a million
allocations a follower stopped 45 s after the placements, its quiet dump (at ``CHILD_NICE``,
behind a save and a catch-up) not done, replayed 355 MB and took 32.9 s to restart, against
about 15 s from a fresh dump. So a follower that stops waits for a dump in progress when what is
left of it costs less than the replay it saves: the dump's CPU so far per byte written gives
the CPU still to come (its file's expected size is its rows times the last dump's bytes per
row); the replay runs at about :data:`REPLAY_BYTES_PER_S` of journal; and the wait is bounded by
:data:`STOP_DUMP_WAIT_S`. Meanwhile the dump gets the server's priority (where the server may
raise it) and the tick thread reaps it and trims the journal as after any dump. HashiCorp Raft's
shutdown likewise lets a snapshot in progress finish. A leader does not wait: its leader loop has
stopped by then, and the cluster should elect another at once.
"""

from __future__ import annotations

import asyncio
import logging
import time

from nomadd.helper import procstat
from nomadd.server.raft import dump

__all__ = ["REPLAY_BYTES_PER_S", "STOP_DUMP_WAIT_S", "finish_dump", "remaining_s"]

logger = logging.getLogger("nomadd.server.raft")

STOP_DUMP_WAIT_S = 15.0  # the agent's shutdown allows for it (agent/command.py)
REPLAY_BYTES_PER_S = 16e6  # journal a restart replays per second (C1M entries, 2-core machine)
POLL_S = 0.1


def remaining_s(spent_s: float, written: int, expected: float, journal_bytes: int) -> float:
    """Seconds a stopping server should wait for the dump in progress, 0 not to wait: ``spent_s``
    of CPU (or of wall time) wrote ``written`` of ``expected`` bytes; waiting must cost less
    than replaying ``journal_bytes``, and at most :data:`STOP_DUMP_WAIT_S`."""
    if written <= 0 or spent_s <= 0 or expected <= 0:
        return 0.0
    left = max(expected - written, 0.0) * spent_s / written
    if left > min(STOP_DUMP_WAIT_S, journal_bytes / REPLAY_BYTES_PER_S):
        return 0.0
    return max(left, 1.0)


async def finish_dump(dumper: dump.DumpSerializer) -> None:
    """Wait for ``dumper``'s dump in progress, and its journal trim, if :func:`remaining_s` says
    so (at most :data:`STOP_DUMP_WAIT_S`); the tick thread still runs, and reaps it."""
    progress = dumper.in_progress()
    size = dumper.journal_bytes()
    if progress is None or dumper.bytes_per_row <= 0 or size <= dump.IDLE_DUMP_MIN_BYTES:
        return
    pid, elapsed, written, rows = progress
    cpu = procstat.cpu_seconds(pid)
    expect = remaining_s(cpu if cpu else elapsed, written, rows * dumper.bytes_per_row, size)
    if expect <= 0:
        return
    logger.info("raft stop waits for the dump in progress expected_s=%.1f journal_bytes=%d", expect, size)
    dumper.promote()
    t0 = time.monotonic()
    while dumper.writing() and time.monotonic() - t0 < STOP_DUMP_WAIT_S:
        await asyncio.sleep(POLL_S)
    done = not dumper.writing()
    logger.info("raft stop waited for the dump done=%s took_s=%.1f", done, time.monotonic() - t0)
