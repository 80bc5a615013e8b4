"""The docker driver's config checks and the container it asks for (no daemon needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nomadd.drivers.base import Mount, TaskConfig
from nomadd.drivers.docker.config import (
    DEFAULT_ALLOW_CAPS,
    PluginConfig,
    container_name,
    container_spec,
    split_image,
)
from nomadd.structs.errors import DriverError

PORT_ENV = {
    "NOMAD_HOST_PORT_http": "25000",
    "NOMAD_PORT_http": "25000",
    "NOMAD_HOST_IP_http": "127.0.0.1",
    "NOMAD_HOST_PORT_db": "25001",
    "NOMAD_PORT_db": "6379",
    "NOMAD_HOST_IP_db": "127.0.0.1",
}


def cfg(tmp_path: Path, config: dict[str, Any], **kw: Any) -> TaskConfig:
    root = tmp_path / "alloc-1"
    return TaskConfig(
        alloc_id="alloc-1",
        task_name="web",
        config={"image": "busybox:1", **config},
        env={"A": "1", "NOTIFY_SOCKET": "/run/x", **PORT_ENV},
        task_dir=str(root / "web"),
        alloc_dir=str(root / "alloc"),
        log_dir=str(root / "alloc" / "logs"),
        **kw,
    )


def test_plugin_defaults_are_nomads() -> None:
    p = PluginConfig.parse({})
    assert p.endpoint == "unix:///var/run/docker.sock" and p.socket_path == "/var/run/docker.sock"
    assert not p.allow_privileged and not p.volumes_enabled
    assert p.gc_image and p.gc_image_delay_s == 180.0 and p.image_pull_timeout_s == 300.0
    assert p.allow_caps == DEFAULT_ALLOW_CAPS and "NET_RAW" not in p.allow_caps
    p = PluginConfig.parse({"volumes": {"enabled": True}, "gc": {"image": False, "image_delay": "10s"}})
    assert p.volumes_enabled and not p.gc_image and p.gc_image_delay_s == 10.0
    with pytest.raises(DriverError, match="only unix://"):
        _ = PluginConfig.parse({"endpoint": "tcp://1.2.3.4:2375"}).socket_path
    with pytest.raises(DriverError, match="image_delay"):
        PluginConfig.parse({"gc": {"image_delay": "soon"}})


def test_container_body(tmp_path: Path) -> None:
    spec = container_spec(
        cfg(
            tmp_path,
            {
                "command": "/bin/sh",
                "args": ["-c", "true"],
                "ports": ["http"],
                "port_map": [{"db": 6379}],
                "labels": [{"team": "a"}],
                "volumes": ["local/data:/data:ro"],
                "mount": [{"type": "bind", "source": "local/m", "target": "/m", "readonly": True}],
                "work_dir": "/data",
            },
            user="nobody",
            cpu_mhz=250,
            memory_mb=64,
            memory_max_mb=128,
            launch_id="abc",
            mounts=(Mount(host_path="/srv/vol", task_path="/vol", read_only=True),),
        ),
        PluginConfig(),
    )
    body = spec.body
    root = tmp_path / "alloc-1"
    assert (
        body["Cmd"] == ["/bin/sh", "-c", "true"]
        and body["User"] == "nobody"
        and body["WorkingDir"] == "/data"
    )
    env = dict(e.split("=", 1) for e in body["Env"])
    assert env["A"] == "1" and "NOTIFY_SOCKET" not in env
    assert (env["NOMAD_ALLOC_DIR"], env["NOMAD_TASK_DIR"], env["NOMAD_SECRETS_DIR"]) == (
        "/alloc",
        "/local",
        "/secrets",
    )
    assert body["Labels"]["team"] == "a" and body["Labels"]["com.hashicorp.nomad.alloc_id"] == "alloc-1"
    host = body["HostConfig"]
    assert host["Binds"] == [
        f"{root}/alloc:/alloc",
        f"{root}/web/local:/local",
        f"{root}/web/secrets:/secrets",
        f"{root}/web/local/data:/data:ro",
        f"{root}/web/local/m:/m:ro",
        "/srv/vol:/vol:ro",
    ]
    assert host["PortBindings"]["25000/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": "25000"}]
    assert host["PortBindings"]["6379/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": "25001"}]
    assert "6379/udp" in body["ExposedPorts"]
    # memory_max: the limit; memory: the reservation (Nomad's oversubscription)
    assert host["Memory"] == 128 << 20 and host["MemoryReservation"] == 64 << 20 and host["CpuShares"] == 250
    assert host["Privileged"] is False and host["CapAdd"] == [] and host["CapDrop"] == ["NET_RAW"]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"image": ""}, "needs an 'image'"),
        ({"ports": ["nope"]}, 'Port "nope" not found'),
        ({"volumes": ["/etc:/etc"]}, "volumes are not enabled"),
        ({"volumes": ["../../..:/up"]}, "outside the allocation directory"),
        ({"volumes": ["named:/v"]}, "named volume"),
        ({"volumes": ["nocolon"]}, "SOURCE:/TARGET"),
        ({"mount": [{"type": "tmpfs", "target": "/t"}]}, "not supported"),
        ({"privileged": True}, "privileged mode is disabled"),
        ({"privileged": "false"}, "expected a boolean"),
        ({"cap_add": ["SYS_ADMIN", "CHOWN"]}, r"\['SYS_ADMIN'\]"),
        ({"args": "not-a-list"}, "list of strings"),
        ({"image_pull_timeout": "forever"}, "image_pull_timeout"),
    ],
)
def test_refusals_name_their_cause(tmp_path: Path, config: dict[str, Any], message: str) -> None:
    with pytest.raises(DriverError, match=message):
        container_spec(cfg(tmp_path, config), PluginConfig())


def test_what_the_client_may_allow(tmp_path: Path) -> None:
    plugin = PluginConfig(
        volumes_enabled=True, allow_privileged=True, allow_caps=DEFAULT_ALLOW_CAPS | {"SYS_ADMIN"}
    )
    spec = container_spec(
        cfg(tmp_path, {"volumes": ["/etc:/host-etc:ro"], "privileged": True, "cap_add": ["cap_sys_admin"]}),
        plugin,
    )
    host = spec.body["HostConfig"]
    assert (
        "/etc:/host-etc:ro" in host["Binds"]
        and host["Privileged"] is True
        and host["CapAdd"] == ["SYS_ADMIN"]
    )
    host_net = container_spec(cfg(tmp_path, {"ports": ["http"], "network_mode": "host"}), plugin).body[
        "HostConfig"
    ]
    assert host_net["NetworkMode"] == "host" and "PortBindings" not in host_net


def test_names() -> None:
    assert split_image("redis:3.2") == ("redis", "3.2")
    assert split_image("localhost:5000/a/b") == ("localhost:5000/a/b", "latest")
    assert split_image("a@sha256:00") == ("a@sha256:00", "")
    t = TaskConfig(alloc_id="x1", task_name="we b/1", task_dir="/t", alloc_dir="/a", log_dir="/l")
    assert container_name(t) == "we-b-1-x1"
