"""Work on a large state in a forked child: off this process's GIL, on another core.

Encoding the whole state (a Raft full dump, an ``operator snapshot save``) is seconds of Python
at a million allocations. In a thread of the server it holds the GIL against the Raft tick
thread, the event loop and the scheduler for that long. A forked child holds a copy-on-write
image of the server, so it reads the same immutable snapshot without copying it first, and runs
on its own interpreter.

Forking a process that has threads is safe only for a child that takes no lock another thread
may have held at the fork. The child runs nothing but the work it is given, which must touch
only immutable data and C libraries without locks of their own (msgpack, pickle, gzip, zlib,
hashlib), and then ``os._exit``: no logging, no imports, no dlopen, no asyncio. The child also
turns the cyclic GC off (a collection would touch, and so copy, every page of the heap), drops
the server's signal handlers and wake-up fd (a SIGTERM to the cgroup must kill it, not write to
the server's loop), dies with the thread that forked it (``PR_SET_PDEATHSIG``), and, unless
something waits for its work, runs below every ordinary process: ``SCHED_IDLE`` (at
:data:`CHILD_NICE`), so it gets only CPU time no other task wants, and any server thread that
wakes takes the core from it at once. At a mere nice +10 it still delayed every wake-up of the
servers' threads it shared a core with: on two cores shared by three servers, a CPU-bound
process at +10 beside a 300,000-placement run made the run 12-14 % slower with no more CPU
spent by the servers, one at ``SCHED_IDLE`` 2-5 % (docs/contributing/raft.md). :func:`set_priority`
puts a child back in the ordinary class when something does wait for it. Its memory is the
pages it touches while working; they are freed when it exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import os
import signal
import traceback
from collections.abc import Callable

__all__ = ["CHILD_FAILED", "CHILD_NICE", "fork_worker", "run_forked", "set_priority"]

CHILD_FAILED = 3  # a child's exit status when its work raised
CHILD_NICE = 10  # added to the server's niceness by a child that runs SCHED_IDLE (module doc)
_PR_SET_PDEATHSIG = 1  # prctl(2)
_LIBC = ctypes.CDLL(None, use_errno=True)  # loaded here: dlopen in a forked child may deadlock
_OK, _ERR = b"\x00", b"\x01"  # run_forked's first byte on the pipe


def _become_child(parent: int, keep: Callable[[], None], nice: int) -> None:
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    gc.disable()
    if nice > 0:
        with contextlib.suppress(OSError):
            os.nice(nice)
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    with contextlib.suppress(Exception):
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the server died before prctl took effect
        os._exit(CHILD_FAILED)
    keep()


def fork_worker(work: Callable[[], object], on_error: Callable[[str], None], nice: int = CHILD_NICE) -> int:
    """Fork a child that runs ``work()`` and exits 0, or calls ``on_error(traceback)`` and exits
    :data:`CHILD_FAILED`; with ``nice`` > 0 it runs ``SCHED_IDLE``, ``nice`` steps nicer than the
    server (module doc). Returns the child's pid (the caller reaps it); OSError if fork fails."""
    parent = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    code = CHILD_FAILED  # the child: never returns into the server's code
    try:
        _become_child(parent, lambda: None, nice)
        work()
        code = 0
    except BaseException:
        with contextlib.suppress(BaseException):
            on_error(traceback.format_exc(limit=8))
    finally:
        os._exit(code)


def set_priority(pid: int, nice: int) -> None:
    """Run child ``pid`` in the ordinary scheduling class, ``nice`` steps nicer than this process.
    OSError when not permitted: leaving ``SCHED_IDLE``, or a niceness below the child's own, needs
    ``CAP_SYS_NICE`` or an ``RLIMIT_NICE`` that allows it (the package's unit sets
    ``LimitNICE=+0``: back to the server's own priority, never above it)."""
    os.sched_setscheduler(pid, os.SCHED_OTHER, os.sched_param(0))
    os.setpriority(os.PRIO_PROCESS, pid, os.getpriority(os.PRIO_PROCESS, 0) + nice)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_all(fd: int) -> bytes:
    """Everything until EOF; closes ``fd`` (the reading thread owns it: a cancelled caller
    kills the writer, and the thread then sees EOF and closes it)."""
    parts: list[bytes] = []
    try:
        while chunk := os.read(fd, 1 << 20):
            parts.append(chunk)
    finally:
        os.close(fd)
    return b"".join(parts)


async def run_forked(produce: Callable[[], bytes], nice: int = CHILD_NICE) -> bytes:
    """``produce()`` computed by a forked child (``nice`` steps nicer than the server), its
    result read back through a pipe.

    RuntimeError (with the child's traceback) if it raised or died. Cancelling the caller kills
    the child."""
    r, w = os.pipe()

    def work() -> None:
        os.close(r)
        data = produce()
        _write_all(w, _OK)
        _write_all(w, data)

    def on_error(why: str) -> None:
        _write_all(w, _ERR + why.encode(errors="replace"))

    try:
        pid = fork_worker(work, on_error, nice)
    except OSError:
        os.close(r)
        os.close(w)
        raise
    os.close(w)
    reaped = False
    try:
        out = await asyncio.to_thread(_read_all, r)
        _, status = await asyncio.to_thread(os.waitpid, pid, 0)
        reaped = True
    finally:
        if not reaped:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)  # noqa: ASYNC222 (killed: reaped at once)
    code = os.waitstatus_to_exitcode(status)
    if code == 0 and out[:1] == _OK:
        return out[1:]
    why = out[1:].decode(errors="replace") if out[:1] == _ERR else f"exit status {code}"
    raise RuntimeError(f"forked worker failed: {why[-2000:]}")
