from __future__ import annotations

import asyncio
import os
import subprocess

import pytest

from nomadd.drivers import proc


def test_start_time_identifies_process() -> None:
    me = os.getpid()
    st = proc.start_time_of(me)
    assert st > 0
    assert proc.is_alive(me, st)
    assert not proc.is_alive(me, st + 1)  # same pid, other start time: a reused pid
    assert not proc.is_alive(0, 0)
    assert proc.start_time_of(2**22 + 12345) == 0


def test_zombie_is_dead() -> None:
    p = subprocess.Popen(["/bin/true"])
    try:
        st = proc.read_stat(p.pid)
        assert st is not None

        async def gone() -> bool:
            return await proc.wait_exit(p.pid, st[1], timeout=10)

        assert asyncio.run(gone())
        assert not proc.is_alive(p.pid, st[1])  # a zombie until reaped below
    finally:
        p.wait(10)


@pytest.mark.parametrize("pidfd", [True, False])
def test_wait_exit_with_and_without_pidfd(monkeypatch: pytest.MonkeyPatch, pidfd: bool) -> None:
    if not pidfd:

        def unsupported(_pid: int) -> int:
            raise OSError(38, "ENOSYS")

        monkeypatch.setattr(os, "pidfd_open", unsupported)
    p = subprocess.Popen(["/bin/sleep", "30"])
    try:
        st = proc.start_time_of(p.pid)

        async def main() -> tuple[bool, bool]:
            early = await proc.wait_exit(p.pid, st, timeout=0.05)
            p.kill()
            late = await proc.wait_exit(p.pid, st, timeout=10)
            return early, late

        assert asyncio.run(main()) == (False, True)
    finally:
        p.kill()
        p.wait(10)


def test_group_is_ours() -> None:
    me = os.getpid()
    assert proc.group_is_ours(me, proc.start_time_of(me))
    assert not proc.group_is_ours(me, proc.start_time_of(me) + 1)  # pid reused by another
    assert proc.group_is_ours(2**22 + 12345, 1)  # no such pid: only orphans could hold it
