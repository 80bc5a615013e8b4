"""exec driver: root only; task runs as nobody (or its user) under cgroups when available."""

from __future__ import annotations

import asyncio
import os
import pwd
import secrets
import signal

import pytest

from nomadd.drivers import cgroups, isolation
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


def _marked(mark: str) -> list[int]:
    """Host pids of live processes whose command line contains ``mark``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if mark.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            continue
    return found


def test_default_user_is_nobody_and_stop_kills_group(make_task: MakeTask) -> None:
    root_or_skip()
    mark = f"{60 + secrets.randbelow(10**6) / 10**7:.7f}"  # a sleep argument no one else uses
    cfg = make_task("/bin/sh", ["-c", f"sleep {mark} & echo $!; id -un; wait"])

    async def main() -> tuple[ExitResult, list[int]]:
        d = ExecDriver()
        h = await d.start_task(cfg)
        try:
            deadline = asyncio.get_running_loop().time() + DEADLINE_S
            while len(read_log(cfg).splitlines()) < 2:
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.02)
            running = _marked(mark)
            await d.stop_task(h, 1.0, "SIGTERM")
            res = await asyncio.wait_for(d.wait_task(h), DEADLINE_S)
            return res, running
        finally:
            await d.destroy_task(h)

    res, running = asyncio.run(main())
    assert res.signal in (15, 9)
    assert read_log(cfg).splitlines()[1] in ("nobody", "nfsnobody")
    assert running, "the task's background sleep was not found"
    assert not _marked(mark)


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
    # The OOM killer took tail, and the shell said so; or, on a loaded machine, it took the shell
    # too: tail's memory is freed after its death (the OOM reaper runs asynchronously), so the
    # shell may meet the full cgroup again (CI saw exit_code=137 signal=9 with an empty log).
    log = read_log(cfg)
    shell_killed = res.exit_code == 137 and res.signal == signal.SIGKILL and log == ""
    assert "rc=137" in log or shell_killed, f"exit_code={res.exit_code} signal={res.signal} log={log!r}"


def test_fingerprint_without_cgroups_is_undetected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(cgroups, "detect", lambda root=cgroups.CGROUP_ROOT: "none")
    info = ExecDriver().fingerprint()
    assert not info.detected
    assert info.attributes == {"driver.exec.cgroup": "none"}
    assert info.health_description.startswith("undetected: no writable cgroup")


def test_fingerprint_without_namespaces_is_undetected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(cgroups, "detect", lambda root=cgroups.CGROUP_ROOT: "v1")
    monkeypatch.setattr(isolation, "probe", lambda: "cannot create namespaces: Operation not permitted")
    info = ExecDriver().fingerprint()
    assert not info.detected
    assert "cannot create namespaces" in info.health_description
