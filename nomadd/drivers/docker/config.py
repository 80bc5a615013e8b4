"""The docker driver's two configurations, checked and turned into a container's create body.

* :class:`PluginConfig`: the client's ``plugin "docker" { config { ... } }`` (``endpoint``,
  ``allow_privileged``, ``allow_caps``, ``volumes { enabled }``, ``gc { image, image_delay }``,
  ``image_pull_timeout``), with Nomad's defaults.
* :func:`container_spec`: a task's driver config (``image``, ``command``, ``args``,
  ``entrypoint``, ``ports``/``port_map``, ``labels``, ``mount``/``volumes``, ``work_dir``,
  ``cap_add``/``cap_drop``, ``privileged``, ``network_mode``, ``auth``, ``force_pull``,
  ``image_pull_timeout``) plus the task's env, user, resources and host volume mounts → the body
  of ``POST /containers/create``. Every refusal is a :class:`DriverError` naming the cause, which
  the client shows as the task's "Driver Failure" event.

Bind mounts: the allocation's ``alloc/`` and the task's ``local/`` and ``secrets/`` are mounted
at ``/alloc``, ``/local`` and ``/secrets`` (as Nomad does). A relative ``volumes``/``mount``
source is inside the task dir and may not leave the allocation dir; an absolute host path (or a
named volume) needs ``volumes { enabled = true }`` in the client's plugin config.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nomadd.drivers.base import TaskConfig, clean_env
from nomadd.helper.duration import parse_duration
from nomadd.structs.errors import DriverError

__all__ = [
    "DEFAULT_ALLOW_CAPS",
    "DEFAULT_ENDPOINT",
    "ContainerSpec",
    "PluginConfig",
    "container_name",
    "container_spec",
    "split_image",
]

DEFAULT_ENDPOINT = "unix:///var/run/docker.sock"
# Nomad's default capability allowlist (drivers/shared/capabilities: NomadDefaults).
DEFAULT_ALLOW_CAPS = frozenset(
    {
        "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
        "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
    }
)  # fmt: skip
# What Docker gives a container unless told otherwise; those outside the allowlist are dropped.
DOCKER_DEFAULT_CAPS = DEFAULT_ALLOW_CAPS | {"NET_RAW"}
DEFAULT_IMAGE_DELAY_S = 180.0  # gc.image_delay "3m"
DEFAULT_PULL_TIMEOUT_S = 300.0  # image_pull_timeout "5m"
BYTES_PER_MB = 1024 * 1024
LABEL_ALLOC_ID = "com.hashicorp.nomad.alloc_id"
LABEL_TASK_NAME = "com.hashicorp.nomad.task_name"
LABEL_LAUNCH_ID = "com.hashicorp.nomad.launch_id"
_NAME_BAD = re.compile(r"[^a-zA-Z0-9_.-]")


def _bool(options: Mapping[str, Any], key: str, default: bool) -> bool:
    value = options.get(key, default)
    if isinstance(value, str):
        return value.lower() in ("1", "true")
    if not isinstance(value, bool):
        raise DriverError(f"plugin docker config {key}: expected a boolean")
    return value


def _seconds(value: object, what: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = parse_duration(value)
        except ValueError:
            raise DriverError(f"{what}: invalid duration {value!r}") from None
    else:
        raise DriverError(f"{what}: expected a duration")
    if seconds < 0:
        raise DriverError(f"{what}: negative duration {value!r}")
    return seconds


@dataclass(frozen=True, slots=True, kw_only=True)
class PluginConfig:
    """The client's docker plugin config (Nomad's names and defaults)."""

    endpoint: str = DEFAULT_ENDPOINT
    allow_privileged: bool = False
    allow_caps: frozenset[str] = DEFAULT_ALLOW_CAPS
    volumes_enabled: bool = False
    gc_image: bool = True
    gc_image_delay_s: float = DEFAULT_IMAGE_DELAY_S
    image_pull_timeout_s: float = DEFAULT_PULL_TIMEOUT_S

    @property
    def socket_path(self) -> str:
        """The unix socket of the endpoint; DriverError for any other kind."""
        if not self.endpoint.startswith("unix://"):
            raise DriverError(f"docker endpoint {self.endpoint!r}: only unix:// endpoints are supported")
        return self.endpoint[len("unix://") :]

    @classmethod
    def parse(cls, options: Mapping[str, Any]) -> PluginConfig:
        """From the plugin's ``config`` table (nested tables ``volumes`` and ``gc``)."""
        volumes = options.get("volumes") or {}
        gc = options.get("gc") or {}
        if not isinstance(volumes, Mapping) or not isinstance(gc, Mapping):
            raise DriverError("plugin docker config: volumes and gc must be tables")
        caps = options.get("allow_caps")
        if caps is None:
            allow = DEFAULT_ALLOW_CAPS
        elif isinstance(caps, list | tuple) and all(isinstance(c, str) for c in caps):
            allow = frozenset(_cap(c) for c in caps)
        else:
            raise DriverError("plugin docker config allow_caps: expected a list of strings")
        endpoint = options.get("endpoint", DEFAULT_ENDPOINT)
        if not isinstance(endpoint, str):
            raise DriverError("plugin docker config endpoint: expected a string")
        return cls(
            endpoint=endpoint or DEFAULT_ENDPOINT,
            allow_privileged=_bool(options, "allow_privileged", False),
            allow_caps=allow,
            volumes_enabled=_bool(volumes, "enabled", False),
            gc_image=_bool(gc, "image", True),
            gc_image_delay_s=_seconds(gc.get("image_delay", DEFAULT_IMAGE_DELAY_S), "gc.image_delay"),
            image_pull_timeout_s=_seconds(
                options.get("image_pull_timeout", DEFAULT_PULL_TIMEOUT_S), "image_pull_timeout"
            ),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerSpec:
    """What starting the task needs: the image, how to pull it, and the create body."""

    image: str
    force_pull: bool = False
    pull_timeout_s: float = DEFAULT_PULL_TIMEOUT_S
    auth: Mapping[str, str] | None = None
    body: Mapping[str, Any] = field(default_factory=dict)


def _cap(name: str) -> str:
    name = name.strip().upper()
    return name[4:] if name.startswith("CAP_") else name


def _block(value: object, key: str) -> dict[str, Any]:
    """A config block: a map, or (JSON from HCL) a list of maps merged."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, list) and all(isinstance(v, Mapping) for v in value):
        out: dict[str, Any] = {}
        for v in value:
            out.update(v)
        return out
    raise DriverError(f"docker config {key}: expected a block (map)")


def _blocks(value: object, key: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [dict(value)]
    if isinstance(value, list) and all(isinstance(v, Mapping) for v in value):
        return [dict(v) for v in value]
    raise DriverError(f"docker config {key}: expected a list of blocks")


def _strs(value: object, key: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DriverError(f"docker config {key}: expected a list of strings")
    return list(value)


def _str(config: Mapping[str, Any], key: str) -> str:
    value = config.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DriverError(f"docker config {key}: expected a string")
    return value


def _flag(config: Mapping[str, Any], key: str) -> bool:
    value = config.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise DriverError(f"docker config {key}: expected a boolean")
    return value


def split_image(image: str) -> tuple[str, str]:
    """``"redis:3.2"`` → ``("redis", "3.2")``; no tag means ``latest``; digests stay whole."""
    if "@" in image:
        return image, ""
    name, sep, tag = image.rpartition(":")
    if not sep or "/" in tag:
        return image, "latest"
    return name, tag


def container_name(cfg: TaskConfig) -> str:
    """Nomad's ``<task>-<alloc_id>``, restricted to the characters Docker allows."""
    return _NAME_BAD.sub("-", f"{cfg.task_name}-{cfg.alloc_id}")


def _host_source(cfg: TaskConfig, plugin: PluginConfig, source: str, what: str) -> str:
    """The host path of a bind source: relative ones in the task dir, confined to the allocation
    dir unless host volumes are enabled; absolute ones only when they are."""
    if not source:
        raise DriverError(f"{what}: empty source")
    alloc_root = os.path.dirname(os.path.normpath(cfg.alloc_dir))
    if os.path.isabs(source):
        path = os.path.normpath(source)
    elif "/" not in source and not source.startswith("."):
        if not plugin.volumes_enabled:
            raise DriverError(f"{what}: volumes are not enabled; cannot mount named volume {source!r}")
        return source  # a named volume
    else:
        path = os.path.normpath(os.path.join(cfg.task_dir, source))
    inside = path == alloc_root or path.startswith(alloc_root + os.sep)
    if not inside and not plugin.volumes_enabled:
        raise DriverError(
            f"{what}: volumes are not enabled; cannot mount host path {source!r} "
            "outside the allocation directory"
        )
    return path


def _binds(cfg: TaskConfig, plugin: PluginConfig, config: Mapping[str, Any]) -> list[str]:
    binds = [
        f"{cfg.alloc_dir}:/alloc",
        f"{os.path.join(cfg.task_dir, 'local')}:/local",
        f"{os.path.join(cfg.task_dir, 'secrets')}:/secrets",
    ]
    for spec in _strs(config.get("volumes"), "volumes"):
        parts = spec.split(":")
        if len(parts) not in (2, 3) or not parts[1].startswith("/"):
            raise DriverError(f"docker config volumes: {spec!r} is not SOURCE:/TARGET[:MODE]")
        src = _host_source(cfg, plugin, parts[0], f"volume {spec!r}")
        binds.append(":".join([src, *parts[1:]]))
    for m in _blocks(config.get("mount") or config.get("mounts"), "mount"):
        kind = m.get("type", "volume")
        target = m.get("target", "")
        if not isinstance(target, str) or not target.startswith("/"):
            raise DriverError(f"docker config mount: target {target!r} must be an absolute path")
        if kind not in ("bind", "volume"):
            raise DriverError(f"docker config mount: type {kind!r} is not supported (bind, volume)")
        src = _host_source(cfg, plugin, str(m.get("source", "")), f"mount {target!r}")
        binds.append(f"{src}:{target}" + (":ro" if m.get("readonly") else ""))
    for mount in cfg.mounts:  # host volumes (volume_mount)
        binds.append(f"{mount.host_path}:{mount.task_path}" + (":ro" if mount.read_only else ""))
    return binds


def _ports(cfg: TaskConfig, config: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(ExposedPorts, PortBindings) for the port labels the task publishes (``ports`` and the
    legacy ``port_map``), from the allocation's ports in the task env (NOMAD_HOST_PORT_<label>)."""
    env = cfg.env
    wanted: dict[str, int] = {}
    for label in _strs(config.get("ports"), "ports"):
        wanted[label] = 0
    for label, to in _block(config.get("port_map"), "port_map").items():
        if isinstance(to, bool) or not isinstance(to, int | str) or not str(to).isdigit():
            raise DriverError(f"docker config port_map: {label} must map to a port number")
        wanted[label] = int(to)
    exposed: dict[str, Any] = {}
    bindings: dict[str, Any] = {}
    for label, to in wanted.items():
        host_port = env.get(f"NOMAD_HOST_PORT_{label}")
        if host_port is None:
            raise DriverError(f'Port "{label}" not found, check network block')
        inside = to or int(env.get(f"NOMAD_PORT_{label}") or host_port)
        ip = env.get(f"NOMAD_HOST_IP_{label}", "")
        for proto in ("tcp", "udp"):
            key = f"{inside}/{proto}"
            exposed[key] = {}
            bindings.setdefault(key, []).append({"HostIp": ip, "HostPort": str(host_port)})
    return exposed, bindings


def _caps(plugin: PluginConfig, config: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    add = [_cap(c) for c in _strs(config.get("cap_add"), "cap_add")]
    drop = [_cap(c) for c in _strs(config.get("cap_drop"), "cap_drop")]
    if "ALL" in add:
        add = sorted(plugin.allow_caps) if plugin.allow_caps != {"ALL"} else ["ALL"]
    missing = sorted(c for c in add if c not in plugin.allow_caps and "ALL" not in plugin.allow_caps)
    if missing:
        raise DriverError(
            "Docker driver doesn't have the following caps allowlisted on this Nomad agent: " + str(missing)
        )
    if "ALL" not in plugin.allow_caps and "ALL" not in drop:
        drop += sorted(DOCKER_DEFAULT_CAPS - plugin.allow_caps - set(add) - set(drop))
    return add, drop


def _env(cfg: TaskConfig) -> list[str]:
    env = clean_env(cfg.env)
    # inside the container the task's dirs are where the binds put them
    env.update(NOMAD_ALLOC_DIR="/alloc", NOMAD_TASK_DIR="/local", NOMAD_SECRETS_DIR="/secrets")
    return [f"{k}={v}" for k, v in sorted(env.items())]


def container_spec(cfg: TaskConfig, plugin: PluginConfig) -> ContainerSpec:
    """The container a task asks for; DriverError when its config is wrong or not allowed."""
    config = cfg.config
    image = _str(config, "image")
    if not image:
        raise DriverError(f"task {cfg.task_name}: docker config needs an 'image'")
    command = _str(config, "command")
    args = _strs(config.get("args"), "args")
    entrypoint = _strs(config.get("entrypoint"), "entrypoint")
    privileged = _flag(config, "privileged")
    if privileged and not plugin.allow_privileged:
        raise DriverError(
            'Docker privileged mode is disabled on this Nomad agent (plugin "docker" allow_privileged)'
        )
    labels = {str(k): str(v) for k, v in _block(config.get("labels"), "labels").items()}
    labels.update(
        {LABEL_ALLOC_ID: cfg.alloc_id, LABEL_TASK_NAME: cfg.task_name, LABEL_LAUNCH_ID: cfg.launch_id}
    )
    exposed, bindings = _ports(cfg, config)
    network_mode = _str(config, "network_mode")
    cap_add, cap_drop = _caps(plugin, config)
    memory_mb = cfg.memory_mb
    host: dict[str, Any] = {
        "Binds": _binds(cfg, plugin, config),
        "CpuShares": max(2, cfg.cpu_mhz),
        "Memory": memory_mb * BYTES_PER_MB,
        "Privileged": privileged,
        "CapAdd": cap_add,
        "CapDrop": cap_drop,
    }
    if cfg.memory_max_mb > memory_mb:  # oversubscription: the ask is a reservation, max the limit
        host["Memory"] = cfg.memory_max_mb * BYTES_PER_MB
        host["MemoryReservation"] = memory_mb * BYTES_PER_MB
    if network_mode:
        host["NetworkMode"] = network_mode
    if bindings and network_mode != "host":
        host["PortBindings"] = bindings
    body: dict[str, Any] = {
        "Image": image,
        "Env": _env(cfg),
        "Labels": labels,
        "HostConfig": host,
    }
    if command:
        body["Cmd"] = [command, *args]
    elif args:
        body["Cmd"] = args
    if entrypoint:
        body["Entrypoint"] = entrypoint
    if exposed:
        body["ExposedPorts"] = exposed
    if work_dir := _str(config, "work_dir"):
        body["WorkingDir"] = work_dir
    if cfg.user:
        body["User"] = cfg.user
    auth = _block(config.get("auth"), "auth")
    pull_timeout = plugin.image_pull_timeout_s
    if "image_pull_timeout" in config:
        pull_timeout = _seconds(config["image_pull_timeout"], "docker config image_pull_timeout")
    return ContainerSpec(
        image=image,
        force_pull=_flag(config, "force_pull"),
        pull_timeout_s=pull_timeout,
        auth={str(k): str(v) for k, v in auth.items()} or None,
        body=body,
    )
