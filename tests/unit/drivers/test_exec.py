"""exec driver: root only; task runs as nobody (or its user) under cgroups when available."""

from __future__ import annotations

import asyncio
import os
import pwd

import pytest

from nomadd.drivers import cgroups, proc
from nomadd.drivers.base import ExitResult, TaskHandle
from nomadd.drivers.exec import ExecDriver
from nomadd.structs.errors import DriverError

from .conftest import DEADLINE_S, MakeTask, exists, read_log, read_text, root_or_skip

pytestmark = [pytest.mark.slow, pytest.mark.root]


def test_fingerprint_needs_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    info = ExecDriver().fingerprint()
    assert info.detected is False
    assert "root" in info.health_description
    assert "driver.exec" not in info.attributes


def test_runs_as_nobody_in_cgroups(make_task: MakeTask) -> None:
    root_or_skip()
    info = ExecDriver().fingerprint()
    assert info.attributes["driver.exec"] == "true"
    cfg = make_task(
        "/bin/sh",
        ["-c", "id -u; id -g; cat /proc/self/cgroup; touch secrets/ok && echo wrote; exit 4"],
        memory_mb=64,
        cpu_mhz=250,
        user="nobody",
    )

    async def main() -> tuple[ExitResult, TaskHandle, list[bool]]:
        d = ExecDriver()
        h = await d.start_task(cfg)
        dirs = list(h.driver_state["cgroups"])
        try:
            res = await asyncio.wait_for(d.wait_task(h), DEADLINE_S)
            if dirs:
                mem = os.path.join(dirs[0], "memory.limit_in_bytes")
                if exists(mem):
                    assert int(read_text(mem)) == 64 * 1024 * 1024
        finally:
            await d.destroy_task(h)
        return res, h, [exists(x) for x in dirs]

    res, h, still_there = asyncio.run(main())
    assert res == ExitResult(exit_code=4)
    lines = read_log(cfg).splitlines()
    nobody = pwd.getpwnam("nobody")
    assert lines[0] == str(nobody.pw_uid)
    assert lines[1] == str(nobody.pw_gid)
    assert "wrote" in lines  # secrets/ is the task user's
    if h.driver_state["cgroup_version"] != "none":
        assert any(f"{cfg.task_id}" in line for line in lines)
        assert not any(still_there)  # destroy removed the cgroups
    # else: the host has no usable hierarchy (warning logged); nothing to check there.


def test_default_user_is_nobody_and_stop_kills_group(make_task: MakeTask) -> None:
    root_or_skip()
    cfg = make_task("/bin/sh", ["-c", "sleep 60 & echo $!; id -un; wait"])

    async def main() -> tuple[ExitResult, int, int]:
        d = ExecDriver()
        h = await d.start_task(cfg)
        try:
            deadline = asyncio.get_running_loop().time() + DEADLINE_S
            while len(read_log(cfg).splitlines()) < 2:
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.02)
            child = int(read_log(cfg).splitlines()[0])
            child_start = proc.start_time_of(child)
            await d.stop_task(h, 1.0, "SIGTERM")
            res = await asyncio.wait_for(d.wait_task(h), DEADLINE_S)
            return res, child, child_start
        finally:
            await d.destroy_task(h)

    res, child, child_start = asyncio.run(main())
    assert res.signal in (15, 9)
    assert read_log(cfg).splitlines()[1] in ("nobody", "nfsnobody")
    assert not proc.is_alive(child, child_start)


def test_unknown_user_fails_to_start(make_task: MakeTask) -> None:
    root_or_skip()
    cfg = make_task("/bin/true")
    cfg = cfg.__class__(
        **{**{f: getattr(cfg, f) for f in cfg.__dataclass_fields__}, "user": "no-such-user-xyz"}
    )
    with pytest.raises(DriverError, match="unknown user"):
        asyncio.run(ExecDriver().start_task(cfg))


def test_memory_limit_oom_kills(make_task: MakeTask) -> None:
    root_or_skip()
    # tail buffers a newline-free stream whole: it outgrows 20 MB and is OOM-killed.
    cfg = make_task("/bin/sh", ["-c", "head -c 300000000 /dev/zero | tail; echo rc=$?"], memory_mb=20)

    async def main() -> tuple[ExitResult, str]:
        d = ExecDriver()
        h = await d.start_task(cfg)
        try:
            return await asyncio.wait_for(d.wait_task(h), DEADLINE_S), h.driver_state["cgroup_version"]
        finally:
            await d.destroy_task(h)

    res, version = asyncio.run(main())
    if version == "none":
        pytest.skip("host has no usable cgroup hierarchy: memory is not limited")
    assert res.oom_killed
    assert "rc=137" in read_log(cfg)


def test_fingerprint_without_cgroups_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(cgroups, "detect", lambda root=cgroups.CGROUP_ROOT: "none")
    info = ExecDriver().fingerprint()
    assert info.detected
    assert info.attributes == {"driver.exec": "true", "driver.exec.cgroup": "none"}
    assert "not enforced" in info.health_description
