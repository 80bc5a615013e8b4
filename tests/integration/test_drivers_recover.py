"""Tasks survive the agent process being SIGKILLed (the client unit's KillMode=process) and a
new driver in another process recovers them: same PID, logs continue, exit status collected."""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

import nomadd
from nomadd.drivers import proc
from nomadd.drivers.allocdir import AllocDir
from nomadd.drivers.base import DriverConfig, ExitResult, TaskHandle
from nomadd.drivers.exec import ExecDriver
from nomadd.drivers.executor_driver import ExecutorDriver
from nomadd.drivers.raw_exec import RawExecDriver

pytestmark = pytest.mark.slow

DEADLINE_S = 15.0
REPO = os.path.dirname(os.path.dirname(os.path.abspath(nomadd.__file__)))

# The fake agent: starts one task with the named driver, prints its handle, then idles until
# it is killed. NOTIFY_SOCKET is set in its environment, as systemd would.
AGENT = """
import asyncio, json, sys, time
from nomadd.drivers.base import DriverConfig, TaskConfig
from nomadd.drivers.exec import ExecDriver
from nomadd.drivers.raw_exec import RawExecDriver
spec = json.loads(sys.argv[1])
driver = {"raw_exec": RawExecDriver(DriverConfig(enabled=True)), "exec": ExecDriver()}[spec.pop("driver")]
handle = asyncio.run(driver.start_task(TaskConfig(**spec)))
print(json.dumps(handle.to_dict()), flush=True)
while True:
    time.sleep(60)
"""

# Runs until the test creates local/GO (after recovery), so "logs continued" is deterministic.
TICKER = (
    "echo before; while [ ! -e local/GO ]; do sleep 0.02; done; "
    "echo after; id -u; echo ns=${NOTIFY_SOCKET:-unset}; exit 9"
)


def root_or_skip() -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("root-only test under CI=true but not running as root")
        pytest.skip("needs root")


def read_line(p: subprocess.Popen[bytes], timeout: float) -> bytes:
    assert p.stdout is not None
    deadline = time.monotonic() + timeout
    buf = b""
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([p.stdout], [], [], left)[0]:
            raise AssertionError(f"agent gave no handle in time; got {buf!r}")
        chunk = os.read(p.stdout.fileno(), 4096)
        if not chunk:
            raise AssertionError(f"agent exited: {p.wait()} {buf!r}")
        buf += chunk
    return buf


def start_in_agent(tmp_path: Path, driver: str, args: list[str]) -> tuple[dict[str, Any], Path]:
    """Run the fake agent, take the task handle from it, SIGKILL it; return handle and log."""
    os.chmod(tmp_path, 0o755)
    alloc_id = f"test-{uuid.uuid4().hex[:12]}"  # unique: cgroup names derive from it
    ad = AllocDir(str(tmp_path / "alloc"), alloc_id)
    dirs = ad.build_task("web", "nobody" if driver == "exec" else "")
    spec = {
        "driver": driver,
        "alloc_id": alloc_id,
        "task_name": "web",
        "config": {"command": "/bin/sh", "args": args},
        "env": {"PATH": "/usr/bin:/bin"},
        "task_dir": dirs.task_dir,
        "alloc_dir": ad.shared_dir,
        "log_dir": ad.logs_dir,
    }
    env = {**os.environ, "PYTHONPATH": REPO, "NOTIFY_SOCKET": "/nonexistent/notify"}
    agent = subprocess.Popen(
        [sys.executable, "-c", AGENT, json.dumps(spec)],
        stdout=subprocess.PIPE,
        env=env,
    )
    try:
        handle = json.loads(read_line(agent, DEADLINE_S))
    finally:
        agent.send_signal(signal.SIGKILL)  # the agent dies; its tasks must not
        agent.wait(DEADLINE_S)
        assert agent.stdout is not None
        agent.stdout.close()
    return handle, Path(ad.logs_dir) / "web.stdout.0"


def read_lines(log: Path) -> list[str]:
    return log.read_text().splitlines()


def touch(path: Path) -> None:
    path.touch()


def recover_and_wait(d: ExecutorDriver, stored: dict[str, Any], log: Path) -> ExitResult:
    async def main() -> ExitResult:
        h = TaskHandle.from_dict(stored)
        try:
            assert proc.is_alive(h.pid, h.start_time), "task died with the agent"
            assert await d.recover_task(h)
            assert h.pid == stored["pid"]
            deadline = time.monotonic() + DEADLINE_S
            while read_lines(log) != ["before"]:
                assert time.monotonic() < deadline, read_lines(log)
                await asyncio.sleep(0.02)
            touch(log.parents[2] / "web" / "local" / "GO")  # let the task go on
            res = await asyncio.wait_for(d.wait_task(h), DEADLINE_S)
            assert read_lines(log)[1] == "after"  # logs continued after the agent died
            return res
        finally:
            await d.destroy_task(h)

    return asyncio.run(main())


def test_raw_exec_task_survives_agent_kill(tmp_path: Path) -> None:
    stored, log = start_in_agent(tmp_path, "raw_exec", ["-c", TICKER])
    res = recover_and_wait(RawExecDriver(DriverConfig(enabled=True)), stored, log)
    assert res == ExitResult(exit_code=9)
    lines = log.read_text().splitlines()
    assert lines[2] == str(os.geteuid())
    assert lines[3] == "ns=unset"  # the agent's NOTIFY_SOCKET never reaches the task


@pytest.mark.root
def test_exec_task_survives_agent_kill(tmp_path: Path) -> None:
    root_or_skip()
    stored, log = start_in_agent(tmp_path, "exec", ["-c", TICKER])
    res = recover_and_wait(ExecDriver(), stored, log)
    assert res == ExitResult(exit_code=9)
    assert log.read_text().splitlines()[2] == "65534"


def test_recovered_task_can_be_stopped(tmp_path: Path) -> None:
    stored, log = start_in_agent(
        tmp_path,
        "raw_exec",
        ["-c", "trap 'echo stopping; exit 0' INT; echo up; while :; do sleep 0.05; done"],
    )

    async def main() -> ExitResult:
        d = RawExecDriver(DriverConfig(enabled=True))
        h = TaskHandle.from_dict(stored)
        try:
            assert await d.recover_task(h)
            await d.stop_task(h, 5.0, "SIGINT")
            return await asyncio.wait_for(d.wait_task(h), DEADLINE_S)
        finally:
            await d.destroy_task(h)

    assert asyncio.run(main()) == ExitResult(exit_code=0)
    assert log.read_text().splitlines() == ["up", "stopping"]
