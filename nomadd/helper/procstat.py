"""``/proc/<pid>/stat`` read once for the agent's two users of it: the drivers (a process's
state, parent, group, session and start time: ``drivers/proc.py``, ``drivers/adopt.py``) and a
server stopping while its forked Raft dump runs (the child's CPU time: ``server/raft/stop_dump.py``)."""

from __future__ import annotations

import os

__all__ = ["TICKS_PER_S", "cpu_seconds", "stat_fields"]

TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100  # utime/stime unit


def stat_fields(pid: int) -> list[bytes] | None:
    """The fields of /proc/<pid>/stat after the command name (state first: field 3), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # comm (field 2) may contain spaces and parentheses: split after the last ")".
    return data[data.rfind(b")") + 2 :].split()


def cpu_seconds(pid: int) -> float | None:
    """CPU seconds process ``pid`` has used (user + system), None if it cannot be read."""
    rest = stat_fields(pid)
    try:
        # utime and stime, fields 14 and 15 (rest[0] is field 3)
        return (int(rest[11]) + int(rest[12])) / TICKS_PER_S if rest is not None else None
    except (IndexError, ValueError):
        return None
