"""Find a task's processes by their marks, for adoption after an agent restart.

The state db may lack a task's handle: the agent can die between starting the executor and
storing what it answered. So the driver finds the task by what its processes carry:

* an executor's command line is ``python -m nomadd.drivers.executor <executor_dir>/<launch>.spec.json
  FD LAUNCH_ID``: the directory names the allocation and task, the last argument the launch;
* every task process inherits ``NOMAD_ALLOC_ID`` and ``NOMAD_TASK_NAME`` from the task env.

Blocking (reads /proc): call through ``asyncio.to_thread``.
"""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass

from nomadd.helper.procstat import stat_fields

logger = logging.getLogger(__name__)

__all__ = ["EXECUTOR_MODULE", "ProcInfo", "executors", "kill_tree", "processes", "task_processes"]

EXECUTOR_MODULE = "nomadd.drivers.executor"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcInfo:
    """One live process: ids from ``/proc/<pid>/stat`` and its argv."""

    pid: int
    ppid: int
    pgid: int
    sid: int
    start_time: int
    argv: tuple[str, ...]


def _info(pid: int) -> ProcInfo | None:
    rest = stat_fields(pid)
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    try:
        if rest is None or rest[0] in (b"Z", b"X", b"x"):
            return None
        return ProcInfo(
            pid=pid,
            ppid=int(rest[1]),
            pgid=int(rest[2]),
            sid=int(rest[3]),
            start_time=int(rest[19]),
            argv=tuple(a.decode(errors="replace") for a in raw.split(b"\0") if a),
        )
    except (IndexError, ValueError):
        return None


def processes() -> list[ProcInfo]:
    """Every live process but this one (zombies excluded)."""
    me = os.getpid()
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != me and (info := _info(int(entry))) is not None:
            out.append(info)
    return out


def executors(procs: list[ProcInfo], executor_dir: str) -> list[tuple[ProcInfo, str]]:
    """The executors (and not yet forked executor launchers) whose spec lies in
    ``executor_dir``, with their launch ID ("" for executors started without one)."""
    found = []
    for p in procs:
        try:
            i = p.argv.index(EXECUTOR_MODULE)
        except ValueError:
            continue
        args = p.argv[i + 1 :]
        if args and os.path.dirname(args[0]) == executor_dir:
            found.append((p, args[2] if len(args) > 2 else ""))
    return found


def _environ_has(pid: int, marks: set[bytes]) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = set(f.read().split(b"\0"))
    except OSError:  # gone, or not ours to read
        return False
    return marks <= env


def task_processes(procs: list[ProcInfo], alloc_id: str, task_name: str) -> list[ProcInfo]:
    """Processes that carry the task's env marks (the task and the children it started)."""
    marks = {f"NOMAD_ALLOC_ID={alloc_id}".encode(), f"NOMAD_TASK_NAME={task_name}".encode()}
    return [p for p in procs if _environ_has(p.pid, marks)]


def _kill(p: ProcInfo) -> None:
    try:
        # still the same process? (its pid may have been reused since the scan)
        current = _info(p.pid)
        if current is not None and current.start_time == p.start_time:
            os.kill(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    except PermissionError:
        logger.warning("not permitted to kill process pid=%d", p.pid)


def kill_tree(procs: list[ProcInfo], root: ProcInfo) -> list[ProcInfo]:
    """SIGKILL ``root`` and its descendants (an executor caught before it published its task);
    returns the processes signalled (a signal is not a death: the caller waits for them to exit)."""
    children: dict[int, list[ProcInfo]] = {}
    for p in procs:
        children.setdefault(p.ppid, []).append(p)
    todo, seen, killed = [root], set(), []
    while todo:
        p = todo.pop()
        if p.pid in seen:
            continue
        seen.add(p.pid)
        todo.extend(children.get(p.pid, []))
        logger.debug("killing process pid=%d", p.pid)
        _kill(p)
        killed.append(p)
    return killed
