"""nomadd/server/forked.py: work done by a forked child, its result read back."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from nomadd.server.forked import CHILD_NICE, fork_worker, run_forked, set_priority


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


def _priority() -> bytes:
    return f"{os.nice(0)} {os.sched_getscheduler(0)}".encode()


def test_the_child_runs_at_a_lower_cpu_priority() -> None:
    """A dump child competing with three servers for two cores must not delay their Raft
    threads: it runs SCHED_IDLE (any of them that wakes takes the core at once), CHILD_NICE
    steps nicer than the server."""
    niceness, policy = map(int, asyncio.run(run_forked(_priority)).split())
    assert (niceness, policy) == (min(19, os.nice(0) + CHILD_NICE), os.SCHED_IDLE)


def test_a_niceness_can_be_given() -> None:
    niceness, policy = map(int, asyncio.run(run_forked(_priority, nice=3)).split())
    assert (niceness, policy) == (min(19, os.nice(0) + 3), os.SCHED_IDLE)


def test_a_child_at_the_servers_niceness_runs_in_the_ordinary_class() -> None:
    """An operator's save (nice 0) is waited for: not SCHED_IDLE."""
    niceness, policy = map(int, asyncio.run(run_forked(_priority, nice=0)).split())
    assert (niceness, policy) == (os.nice(0), os.SCHED_OTHER)


@pytest.mark.skipif(
    os.geteuid() != 0 and os.environ.get("CI") != "true", reason="leaving SCHED_IDLE needs CAP_SYS_NICE"
)
def test_set_priority_takes_a_child_out_of_the_idle_class() -> None:
    def wait() -> None:
        time.sleep(30)

    pid = fork_worker(wait, lambda _: None)
    try:
        deadline = time.monotonic() + 5
        while os.sched_getscheduler(pid) != os.SCHED_IDLE:
            assert time.monotonic() < deadline, "the child did not make itself idle"
            time.sleep(0.01)
        set_priority(pid, 4)
        assert os.sched_getscheduler(pid) == os.SCHED_OTHER
        assert os.getpriority(os.PRIO_PROCESS, pid) == os.nice(0) + 4
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
