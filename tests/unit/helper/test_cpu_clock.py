"""A stall's split: the thread's own CPU, other threads', the wait for a CPU, blocked time."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from nomadd.helper.cpu_clock import Stall, ThreadClock


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_the_threads_own_work_is_its_cpu() -> None:
    clock = ThreadClock()
    before = clock.sample()
    _spin(0.2)
    stall = Stall.between(before, clock.sample())
    assert stall.cpu > 0.1
    assert stall.blocked < 0.1


def test_waiting_is_blocked_time() -> None:
    clock = ThreadClock()
    before = clock.sample()
    time.sleep(0.2)
    stall = Stall.between(before, clock.sample())
    assert stall.blocked > 0.15
    assert stall.cpu < 0.05
    assert stall.other_cpu < 0.05


def test_another_threads_work_is_other_cpu() -> None:
    clock = ThreadClock()
    before = clock.sample()
    worker = threading.Thread(target=_spin, args=(0.2,))
    worker.start()
    worker.join()
    stall = Stall.between(before, clock.sample())
    assert stall.other_cpu > 0.1
    assert stall.cpu < 0.05
    assert "other_cpu_ms=" in stall.fields()


@pytest.mark.skipif(not os.path.exists("/proc/thread-self/schedstat"), reason="no schedstat here")
def test_no_cpu_for_a_runnable_thread_is_runq_time() -> None:
    """This thread and a busy process share one CPU: about half of the spin is a wait for it."""
    cpu = min(os.sched_getaffinity(0))
    mask = os.sched_getaffinity(0)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        os.sched_setaffinity(busy.pid, {cpu})
        os.sched_setaffinity(0, {cpu})
        clock = ThreadClock()
        before = clock.sample()
        _spin(0.4)
        stall = Stall.between(before, clock.sample())
    finally:
        os.sched_setaffinity(0, mask)
        busy.kill()
        busy.wait()
    assert stall.runq > 0.1, stall.fields()
    assert stall.cpu + stall.runq > 0.3
