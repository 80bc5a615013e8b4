"""Gossip between real separate processes: SIGKILL → failed, SIGSTOP/SIGCONT → failed then
alive again, SIGTERM (graceful leave) → left."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from nomadd.gossip import Gossip, GossipConfig, MemberStatus

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
TIMERS = {
    "probe_interval": 0.2,
    "probe_timeout": 0.1,
    "suspicion_mult": 3,
    "gossip_interval": 0.03,
    "push_pull_interval": 0.5,
    "reconnect_interval": 0.3,
    "leave_propagate_delay": 0.1,
    "tcp_timeout": 1.0,
}

# The child: start a pool, report its port, join the parent, leave gracefully on SIGTERM.
CHILD = """
import asyncio, json, signal, sys
from nomadd.gossip import Gossip, GossipConfig

async def main():
    timers = json.loads(sys.argv[3])
    cfg = GossipConfig(name=sys.argv[1], bind_addr="127.0.0.1", bind_port=0,
                       tags={"role": "nomad", "pid": str(__import__("os").getpid())}, **timers)
    pool = Gossip(cfg)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await pool.start()
    print(json.dumps({"port": pool.port, "joined": await pool.join([sys.argv[2]])}), flush=True)
    await stop.wait()
    await pool.leave(timeout=2.0)

asyncio.run(main())
"""


async def wait_for(pred: object, what: str, timeout: float = 8.0) -> None:
    assert callable(pred)
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def spawn(name: str, join: str) -> tuple[asyncio.subprocess.Process, dict[str, int]]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        name,
        join,
        json.dumps(TIMERS),
        stdout=asyncio.subprocess.PIPE,
        env=env,
        cwd=str(REPO),
    )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(15):
            line = await proc.stdout.readline()
        return proc, json.loads(line)
    except BaseException:
        proc.kill()
        await proc.wait()
        raise


def test_separate_processes_crash_and_leave() -> None:
    async def main() -> None:
        parent = Gossip(
            GossipConfig(name="parent.global", bind_addr="127.0.0.1", bind_port=0, **TIMERS)  # type: ignore[arg-type]
        )
        await parent.start()
        procs: list[asyncio.subprocess.Process] = []
        try:
            join = f"127.0.0.1:{parent.port}"
            for name in ("crash.global", "leave.global", "pause.global"):
                proc, hello = await spawn(name, join)
                procs.append(proc)
                assert hello["joined"] == 1

            def status(name: str) -> MemberStatus | None:
                return next((m.status for m in parent.members() if m.name == name), None)

            children = ("crash.global", "leave.global", "pause.global")
            await wait_for(
                lambda: [status(n) for n in children] == [MemberStatus.ALIVE] * 3,
                "children alive",
            )
            crash, leave, pause = procs

            # A frozen process looks like a partition: failed, then back through a reconnect
            # push-pull (or its own gossip) with a refuting, higher incarnation.
            pause.send_signal(signal.SIGSTOP)
            await wait_for(lambda: status("pause.global") is MemberStatus.FAILED, "pause failed")
            pause.send_signal(signal.SIGCONT)
            await wait_for(lambda: status("pause.global") is MemberStatus.ALIVE, "pause back")

            crash.send_signal(signal.SIGKILL)
            await crash.wait()
            await wait_for(lambda: status("crash.global") is MemberStatus.FAILED, "crash failed")

            leave.send_signal(signal.SIGTERM)
            async with asyncio.timeout(10):
                assert await leave.wait() == 0
            await wait_for(lambda: status("leave.global") is MemberStatus.LEFT, "leave left")
        finally:
            for proc in procs:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
            await parent.shutdown()

    asyncio.run(main())
