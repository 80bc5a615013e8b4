"""Job files for ``job run``: Nomad API JSON (``{"Job": {...}}``) and, with the optional
python-hcl2 extra, HCL job specifications. Both become the API JSON job the agent expects.

Unlike the HTTP API (which ignores unknown keys, as Nomad's does), a job FILE is checked
strictly: an unknown key is an error naming its path (``Job.TaskGroups[0].Tasks[0].Drivr: unknown
key``; HCL: ``job.group[0].task[0].drivr: unknown key``) so typos do not silently drop settings.
The CLI imports only ``nomadd.api`` (docs/architecture.md §Layering), so the known keys are listed here;
``tests/unit/cli/test_job_file.py`` checks the table against ``nomadd.structs``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nomadd.helper import duration

__all__ = ["HCL_MISSING", "JOB_SCHEMA", "JobFileError", "hcl_to_api", "load_job_file", "parse_duration_ns"]

HCL_MISSING = (
    "HCL job files need the optional python-hcl2 package: pip install 'nomadd[hcl]' "
    '(or write the job as API JSON: {"Job": {...}})'
)

_ANY = None  # free-form value (scalars, lists of scalars, Meta/Env/Config maps)
_CONSTRAINT = {"LTarget": _ANY, "RTarget": _ANY, "Operand": _ANY}
_RESTART = {"Attempts": _ANY, "Interval": _ANY, "Delay": _ANY, "Mode": _ANY, "RenderTemplates": _ANY}
_RESCHEDULE = {
    "Attempts": _ANY,
    "Interval": _ANY,
    "Delay": _ANY,
    "DelayFunction": _ANY,
    "MaxDelay": _ANY,
    "Unlimited": _ANY,
}
_UPDATE = {
    k: _ANY
    for k in (
        "Stagger",
        "MaxParallel",
        "HealthCheck",
        "MinHealthyTime",
        "HealthyDeadline",
        "ProgressDeadline",
        "AutoRevert",
        "AutoPromote",
        "Canary",
    )
}
_PORT = {"Label": _ANY, "Value": _ANY, "To": _ANY, "HostNetwork": _ANY}
_NETWORK = {
    **{k: _ANY for k in ("Mode", "Device", "CIDR", "IP", "Hostname", "MBits")},
    "ReservedPorts": [_PORT],
    "DynamicPorts": [_PORT],
}
_TASK = {
    "Name": _ANY,
    "Driver": _ANY,
    "User": _ANY,
    "Config": _ANY,
    "Env": _ANY,
    "Constraints": [_CONSTRAINT],
    "Resources": {
        "CPU": _ANY,
        "Cores": _ANY,
        "MemoryMB": _ANY,
        "MemoryMaxMB": _ANY,
        "DiskMB": _ANY,
        "Networks": [_NETWORK],
    },
    "RestartPolicy": _RESTART,
    "Meta": _ANY,
    "KillTimeout": _ANY,
    "KillSignal": _ANY,
    "LogConfig": {"MaxFiles": _ANY, "MaxFileSizeMB": _ANY, "Disabled": _ANY},
    "Leader": _ANY,
}
_GROUP = {
    "Name": _ANY,
    "Count": _ANY,
    "Constraints": [_CONSTRAINT],
    "Tasks": [_TASK],
    "RestartPolicy": _RESTART,
    "ReschedulePolicy": _RESCHEDULE,
    "Update": _UPDATE,
    "EphemeralDisk": {"SizeMB": _ANY, "Sticky": _ANY, "Migrate": _ANY},
    "Meta": _ANY,
    "Networks": [_NETWORK],
}
JOB_SCHEMA: dict[str, Any] = {
    **{
        k: _ANY
        for k in (
            "ID",
            "ParentID",
            "Name",
            "Namespace",
            "Region",
            "Type",
            "Priority",
            "AllAtOnce",
            "Datacenters",
            "NodePool",
            "Meta",
            "Stop",
            "Status",
            "StatusDescription",
            "Stable",
            "Version",
            "SubmitTime",
            "CreateIndex",
            "ModifyIndex",
            "JobModifyIndex",
        )
    },
    "Constraints": [_CONSTRAINT],
    "TaskGroups": [_GROUP],
    "Update": _UPDATE,
}


class JobFileError(Exception):
    """The job file cannot be read, parsed, or has an unknown key (the message names it)."""


# ---- strict check of API JSON -------------------------------------------------------------


def check_keys(value: Any, schema: Any, path: str) -> None:
    """Raise :class:`JobFileError` for the first key of ``value`` not in ``schema``."""
    if schema is None or value is None:
        return
    if isinstance(schema, list):
        if not isinstance(value, list):
            raise JobFileError(f"{path}: expected a list")
        for i, item in enumerate(value):
            check_keys(item, schema[0], f"{path}[{i}]")
        return
    if not isinstance(value, dict):
        raise JobFileError(f"{path}: expected an object")
    for key, item in value.items():
        if key not in schema:
            raise JobFileError(f"{path}.{key}: unknown key")
        check_keys(item, schema[key], f"{path}.{key}")


# ---- durations ----------------------------------------------------------------------------


def parse_duration_ns(text: str, path: str) -> int:
    """Go-style duration (``"1h30m"``, ``"15s"``, ``"500ms"``) in nanoseconds."""
    try:
        return duration.parse_duration_ns(text)
    except ValueError:
        raise JobFileError(f"{path}: invalid duration {text!r}") from None


# ---- HCL ----------------------------------------------------------------------------------


def _unquote(value: Any) -> Any:
    """python-hcl2 keeps string quotes (``'"dc1"'``) and marks blocks with ``__is_block__``."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            return json.loads(value)
        except ValueError:
            return value[1:-1]
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    if isinstance(value, dict):
        return {_unquote(k): _unquote(v) for k, v in value.items() if k != "__is_block__"}
    return value


