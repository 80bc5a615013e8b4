"""The agent config file schema: which keys exist, their types, and how files merge.

A config file is TOML with Nomad's key names. Each file is checked against ``SCHEMA`` on its own
(unknown key, wrong type, bad duration: a ``ConfigError`` naming the file and the dotted key), giving
a *partial* config: a nested dict holding only the keys that file set, with values already converted
(durations to float seconds). Partials are merged in load order by ``merge`` — later wins for
scalars and for most lists, ``client.servers`` appends, maps (``meta``, ``options``,
``host_volume``) merge key-wise —
and the flags are merged last as one more partial. ``docs/configuration.md`` states these rules.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from typing import Any, Final

from nomadd.helper.duration import parse_duration
from nomadd.structs.errors import ConfigError
from nomadd.structs.limits import Limits

__all__ = ["APPEND_LISTS", "SCHEMA", "Partial", "check_file", "merge"]

Partial = dict[str, Any]
Converter = Callable[[object], object]


def _type_name(value: object) -> str:
    names = {
        bool: "boolean",
        int: "integer",
        float: "float",
        str: "string",
        list: "array",
        dict: "table",
    }
    return names.get(type(value), type(value).__name__)


def _show(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


def _str(v: object) -> object:
    if not isinstance(v, str):
        raise TypeError(f"expected a string, got {_type_name(v)} {_show(v)}")
    return v


def _bool(v: object) -> object:
    if not isinstance(v, bool):
        raise TypeError(f"expected a boolean, got {_type_name(v)} {_show(v)}")
    return v


def _int(v: object) -> object:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"expected an integer, got {_type_name(v)} {_show(v)}")
    return v


def _number(v: object) -> object:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise TypeError(f"expected a number, got {_type_name(v)} {_show(v)}")
    return float(v)


def _duration(v: object) -> object:
    if not isinstance(v, str):
        raise TypeError(f'expected a duration string like "10s", got {_type_name(v)} {_show(v)}')
    try:
        seconds = parse_duration(v)
    except ValueError:
        raise TypeError(f'invalid duration "{v}" (use Go-style units: "500ms", "10s", "5m", "24h")') from None
    if seconds < 0:
        raise TypeError(f'negative duration "{v}"')
    return seconds


def _str_list(v: object) -> object:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise TypeError(f"expected an array of strings, got {_type_name(v)} {_show(v)}")
    return tuple(v)


def _str_map(v: object) -> object:
    if not isinstance(v, dict):
        raise TypeError(f"expected a table of strings, got {_type_name(v)} {_show(v)}")
    out: dict[str, str] = {}
    for k, x in v.items():
        if isinstance(x, bool):
            out[k] = "true" if x else "false"
        elif isinstance(x, str | int | float):
            out[k] = str(x)
        else:
            raise TypeError(f"key {k!r}: expected a string, got {_type_name(x)}")
    return out


def _host_volumes(v: object) -> object:
    """``[client.host_volume.NAME] path = "/abs/dir", read_only = bool`` → name -> fields; the
    path must be absolute and exist (Nomad refuses to start otherwise)."""
    if not isinstance(v, dict):
        raise TypeError(f"expected a table of host volumes, got {_type_name(v)}")
    out: dict[str, dict[str, object]] = {}
    for name, body in v.items():
        if not isinstance(body, dict):
            raise TypeError(f"{name}: expected a table with path and read_only, got {_type_name(body)}")
        unknown = set(body) - {"path", "read_only"}
        if unknown:
            raise TypeError(f"{name}: unknown key {sorted(unknown)[0]!r}")
        path = body.get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            raise TypeError(f"{name}.path: expected an absolute path, got {_show(path)}")
        if not os.path.exists(path):
            raise TypeError(f"{name}.path: {path!r} does not exist")
        read_only = body.get("read_only", False)
        if not isinstance(read_only, bool):
            raise TypeError(f"{name}.read_only: expected a boolean, got {_type_name(read_only)}")
        out[name] = {"path": os.path.normpath(path), "read_only": read_only}
    return out


STR: Final = _str
BOOL: Final = _bool
INT: Final = _int
NUMBER: Final = _number
DURATION: Final = _duration
STR_LIST: Final = _str_list
STR_MAP: Final = _str_map

_SERVER_JOIN: dict[str, object] = {
    "start_join": STR_LIST,
    "retry_join": STR_LIST,
    "retry_interval": DURATION,
    "retry_max": INT,
}

SCHEMA: dict[str, object] = {
    "region": STR,
    "datacenter": STR,
    "name": STR,
    "data_dir": STR,
    "plugin_dir": STR,
    "bind_addr": STR,
    "log_level": STR,
    "log_json": BOOL,
    "leave_on_interrupt": BOOL,
    "leave_on_terminate": BOOL,
    "disable_update_check": BOOL,
    "ports": {"http": INT, "raft": INT, "serf": INT},
    "addresses": {"http": STR, "raft": STR, "serf": STR},
    "advertise": {"http": STR, "raft": STR, "serf": STR},
    "server": {
        "enabled": BOOL,
        "bootstrap_expect": INT,
        "encrypt": STR,
        "raft_secret": STR,
        "raft_protocol": INT,
        "raft_multiplier": INT,
        "heartbeat_grace": DURATION,
        "min_heartbeat_ttl": DURATION,
        "max_heartbeats_per_second": NUMBER,
        "failover_heartbeat_ttl": DURATION,
        "node_gc_threshold": DURATION,
        "node_gc_interval": DURATION,
        "deployment_gc_threshold": DURATION,
        "num_schedulers": INT,
        "leader_schedulers": INT,  # nomadd: the split of scheduling workers (server/scheduling_service.py)
        "follower_schedulers": INT,
        "eval_nack_timeout": DURATION,
        "event_buffer_size": INT,  # batches of events held for /v1/event/stream (Nomad's 100)
        "rejoin_after_leave": BOOL,
        "authoritative_region": STR,
        "server_join": _SERVER_JOIN,
        "limits": {f.name: INT for f in dataclasses.fields(Limits)},
        "snapshot": {"interval": DURATION, "retain": INT, "path": STR},  # scheduled snapshots
    },
    # Nomad's autopilot block (operator features)
    "autopilot": {
        "cleanup_dead_servers": BOOL,
        "last_contact_threshold": DURATION,
        "max_trailing_logs": INT,
        "server_stabilization_time": DURATION,
        "min_quorum": INT,
    },
    "client": {
        "enabled": BOOL,
        "servers": STR_LIST,
        "node_class": STR,
        "node_pool": STR,
        "meta": STR_MAP,
        "options": STR_MAP,
        "network_interface": STR,
        "state_dir": STR,
        "alloc_dir": STR,
        "max_kill_timeout": DURATION,
        "cpu_total_compute": INT,
        "memory_total_mb": INT,
        "disk_total_mb": INT,
        "min_dynamic_port": INT,
        "max_dynamic_port": INT,
        "reserved": {"cpu": INT, "memory": INT, "disk": INT, "reserved_ports": STR},
        "server_join": dict(_SERVER_JOIN),
        "drain_on_shutdown": {"deadline": DURATION, "force": BOOL, "ignore_system_jobs": BOOL},
        "host_volume": _host_volumes,
    },
    "discovery": {"dns_resolvers": STR_LIST},
    "acl": {
        "enabled": BOOL,
        "token_ttl": DURATION,
        "policy_ttl": DURATION,
        "role_ttl": DURATION,
        "token_min_expiration_ttl": DURATION,
        "token_max_expiration_ttl": DURATION,
        "replication_token": STR,
        "replication_interval": DURATION,
    },
    "tls": {
        "http": BOOL,
        "rpc": BOOL,
        "ca_file": STR,
        "cert_file": STR,
        "key_file": STR,
        "verify_server_hostname": BOOL,
        "verify_https_client": BOOL,
        "tls_min_version": STR,
    },
    "telemetry": {"prometheus_metrics": BOOL, "disable_hostname": BOOL},
    "plugin": {
        "raw_exec": {"config": {"enabled": BOOL}},
        "exec": {
            "config": {
                "enabled": BOOL,
                "default_pid_mode": STR,
                "default_ipc_mode": STR,
                "allow_caps": STR_LIST,
            }
        },
        "docker": {
            "config": {
                "enabled": BOOL,
                "endpoint": STR,
                "allow_privileged": BOOL,
                "allow_caps": STR_LIST,
                "image_pull_timeout": DURATION,
                "volumes": {"enabled": BOOL},
                "gc": {"image": BOOL, "image_delay": DURATION},
            }
        },
    },
}

# Lists that accumulate across files (Nomad's Merge appends these); every other list is replaced.
APPEND_LISTS: Final = frozenset({"client.servers"})


def check_file(data: Mapping[str, object], source: str) -> Partial:
    """Check one parsed file against the schema; return its partial config (values converted)."""
    return _check(data, SCHEMA, source, "")


def _check(data: Mapping[str, object], schema: Mapping[str, object], source: str, prefix: str) -> Partial:
    out: Partial = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        spec = schema.get(key)
        if spec is None:
            raise ConfigError(f'{source}: unknown key "{path}"')
        if isinstance(spec, dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: {path}: expected a table, got {_type_name(value)}")
            out[key] = _check(value, spec, source, path + ".")
            continue
        conv: Converter = spec  # type: ignore[assignment]
        try:
            out[key] = conv(value)
        except TypeError as err:
            raise ConfigError(f"{source}: {path}: {err}") from None
    return out


def merge(base: Partial, over: Partial, prefix: str = "") -> Partial:
    """Merge partial ``over`` onto ``base`` (both unchanged; returns a new partial)."""
    out = dict(base)
    for key, value in over.items():
        path = f"{prefix}{key}"
        old = out.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            if path in ("client.meta", "client.options", "client.host_volume"):
                out[key] = {**old, **value}
            else:
                out[key] = merge(old, value, path + ".")
        elif path in APPEND_LISTS and isinstance(old, tuple) and isinstance(value, tuple):
            out[key] = old + tuple(v for v in value if v not in old)
        else:
            out[key] = value
    return out
