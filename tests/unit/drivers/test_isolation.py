"""exec isolation (root): own PID namespace and root, masked secrets, no_new_privs, bounding
set, read-only mounts, pid_mode = "host"."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
from pathlib import Path

import pytest

from nomadd.agent.config import build_config
from nomadd.agent.config_schema import check_file
from nomadd.drivers import isolation
from nomadd.drivers.base import DriverConfig, ExitResult, Mount, TaskConfig
from nomadd.drivers.exec import ExecDriver
from nomadd.structs.errors import ConfigError, DriverError

from .conftest import DEADLINE_S, MakeTask, read_log, root_or_skip

pytestmark = [pytest.mark.slow, pytest.mark.root]

PROBE = """
echo pids=$(ls /proc | grep -c '^[0-9]')
echo pid1=$(tr '\\0' ' ' < /proc/1/cmdline)
echo me=$$
echo user=$(id -un)
ls /root >/dev/null 2>&1 && echo root=readable || echo root=hidden
echo shadow=$(wc -c < /etc/shadow)
touch /etc/x 2>/dev/null && echo etc=writable || echo etc=readonly
grep NoNewPrivs /proc/self/status | tr -d '\\t '
grep CapBnd /proc/self/status | tr -d '\\t '
echo dirs=$NOMAD_TASK_DIR,$NOMAD_ALLOC_DIR,$NOMAD_SECRETS_DIR
touch /local/ok /alloc/data/ok && echo own=writable
"""


def run(cfg: TaskConfig) -> ExitResult:
    async def main() -> ExitResult:
        d = ExecDriver()
        h = await d.start_task(cfg)
        try:
            return await asyncio.wait_for(d.wait_task(h), DEADLINE_S)
        finally:
            await d.destroy_task(h)

    return asyncio.run(main())


def facts(cfg: TaskConfig) -> dict[str, str]:
    return dict(line.partition("=")[::2] for line in read_log(cfg).splitlines() if "=" in line)


def test_task_sees_only_itself_and_not_the_hosts_secrets(make_task: MakeTask) -> None:
    root_or_skip()
    cfg = make_task("/bin/sh", ["-c", PROBE], user="nobody")
    assert run(cfg) == ExitResult(exit_code=0)
    f = facts(cfg)
    # the init (pid 1), the shell (pid 2) and the probe line's subshell, ls and grep
    assert int(f["pids"]) <= 5, f
    assert "nomadd.drivers.executor" in f["pid1"]
    assert f["me"] == "2"
    assert f["user"] == "nobody"
    assert f["root"] == "hidden"
    assert f["shadow"] == "0"
    assert f["etc"] == "readonly"
    assert "NoNewPrivs:1" in read_log(cfg)
    assert "CapBnd:00000000a80405fb" in read_log(cfg)  # Nomad's default set, nothing more
    assert f["dirs"] == "/local,/alloc,/secrets"
    assert f["own"] == "writable"


def test_root_task_cannot_read_shadow_either(make_task: MakeTask) -> None:
    root_or_skip()
    cfg = make_task("/bin/sh", ["-c", "wc -c < /etc/shadow; ls /root | wc -l"], user="root")
    assert run(cfg) == ExitResult(exit_code=0)
    assert read_log(cfg).split() == ["0", "0"]


def test_pid_mode_host_shares_the_hosts_processes(make_task: MakeTask) -> None:
    root_or_skip()
    cfg = make_task("/bin/sh", ["-c", "echo pids=$(ls /proc | grep -c '^[0-9]')"])
    cfg = dataclasses.replace(cfg, config={**cfg.config, "pid_mode": "host"})
    assert run(cfg) == ExitResult(exit_code=0)
    assert int(facts(cfg)["pids"]) > 10


def test_read_only_mount(make_task: MakeTask, tmp_path: Path) -> None:
    root_or_skip()
    vol = tmp_path / "vol"
    vol.mkdir(mode=0o777)
    (vol / "hello").write_text("from the host\n")
    os.chmod(vol / "hello", 0o666)
    script = "cat /srv/data/hello; echo x > /srv/data/hello && echo wrote || echo refused; touch /srv/rw/new"
    cfg = make_task("/bin/sh", ["-c", script])
    rw = tmp_path / "rw"
    rw.mkdir(mode=0o777)
    os.chmod(rw, 0o777)
    cfg = dataclasses.replace(
        cfg,
        mounts=(
            Mount(host_path=str(vol), task_path="/srv/data", read_only=True),
            Mount(host_path=str(rw), task_path="/srv/rw", read_only=False),
        ),
    )
    assert run(cfg) == ExitResult(exit_code=0)
    assert read_log(cfg).splitlines() == ["from the host", "refused"]
    assert (vol / "hello").read_text() == "from the host\n"
    assert (rw / "new").exists()


@pytest.mark.parametrize(
    ("mount", "why"),
    [
        (Mount(host_path="/nonexistent/vol", task_path="/data"), "does not exist"),
        (Mount(host_path="/tmp", task_path="relative"), "bad mount destination"),
        (Mount(host_path="/tmp", task_path="/a/../../etc"), "bad mount destination"),
    ],
)
def test_bad_mounts_refused(make_task: MakeTask, mount: Mount, why: str) -> None:
    root_or_skip()
    cfg = dataclasses.replace(make_task("/bin/true"), mounts=(mount,))
    with pytest.raises(DriverError, match=why):
        run(cfg)


def test_bad_pid_mode_refused(make_task: MakeTask) -> None:
    root_or_skip()
    cfg = make_task("/bin/true")
    cfg = dataclasses.replace(cfg, config={**cfg.config, "pid_mode": "sideways"})
    with pytest.raises(DriverError, match="pid_mode"):
        run(cfg)


def test_cap_drop_and_add(make_task: MakeTask) -> None:
    root_or_skip()
    cfg = make_task("/bin/sh", ["-c", "grep CapBnd /proc/self/status | tr -d '\\t '"], user="root")
    cfg = dataclasses.replace(
        cfg, config={**cfg.config, "cap_drop": ["all"], "cap_add": ["net_bind_service"]}
    )
    assert run(cfg) == ExitResult(exit_code=0)
    assert read_log(cfg).strip() == "CapBnd:0000000000000400"  # bit 10 alone


@pytest.mark.parametrize(
    ("key", "value"), [("cap_add", ["SYS_ADMIN"]), ("cap_drop", ["BOGUS"]), ("cap_add", "x")]
)
def test_bad_caps_refused(make_task: MakeTask, key: str, value: object) -> None:
    root_or_skip()
    cfg = make_task("/bin/true")
    cfg = dataclasses.replace(cfg, config={**cfg.config, key: value})
    with pytest.raises(DriverError, match=key):
        run(cfg)


def test_restart_in_the_same_task_dir(make_task: MakeTask) -> None:
    root_or_skip()
    cfg = make_task("/bin/sh", ["-c", "ls /bin/sh /dev/null /alloc/logs >/dev/null && echo ok"])
    assert run(cfg) == ExitResult(exit_code=0)
    assert run(dataclasses.replace(cfg, launch_id="")) == ExitResult(exit_code=0)
    assert read_log(cfg).split() == ["ok", "ok"]


def test_signals_reach_the_task_through_its_init(make_task: MakeTask) -> None:
    root_or_skip()
    script = "trap 'echo got-usr1' USR1; trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.05; done"
    cfg = make_task("/bin/sh", ["-c", script])

    async def main() -> ExitResult:
        d = ExecDriver()
        h = await d.start_task(cfg)
        try:
            deadline = asyncio.get_running_loop().time() + DEADLINE_S
            while "ready" not in read_log(cfg):
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.02)
            await d.signal_task(h, "SIGUSR1")
            while "got-usr1" not in read_log(cfg):
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.02)
            await d.stop_task(h, 5.0, "SIGTERM")
            return await asyncio.wait_for(d.wait_task(h), DEADLINE_S)
        finally:
            await d.destroy_task(h)

    assert asyncio.run(main()) == ExitResult(exit_code=7)  # the task's own status, not the init's
    assert read_log(cfg).split() == ["ready", "got-usr1", "got-term"]


def test_a_root_that_cannot_be_built_fails_the_start_with_the_cause(
    make_task: MakeTask, tmp_path: Path
) -> None:
    root_or_skip()
    cfg = make_task("/bin/true")
    # /usr is bound read-only: no mount point can be made under it
    cfg = dataclasses.replace(cfg, mounts=(Mount(host_path=str(tmp_path), task_path="/usr/nomadd-test-vol"),))
    with pytest.raises(DriverError, match="cannot set up the task's root: .*Read-only file system"):
        run(cfg)


def test_agent_options_set_defaults_and_allowed_caps(make_task: MakeTask) -> None:
    root_or_skip()
    options = {"allow_caps": "CHOWN,NET_RAW", "default_pid_mode": "host"}
    script = "echo pids=$(ls /proc | grep -c '^[0-9]'); grep CapBnd /proc/self/status | tr -d '\\t '"
    cfg = make_task("/bin/sh", ["-c", script], user="root")
    cfg = dataclasses.replace(cfg, config={**cfg.config, "cap_add": ["net_raw"]})

    async def main() -> ExitResult:
        d = ExecDriver(DriverConfig(options=options))
        h = await d.start_task(cfg)
        try:
            return await asyncio.wait_for(d.wait_task(h), DEADLINE_S)
        finally:
            await d.destroy_task(h)

    assert asyncio.run(main()) == ExitResult(exit_code=0)
    assert int(facts(cfg)["pids"]) > 10  # default_pid_mode = "host"
    assert "CapBnd:0000000000002001" in read_log(cfg)  # CHOWN (the default set within allow_caps) + NET_RAW


def test_caps_arithmetic() -> None:
    allowed = isolation.allowed_caps(["chown", "NET_RAW"])
    assert allowed == {"CHOWN", "NET_RAW"}
    assert isolation.task_caps(None, None, allowed) == {"CHOWN"}
    assert isolation.task_caps(["NET_RAW"], ["chown"], allowed) == {"NET_RAW"}
    assert isolation.task_caps(None, ["all"]) == frozenset()
    assert isolation.allowed_caps(["all"]) == frozenset(isolation.CAP_NUMBERS)
    with pytest.raises(ValueError, match="cap_add: capability 'SYS_ADMIN' is not allowed"):
        isolation.task_caps(["SYS_ADMIN"], None, allowed)
    with pytest.raises(ValueError, match="allow_caps: unknown capability 'NOPE'"):
        isolation.allowed_caps(["nope"])


@pytest.mark.parametrize(
    ("exec_config", "why"),
    [
        ({"default_pid_mode": "shared"}, 'plugin.exec.config.default_pid_mode: must be "private" or "host"'),
        ({"allow_caps": ["BOGUS"]}, "plugin.exec.config.allow_caps: unknown capability 'BOGUS'"),
    ],
)
def test_agent_config_errors(tmp_path: Path, exec_config: dict[str, object], why: str) -> None:
    doc = {
        "data_dir": str(tmp_path),
        "client": {"enabled": True},
        "plugin": {"exec": {"config": exec_config}},
    }
    partial = check_file(doc, "a.toml")
    with pytest.raises(ConfigError, match=re.escape(why)):
        build_config(partial)
