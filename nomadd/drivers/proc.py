"""Process helpers shared by the process-based drivers: identity (pid + start time), liveness,
waiting for a process that is not our child, and group signalling."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time

from nomadd.helper.procstat import stat_fields

logger = logging.getLogger(__name__)

# Poll interval when pidfd_open is unavailable (old kernels, some sandboxes).
POLL_INTERVAL_S = 0.05
POLL_INTERVAL_MAX_S = 0.25


def read_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks after boot) from /proc/<pid>/stat, or None."""
    rest = stat_fields(pid)
    try:
        return (rest[0].decode(), int(rest[19])) if rest is not None else None
    except (IndexError, ValueError):
        return None


def start_time_of(pid: int) -> int:
    """Field 22 of /proc/<pid>/stat; 0 when the process is gone."""
    st = read_stat(pid)
    return st[1] if st else 0


def is_alive(pid: int, start_time: int) -> bool:
    """True while ``pid`` runs and is the same process (same start time); zombies are dead."""
    if pid <= 0:
        return False
    st = read_stat(pid)
    if st is None:
        return False
    state, started = st
    if state in ("Z", "X", "x"):
        return False
    return start_time == 0 or started == start_time


async def alive(pid: int, start_time: int) -> bool:
    """:func:`is_alive` off the event loop (it reads /proc)."""
    return await asyncio.to_thread(is_alive, pid, start_time)


async def wait_exit(pid: int, start_time: int, timeout: float | None = None) -> bool:
    """Wait until the process exits; True if it did, False on timeout.

    Works for processes that are not our children: a pidfd when the kernel offers one
    (readable once the process has exited), else polling /proc.
    """
    if not await alive(pid, start_time):
        return True
    pidfd = -1
    with contextlib.suppress(OSError, AttributeError):
        pidfd = os.pidfd_open(pid)
    if pidfd >= 0:
        try:
            # The pid might have been reused between the check and pidfd_open: re-check.
            if not await alive(pid, start_time):
                return True
            loop = asyncio.get_running_loop()
            done = loop.create_future()

            def _ready() -> None:
                if not done.done():
                    done.set_result(None)

            loop.add_reader(pidfd, _ready)
            try:
                await asyncio.wait_for(done, timeout)
                return True
            except TimeoutError:
                return not await alive(pid, start_time)
            finally:
                loop.remove_reader(pidfd)
        finally:
            os.close(pidfd)
    deadline = None if timeout is None else time.monotonic() + timeout
    interval = POLL_INTERVAL_S
    while await alive(pid, start_time):
        if deadline is not None and time.monotonic() >= deadline:
            return False
        await asyncio.sleep(interval)
        interval = min(interval * 2, POLL_INTERVAL_MAX_S)
    return True


def kill_group(pgid: int, sig: int) -> bool:
    """Signal a process group; False when it no longer exists."""
    if pgid <= 1:
        return False
    try:
        os.killpg(pgid, sig)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        logger.warning("not permitted to signal process group pgid=%d sig=%d", pgid, sig)
        return False


def group_is_ours(pgid: int, leader_start_time: int) -> bool:
    """Whether process group ``pgid`` (= our task's pid) can still be the task's group.

    Linux does not reuse a pid while a process group or session of that number exists. So if a
    process with that pid runs with another start time, our group is gone and the number now
    belongs to someone else: never signal it. If the leader (same start time, maybe a zombie)
    runs, or no process has that pid (only orphans of our group can hold it), it is ours.
    """
    st = read_stat(pgid)
    return st is None or st[1] == leader_start_time


def kill_pid(pid: int, start_time: int, sig: int) -> bool:
    """Signal one process if it is still the one we started; False when it is gone."""
    if not is_alive(pid, start_time):
        return False
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


def signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return str(sig)
