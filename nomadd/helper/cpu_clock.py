"""Where the time of a stall went: a thread's own CPU, the rest of its process's CPU, the time
the thread waited for a CPU while runnable, and the time it was blocked.

A gap between two wake-ups of a thread that should run often (Raft's tick thread, the event
loop) has one of these causes, and each calls for a different fix:

* ``cpu``: the thread's own work (a large entry to pickle, a callback that runs too long);
* ``other_cpu``: other threads of this process ran (the GIL is one: the loop, a GC pause in
  another thread; on two cores it may exceed the gap);
* ``runq``: the thread was runnable but had no CPU: the machine is busy (Linux's
  ``/proc/thread-self/schedstat``; -1 where it cannot be read);
* ``blocked``: the rest: the thread waited, in its poll or for the GIL. With ``other_cpu``
  small too, the GIL's holder had no CPU either: the machine, not this process, was the cause.

Sampling costs about 4 µs (three clocks and one ``pread``; taken at every Raft tick).
"""

from __future__ import annotations

import os
import time
import weakref
from dataclasses import dataclass

__all__ = ["CpuSample", "Stall", "ThreadClock"]

_SCHEDSTAT = "/proc/thread-self/schedstat"  # "<ns on cpu> <ns runnable, waiting> <slices>"


@dataclass(frozen=True, slots=True)
class CpuSample:
    """One thread's clocks at one moment (seconds); ``runq`` is -1 when unknown."""

    wall: float = 0.0
    process_cpu: float = 0.0
    thread_cpu: float = 0.0
    runq: float = -1.0


@dataclass(frozen=True, slots=True)
class Stall:
    """The split of the time between two :class:`CpuSample` of one thread (seconds)."""

    gap: float = 0.0
    cpu: float = 0.0
    other_cpu: float = 0.0
    runq: float = -1.0  # -1: unknown

    @classmethod
    def between(cls, before: CpuSample, after: CpuSample) -> Stall:
        cpu = max(after.thread_cpu - before.thread_cpu, 0.0)
        known = before.runq >= 0 and after.runq >= 0
        return cls(
            gap=max(after.wall - before.wall, 0.0),
            cpu=cpu,
            other_cpu=max(after.process_cpu - before.process_cpu - cpu, 0.0),
            runq=max(after.runq - before.runq, 0.0) if known else -1.0,
        )

    @property
    def blocked(self) -> float:
        return max(self.gap - self.cpu - max(self.runq, 0.0), 0.0)

    def fields(self) -> str:
        """``key=value`` fields for a log line, in milliseconds."""
        runq = int(self.runq * 1000) if self.runq >= 0 else -1
        return (
            f"gap_ms={int(self.gap * 1000)} cpu_ms={int(self.cpu * 1000)} "
            f"other_cpu_ms={int(self.other_cpu * 1000)} runq_ms={runq} "
            f"blocked_ms={int(self.blocked * 1000)}"
        )


class ThreadClock:
    """Samples one thread's clocks. :meth:`sample` only ever on that thread (the schedstat file
    is opened by the first sample, for the thread that takes it, and kept open)."""

    def __init__(self) -> None:
        self._fd = -1
        self._opened = False

    def sample(self) -> CpuSample:
        return CpuSample(time.monotonic(), time.process_time(), time.thread_time(), self._runq())

    def _runq(self) -> float:
        if not self._opened:
            self._opened = True
            try:
                self._fd = os.open(_SCHEDSTAT, os.O_RDONLY)
            except OSError:
                return -1.0
            weakref.finalize(self, os.close, self._fd)
        if self._fd < 0:
            return -1.0
        try:
            return int(os.pread(self._fd, 96, 0).split()[1]) / 1e9
        except (OSError, ValueError, IndexError):
            return -1.0