def _block(raw: Any, path: str) -> dict[str, Any]:
    """A non-labelled block (``resources { ... }``): one map (the last one wins)."""
    if isinstance(raw, list):
        if not raw:
            return {}
        raw = raw[-1]
    if not isinstance(raw, dict):
        raise JobFileError(f"{path}: expected a block")
    return raw


def _labelled(raw: Any, path: str) -> list[tuple[str, dict[str, Any]]]:
    """Labelled blocks (``group "web" { ... }``) as (label, body) pairs, in file order."""
    out = []
    for i, item in enumerate(raw if isinstance(raw, list) else [raw]):
        if not isinstance(item, dict) or len(item) != 1:
            raise JobFileError(f"{path}[{i}]: expected one labelled block")
        ((label, body),) = item.items()
        out.append((str(label), _block(body, f"{path}[{i}]")))
    return out


def _fields(body: dict[str, Any], path: str, spec: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """Map simple HCL attributes to API keys: spec = hcl name -> (API name, kind)."""
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key not in spec:
            raise JobFileError(f"{path}.{key}: unknown key")
        api, kind = spec[key]
        if kind == "dur":
            value = parse_duration_ns(str(value), f"{path}.{key}") if isinstance(value, str) else value
        elif kind == "map":
            value = _block(value, f"{path}.{key}")
        out[api] = value
    return out


_RESTART_HCL = {
    "attempts": ("Attempts", "v"),
    "interval": ("Interval", "dur"),
    "delay": ("Delay", "dur"),
    "mode": ("Mode", "v"),
    "render_templates": ("RenderTemplates", "v"),
}
_RESCHEDULE_HCL = {
    "attempts": ("Attempts", "v"),
    "interval": ("Interval", "dur"),
    "delay": ("Delay", "dur"),
    "delay_function": ("DelayFunction", "v"),
    "max_delay": ("MaxDelay", "dur"),
    "unlimited": ("Unlimited", "v"),
}
_UPDATE_HCL = {
    "stagger": ("Stagger", "dur"),
    "max_parallel": ("MaxParallel", "v"),
    "health_check": ("HealthCheck", "v"),
    "min_healthy_time": ("MinHealthyTime", "dur"),
    "healthy_deadline": ("HealthyDeadline", "dur"),
    "progress_deadline": ("ProgressDeadline", "dur"),
    "auto_revert": ("AutoRevert", "v"),
    "auto_promote": ("AutoPromote", "v"),
    "canary": ("Canary", "v"),
}
_RESOURCES_HCL = {
    "cpu": ("CPU", "v"),
    "cores": ("Cores", "v"),
    "memory": ("MemoryMB", "v"),
    "memory_max": ("MemoryMaxMB", "v"),
}
_LOGS_HCL = {
    "max_files": ("MaxFiles", "v"),
    "max_file_size": ("MaxFileSizeMB", "v"),
    "disabled": ("Disabled", "v"),
}
_DISK_HCL = {"size": ("SizeMB", "v"), "sticky": ("Sticky", "v"), "migrate": ("Migrate", "v")}


_PORT_HCL = {"static": ("Value", "v"), "to": ("To", "v"), "host_network": ("HostNetwork", "v")}


def _networks(raw: Any, path: str) -> list[dict[str, Any]]:
    """``network { mode = "host"  port "http" { static = 8080 }  port "x" {} }`` blocks: a port
    with ``static`` is reserved, one without is dynamic."""
    out = []
    for i, item in enumerate(raw if isinstance(raw, list) else [raw]):
        p = f"{path}[{i}]"
        net: dict[str, Any] = {"ReservedPorts": [], "DynamicPorts": []}
        for key, value in _block(item, p).items():
            if key == "port":
                for j, (label, body) in enumerate(_labelled(value, f"{p}.port")):
                    port = {"Label": label, **_fields(body, f"{p}.port[{j}]", _PORT_HCL)}
                    net["ReservedPorts" if "Value" in port else "DynamicPorts"].append(port)
            elif key in ("mode", "mbits", "hostname"):
                net[{"mode": "Mode", "mbits": "MBits", "hostname": "Hostname"}[key]] = value
            else:
                raise JobFileError(f"{p}.{key}: unknown key")
        out.append(net)
    return out


def _constraints(raw: Any, path: str) -> list[dict[str, Any]]:
    out = []
    for i, item in enumerate(raw if isinstance(raw, list) else [raw]):
        p = f"{path}[{i}]"
        c: dict[str, Any] = {}
        for key, value in _block(item, p).items():
            if key == "attribute":
                c["LTarget"] = value
            elif key == "value":
                c["RTarget"] = str(value)
            elif key == "operator":
                c["Operand"] = value
            elif key in (
                "distinct_hosts",
                "distinct_property",
                "regexp",
                "version",
                "semver",
                "set_contains",
            ):
                c["Operand"] = key
                if key != "distinct_hosts":
                    c["RTarget"] = str(value)
            else:
                raise JobFileError(f"{p}.{key}: unknown key")
        out.append(c)
    return out


def _task(name: str, body: dict[str, Any], path: str) -> dict[str, Any]:
    task: dict[str, Any] = {"Name": name}
    for key, value in body.items():
        p = f"{path}.{key}"
        if key in ("driver", "user", "kill_signal", "leader"):
            task[
                {"driver": "Driver", "user": "User", "kill_signal": "KillSignal", "leader": "Leader"}[key]
            ] = value
        elif key == "kill_timeout":
            task["KillTimeout"] = parse_duration_ns(str(value), p)
        elif key in ("config", "env", "meta"):
            task[{"config": "Config", "env": "Env", "meta": "Meta"}[key]] = _block(value, p)
        elif key == "constraint":
            task["Constraints"] = _constraints(value, p)
        elif key == "resources":
            body = dict(_block(value, p))
            nets = body.pop("network", None)
            task["Resources"] = _fields(body, p, _RESOURCES_HCL)
            if nets is not None:
                task["Resources"]["Networks"] = _networks(nets, f"{p}.network")
        elif key == "restart":
            task["RestartPolicy"] = _fields(_block(value, p), p, _RESTART_HCL)
        elif key == "logs":
            task["LogConfig"] = _fields(_block(value, p), p, _LOGS_HCL)
        else:
            raise JobFileError(f"{p}: unknown key")
    return task


def _group(name: str, body: dict[str, Any], path: str) -> dict[str, Any]:
    group: dict[str, Any] = {"Name": name}
    for key, value in body.items():
        p = f"{path}.{key}"
        if key == "count":
            group["Count"] = value
        elif key == "meta":
            group["Meta"] = _block(value, p)
        elif key == "constraint":
            group["Constraints"] = _constraints(value, p)
        elif key == "restart":
            group["RestartPolicy"] = _fields(_block(value, p), p, _RESTART_HCL)
        elif key == "reschedule":
            group["ReschedulePolicy"] = _fields(_block(value, p), p, _RESCHEDULE_HCL)
        elif key == "update":
            group["Update"] = _fields(_block(value, p), p, _UPDATE_HCL)
        elif key == "ephemeral_disk":
            group["EphemeralDisk"] = _fields(_block(value, p), p, _DISK_HCL)
        elif key == "network":
            group["Networks"] = _networks(value, p)
        elif key == "task":
            group["Tasks"] = [_task(n, b, f"{p}[{i}]") for i, (n, b) in enumerate(_labelled(value, p))]
        else:
            raise JobFileError(f"{p}: unknown key")
    return group


_JOB_SIMPLE = {
    "name": "Name",
    "namespace": "Namespace",
    "region": "Region",
    "type": "Type",
    "priority": "Priority",
    "all_at_once": "AllAtOnce",
    "datacenters": "Datacenters",
    "node_pool": "NodePool",
}


def hcl_to_api(doc: dict[str, Any]) -> dict[str, Any]:
    """The API JSON job of a parsed (unquoted) HCL document with one ``job "id" {}`` block."""
    for key in doc:
        if key != "job":
            raise JobFileError(f"{key}: unknown key (a job file holds one job block)")
    jobs = _labelled(doc.get("job") or [], "job")
    if len(jobs) != 1:
        raise JobFileError("job: a job file must contain exactly one job block")
    job_id, body = jobs[0]
    job: dict[str, Any] = {"ID": job_id}
    for key, value in body.items():
        p = f"job.{key}"
        if key in _JOB_SIMPLE:
            job[_JOB_SIMPLE[key]] = value
        elif key == "meta":
            job["Meta"] = _block(value, p)
        elif key == "constraint":
            job["Constraints"] = _constraints(value, p)
        elif key == "update":
            job["Update"] = _fields(_block(value, p), p, _UPDATE_HCL)
        elif key == "group":
            job["TaskGroups"] = [_group(n, b, f"{p}[{i}]") for i, (n, b) in enumerate(_labelled(value, p))]
        else:
            raise JobFileError(f"{p}: unknown key")
    return job


def parse_hcl(text: str) -> dict[str, Any]:
    try:
        import hcl2  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        raise JobFileError(HCL_MISSING) from None
    try:
        doc = hcl2.loads(text)
    except Exception as err:
        raise JobFileError(f"failed to parse HCL: {err}") from None
    return hcl_to_api(_unquote(doc))


def parse_json(text: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except ValueError as err:
        raise JobFileError(f"failed to parse JSON: {err}") from None
    if not isinstance(doc, dict):
        raise JobFileError("job file must be a JSON object")
    if "Job" in doc:
        extra = [k for k in doc if k != "Job"]
        if extra:
            raise JobFileError(f"{extra[0]}: unknown key")
        doc = doc["Job"]
    if not isinstance(doc, dict):
        raise JobFileError("Job: expected an object")
    check_keys(doc, JOB_SCHEMA, "Job")
    return doc


def load_job_file(path: str) -> dict[str, Any]:
    """Read ``path`` (``-`` = stdin): JSON when it looks like JSON, else HCL."""
    if path == "-":
        import sys

        text = sys.stdin.read()
    else:
        try:
            text = Path(path).read_text()
        except OSError as err:
            raise JobFileError(f"error reading job file {path}: {err.strerror or err}") from None
    if path.endswith(".json") or text.lstrip().startswith("{"):
        return parse_json(text)
    return parse_hcl(text)
