"""raw_exec with real processes under the executor."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from nomadd.client.logs import stream_logs
from nomadd.drivers import proc
from nomadd.drivers.base import DriverConfig, ExitResult, TaskConfig, TaskHandle
from nomadd.drivers.raw_exec import RawExecDriver
from nomadd.structs.errors import DriverError

from .conftest import DEADLINE_S, MakeTask, read_log, read_text, touch

pytestmark = pytest.mark.slow
T = TypeVar("T")


def driver() -> RawExecDriver:
    return RawExecDriver(DriverConfig(enabled=True))


async def wait_for(pred: Callable[[], bool], timeout: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.02)


def run_task(cfg: TaskConfig, body: Callable[[RawExecDriver, TaskHandle], Awaitable[T]]) -> T:
    """Start the task, run body, and always destroy the task (kills by pid/group)."""

    async def main() -> T:
        d = driver()
        h = await d.start_task(cfg)
        try:
            return await asyncio.wait_for(body(d, h), DEADLINE_S)
        finally:
            await d.destroy_task(h)

    return asyncio.run(main())


def test_disabled_by_default(make_task: MakeTask) -> None:
    d = RawExecDriver()
    info = d.fingerprint()
    assert (info.detected, info.health_description) == (False, "disabled")
    with pytest.raises(DriverError, match="disabled"):
        asyncio.run(d.start_task(make_task("/bin/true")))
    assert driver().fingerprint().attributes == {"driver.raw_exec": "true"}


def test_exit_code_logs_and_env(make_task: MakeTask) -> None:
    cfg = make_task(
        "/bin/sh",
        ["-c", 'echo "out $NOMAD_TASK_NAME"; echo err >&2; env; exit 3'],
        env={"NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "1", "FOO": "bar"},
    )

    async def body(d: RawExecDriver, h: TaskHandle) -> ExitResult:
        assert h.pid > 0
        assert h.start_time == proc.start_time_of(h.pid) or not proc.is_alive(h.pid, 0)
        return await d.wait_task(h)

    assert run_task(cfg, body) == ExitResult(exit_code=3)
    out = read_log(cfg)
    assert out.startswith("out web\n")
    assert "FOO=bar" in out
    assert f"NOMAD_ALLOC_ID={cfg.alloc_id}" in out
    assert "NOTIFY_SOCKET" not in out
    assert "WATCHDOG_USEC" not in out
    assert read_log(cfg, "stderr") == "err\n"


def test_start_error_for_missing_command(make_task: MakeTask) -> None:
    with pytest.raises(DriverError, match="FileNotFoundError"):
        asyncio.run(driver().start_task(make_task("/nonexistent/cmd")))
    with pytest.raises(DriverError, match="command"):
        asyncio.run(driver().start_task(make_task(config={"args": []})))


def test_signal_exit_reports_signal(make_task: MakeTask) -> None:
    cfg = make_task("/bin/sh", ["-c", "kill -USR1 $$; sleep 5"])
    res = run_task(cfg, lambda d, h: d.wait_task(h))
    assert res.signal == signal.SIGUSR1
    assert res.exit_code == 128 + signal.SIGUSR1


def test_stop_with_kill_signal_lets_task_clean_up(make_task: MakeTask) -> None:
    cfg = make_task(
        "/bin/sh", ["-c", "trap 'echo bye; exit 7' TERM; echo ready; while :; do sleep 0.05; done"]
    )

    async def body(d: RawExecDriver, h: TaskHandle) -> ExitResult:
        await wait_for(lambda: "ready" in read_log(cfg))
        await d.stop_task(h, 5.0, "SIGTERM")
        return await d.wait_task(h)

    start = time.monotonic()
    assert run_task(cfg, body) == ExitResult(exit_code=7)
    assert time.monotonic() - start < 4.0  # did not wait for the kill timeout
    assert "bye" in read_log(cfg)


def test_stop_escalates_to_sigkill_and_kills_whole_group(make_task: MakeTask, tmp_path: object) -> None:
    pidfile = os.path.join(str(tmp_path), "child.pid")
    script = f"trap '' INT TERM; sh -c 'trap \"\" INT TERM; sleep 60' & echo $! > {pidfile}; echo ready; wait"
    cfg = make_task("/bin/sh", ["-c", script])

    async def body(d: RawExecDriver, h: TaskHandle) -> tuple[ExitResult, float, int]:
        await wait_for(lambda: "ready" in read_log(cfg))
        child = int(read_text(pidfile))
        child_start = proc.start_time_of(child)
        assert os.getpgid(child) == h.pid  # same process group as the task
        t0 = time.monotonic()
        await d.stop_task(h, 0.3, "SIGINT")
        took = time.monotonic() - t0
        res = await d.wait_task(h)
        assert not proc.is_alive(child, child_start)
        return res, took, child

    res, took, _child = run_task(cfg, body)
    assert res.signal == signal.SIGKILL
    assert took >= 0.3


def test_signal_task(make_task: MakeTask) -> None:
    cfg = make_task("/bin/sh", ["-c", "trap 'echo got-hup' HUP; echo ready; while :; do sleep 0.05; done"])

    async def body(d: RawExecDriver, h: TaskHandle) -> None:
        await wait_for(lambda: "ready" in read_log(cfg))
        await d.signal_task(h, "SIGHUP")
        await wait_for(lambda: "got-hup" in read_log(cfg))
        await d.stop_task(h, 1.0, "SIGKILL")
        await d.wait_task(h)
        with pytest.raises(DriverError, match="not running"):
            await d.signal_task(h, "SIGHUP")

    run_task(cfg, body)


def test_logs_rotate(make_task: MakeTask) -> None:
    # 40 lines of 100 bytes into 1 KiB files, keep 2 files.
    cfg = make_task(
        "/bin/sh",
        ["-c", "i=0; while [ $i -lt 40 ]; do printf '%099d\\n' $i; i=$((i+1)); done"],
        log_max_files=2,
        log_max_file_size_mb=1 / 1024,
    )
    assert run_task(cfg, lambda d, h: d.wait_task(h)).exit_code == 0
    names = sorted(n for n in os.listdir(cfg.log_dir) if ".stdout." in n)
    assert names == ["web.stdout.2", "web.stdout.3"]
    assert os.path.getsize(os.path.join(cfg.log_dir, "web.stdout.2")) == 1024
    with open(os.path.join(cfg.log_dir, "web.stdout.3")) as f:
        last = f.read().splitlines()[-1]
    assert int(last) == 39


def test_recover_after_driver_is_discarded(make_task: MakeTask) -> None:
    """The agent restarts: a new driver object in a new loop reattaches from the stored dict."""
    # The task runs until the test creates local/GO, so it is surely running at recovery.
    cfg = make_task(
        "/bin/sh", ["-c", "echo first; while [ ! -e local/GO ]; do sleep 0.02; done; echo second; exit 5"]
    )
    go = os.path.join(cfg.task_dir, "local", "GO")
    stored = asyncio.run(driver().start_task(cfg)).to_dict()

    async def later() -> ExitResult:
        d = driver()
        h = TaskHandle.from_dict(stored)
        try:
            assert await d.recover_task(h)
            assert proc.is_alive(h.pid, h.start_time)  # same pid, still running
            touch(go)
            return await asyncio.wait_for(d.wait_task(h), DEADLINE_S)
        finally:
            await d.destroy_task(h)

    assert asyncio.run(later()) == ExitResult(exit_code=5)
    assert read_log(cfg) == "first\nsecond\n"
    # Once finished, the status stays collectable by yet another driver instance.
    d = driver()
    h = TaskHandle.from_dict(stored)
    assert asyncio.run(d.recover_task(h))
    assert asyncio.run(d.wait_task(h)) == ExitResult(exit_code=5)


def test_recover_fails_when_nothing_is_left(make_task: MakeTask) -> None:
    cfg = make_task("/bin/true")
    h = run_task(cfg, lambda d, h: asyncio.sleep(0, h))
    os.unlink(os.path.join(h.driver_state["executor_dir"], h.driver_state["status_file"]))
    assert asyncio.run(driver().recover_task(h)) is False
    bogus = TaskHandle(driver="raw_exec", alloc_id="x", task_name="y", pid=1, start_time=1, started_at=0)
    assert asyncio.run(driver().recover_task(bogus)) is False


def test_cancelled_start_leaves_no_task(make_task: MakeTask, tmp_path: object) -> None:
    pidfile = os.path.join(str(tmp_path), "task.pid")
    cfg = make_task("/bin/sh", ["-c", f"echo $$ > {pidfile}; exec sleep 60"])

    async def main() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(driver().start_task(cfg), 0.01)
        await wait_for(lambda: os.path.exists(pidfile) and read_text(pidfile).strip() != "")
        pid = int(read_text(pidfile))
        await wait_for(lambda: not proc.is_alive(pid, 0))

    asyncio.run(main())


def test_restart_same_task_appends_logs(make_task: MakeTask) -> None:
    """A restart (restart policy) reuses the task's dirs: new status, logs continue."""
    cfg = make_task("/bin/sh", ["-c", 'echo "run $RUN"; exit $RUN'])

    async def main() -> list[ExitResult]:
        d = driver()
        results = []
        for run in (1, 2):
            c = dataclasses.replace(cfg, env={**cfg.env, "RUN": str(run)})
            h = await d.start_task(c)
            try:
                results.append(await asyncio.wait_for(d.wait_task(h), DEADLINE_S))
            finally:
                await d.destroy_task(h)
        return results

    assert asyncio.run(main()) == [ExitResult(exit_code=1), ExitResult(exit_code=2)]
    assert read_log(cfg) == "run 1\nrun 2\n"


def test_follow_logs_of_a_running_task(make_task: MakeTask) -> None:
    cfg = make_task(
        "/bin/sh",
        ["-c", "i=0; while [ $i -lt 30 ]; do printf '%049d\\n' $i; i=$((i+1)); sleep 0.01; done"],
        log_max_files=50,
        log_max_file_size_mb=200 / (1024 * 1024),  # 200-byte files: rotates every 4 lines
    )

    async def body(d: RawExecDriver, h: TaskHandle) -> bytes:
        waiter = asyncio.ensure_future(d.wait_task(h))
        got = b""
        try:
            stdout = f"{cfg.task_name}.stdout"
            async for chunk in stream_logs(cfg.log_dir, stdout, follow=True, finished=waiter.done):
                got += chunk
        finally:
            await waiter
        return got

    got = run_task(cfg, body)
    assert got.decode().splitlines() == [f"{i:049d}" for i in range(30)]
